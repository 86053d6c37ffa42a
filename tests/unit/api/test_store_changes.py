"""The store moves on by change sets: only what changed is parsed, errors keep exact lines."""

from api_samples import BOOKINFO_SERVICES, REVIEWS_DR, REVIEWS_VS

from shoal.api import Change, ConfigStore
from shoal.api.documents import DocumentCache, split_documents
from shoal.api.load import parse_documents

ONE_FILE = "---\n".join([BOOKINFO_SERVICES, REVIEWS_DR, REVIEWS_VS])


def test_a_file_splits_into_the_documents_a_parser_sees() -> None:
    pieces = split_documents("# head\n---\na: 1\n--- \nb: 2\n---x: 3\n")
    assert [line for line, _ in pieces] == [1, 2, 4]
    assert "".join(text for _, text in pieces) == "# head\n---\na: 1\n--- \nb: 2\n---x: 3\n"


def test_only_the_documents_whose_text_changed_are_parsed_again() -> None:
    cache = DocumentCache()
    first = cache.parse("mesh.yaml", ONE_FILE)
    assert cache.parsed == len(split_documents(ONE_FILE))
    edited = ONE_FILE.replace("weight: 75", "weight: 74").replace("weight: 25", "weight: 26")
    second = cache.parse("mesh.yaml", edited)
    assert cache.parsed == 1
    assert second == parse_documents("mesh.yaml", edited)
    # documents that did not change are the very same objects
    unchanged = [d for d in first.documents if d.key != ("VirtualService", "default", "reviews")]
    assert all(any(d is e for e in second.documents) for d in unchanged)


def test_errors_keep_their_exact_line_when_an_edit_above_moves_a_document_down() -> None:
    broken = REVIEWS_VS.replace("weight: 75", "weight: 70")
    text = "---\n".join([BOOKINFO_SERVICES, REVIEWS_DR, broken])
    store = ConfigStore()
    (before,) = store.apply([Change.file("mesh.yaml", text)]).errors
    # three lines added to the first document push the broken one down by three
    grown = text.replace("kind: ServiceEntry\n", "kind: ServiceEntry\n# a\n# b\n# c\n", 1)
    cache_parsed = store.apply([Change.file("mesh.yaml", grown)])
    (after,) = cache_parsed.errors
    assert after.line == before.line + 3
    assert (after.field, after.message) == (before.field, before.message)
    fresh = ConfigStore().apply([Change.file("mesh.yaml", grown)]).errors
    assert cache_parsed.errors == fresh


def test_reference_errors_of_moved_resources_point_at_their_new_line() -> None:
    dangling = REVIEWS_VS.replace("subset: v1", "subset: v9")
    text = "---\n".join([BOOKINFO_SERVICES, REVIEWS_DR, dangling])
    store = ConfigStore()
    store.apply([Change.file("mesh.yaml", text)])
    moved = "# one\n# two\n" + text
    result = store.apply([Change.file("mesh.yaml", moved)])
    assert not result.changed
    assert result.errors == ConfigStore().apply([Change.file("mesh.yaml", moved)]).errors


def test_the_delta_names_what_changed_with_both_versions() -> None:
    store = ConfigStore()
    first = store.apply([Change.file("services.yaml", BOOKINFO_SERVICES)])
    assert first.delta.before == {}
    assert set(first.delta.after) == {r.key for r in first.resources}
    result = store.apply([Change.file("vs.yaml", REVIEWS_VS), Change.file("dr.yaml", REVIEWS_DR)])
    assert result.delta.keys == {
        ("VirtualService", "default", "reviews"),
        ("DestinationRule", "default", "reviews"),
    }
    edited = REVIEWS_VS.replace("weight: 75", "weight: 74").replace("weight: 25", "weight: 26")
    result = store.apply([Change.file("vs.yaml", edited)])
    key = ("VirtualService", "default", "reviews")
    assert result.delta.keys == {key}
    assert result.delta.before[key] != result.delta.after[key]
    gone = store.apply([Change.file("vs.yaml", None)])
    assert set(gone.delta.before) == {key} and gone.delta.after == {}
    # files not named keep what they had
    assert ("DestinationRule", "default", "reviews") in {r.key for r in gone.resources}


def test_a_decoded_object_is_validated_like_a_document() -> None:
    store = ConfigStore()
    obj = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {"host": "reviews", "trafficPolicy": {"loadBalancer": {"simple": "NOPE"}}},
    }
    source = "kubernetes:DestinationRule/default/reviews"
    (error,) = store.apply([Change.object(source, obj)]).errors
    assert error.file == source
    assert error.field == "spec.trafficPolicy.loadBalancer.simple"
    good = {**obj, "spec": {"host": "reviews"}}
    result = store.apply([Change.object(source, good)])
    assert result.errors == ()
    assert [r.key for r in result.resources] == [("DestinationRule", "default", "reviews")]
    assert store.apply([Change.object(source, None)]).resources == ()
