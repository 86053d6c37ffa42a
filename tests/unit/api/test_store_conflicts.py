"""Two definitions of one resource: a conflict error naming both places, a stable winner."""

from api_samples import BOOKINFO_SERVICES, REVIEWS_DR, REVIEWS_VS

from shoal.api import ConfigStore, Resource, parse_text
from shoal.api.conflicts import settle_conflicts
from shoal.api.virtualservice import VirtualServiceSpec

BASE = {"services.yaml": BOOKINFO_SERVICES, "dr.yaml": REVIEWS_DR}
# the same VirtualService (default/reviews) with other weights
OTHER_VS = REVIEWS_VS.replace("weight: 75", "weight: 50").replace("weight: 25", "weight: 50")
KEY = ("VirtualService", "default", "reviews")


def _weights(resources: tuple[Resource, ...]) -> list[int]:
    (vs,) = [r for r in resources if r.key == KEY]
    assert isinstance(vs.spec, VirtualServiceSpec)
    return [d.weight for d in vs.spec.http[1].route]


def test_on_a_cold_start_the_first_by_path_wins_and_the_other_is_an_error() -> None:
    result = ConfigStore().update({**BASE, "a.yaml": REVIEWS_VS, "b.yaml": OTHER_VS})
    assert _weights(result.resources) == [75, 25]
    (error,) = result.errors
    assert (error.file, error.line, error.field) == ("b.yaml", 4, "metadata.name")
    assert (error.kind, error.name) == ("VirtualService", "default/reviews")
    assert "defined twice" in error.message and "a.yaml:4" in error.message
    assert "comes first" in error.message


def test_the_definition_in_force_stays_when_another_file_claims_it() -> None:
    store = ConfigStore()
    assert store.update({**BASE, "b.yaml": OTHER_VS}).errors == ()
    # a.yaml sorts first, but b.yaml's definition is the one proxies have
    result = store.update({**BASE, "a.yaml": REVIEWS_VS, "b.yaml": OTHER_VS})
    assert _weights(result.resources) == [50, 50]
    assert not result.changed
    (error,) = result.errors
    assert error.file == "a.yaml" and "b.yaml:4, which is in force" in error.message
    # editing the definition in force keeps it in force
    edited = OTHER_VS.replace("weight: 50", "weight: 60", 1).replace("weight: 50", "weight: 40")
    result = store.update({**BASE, "a.yaml": REVIEWS_VS, "b.yaml": edited})
    assert _weights(result.resources) == [60, 40]
    assert [e.file for e in result.errors] == ["a.yaml"]
    # without it, the other definition takes over and the error goes
    result = store.update({**BASE, "a.yaml": REVIEWS_VS})
    assert _weights(result.resources) == [75, 25]
    assert result.errors == ()


def test_two_documents_of_one_file_the_first_wins() -> None:
    result = ConfigStore().update({**BASE, "vs.yaml": REVIEWS_VS + "---\n" + OTHER_VS})
    assert _weights(result.resources) == [75, 25]
    (error,) = result.errors
    assert (error.file, error.line) == ("vs.yaml", REVIEWS_VS.count("\n") + 5)
    assert "vs.yaml:4" in error.message


def test_a_conflict_with_a_broken_file_keeps_the_broken_files_last_good_definition() -> None:
    store = ConfigStore()
    store.update({**BASE, "b.yaml": OTHER_VS})
    result = store.update({**BASE, "a.yaml": REVIEWS_VS, "b.yaml": OTHER_VS + "  bad: [\n"})
    # b.yaml does not parse: it keeps its resources, which are still the ones in force
    assert _weights(result.resources) == [50, 50]
    assert sorted(e.file for e in result.errors) == ["a.yaml", "b.yaml"]


def test_of_two_equal_definitions_the_first_wins_whether_or_not_it_is_the_object_in_force() -> None:
    # The store keeps parsed documents by their text, so a re-read may hand back the very
    # object in force where a whole-file parse makes an equal new one. Which of two equal
    # definitions wins, and where the error points, must not depend on that (hypothesis found
    # it: the incremental pipeline's error pointed at line 4, a whole-file store's at line 13).
    first, second = parse_text(REVIEWS_VS + "---\n" + REVIEWS_VS, "a.yaml")
    assert first == second and first.origin.line < second.origin.line
    (again,) = parse_text(REVIEWS_VS, "a.yaml")  # equal to both, a new object
    for in_force in (second, again):
        kept, errors = settle_conflicts([first, second], {KEY: in_force})
        assert kept == [first] and kept[0] is first
        assert [(e.file, e.line) for e in errors] == [
            ("a.yaml", second.origin.line_of(("metadata", "name")))
        ]
