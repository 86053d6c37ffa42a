"""The config store keeps the last good configuration when new input is bad."""

from api_samples import BOOKINFO_SERVICES, REVIEWS_DR, REVIEWS_VS

from shoal.api import ConfigStore, Resource

FILES = {"services.yaml": BOOKINFO_SERVICES, "dr.yaml": REVIEWS_DR, "vs.yaml": REVIEWS_VS}


def _kinds(store_resources: tuple[Resource, ...]) -> list[tuple[str, str, str]]:
    return [r.key for r in store_resources]


def test_first_update_and_unchanged_reload() -> None:
    store = ConfigStore()
    first = store.update(FILES)
    assert first.errors == ()
    assert first.changed
    assert len(first.resources) == 5
    assert list(first.resources) == sorted(first.resources, key=lambda r: r.key)
    # Moving a resource down in its file is not a change.
    again = store.update({**FILES, "vs.yaml": "# comment\n\n" + REVIEWS_VS})
    assert not again.changed
    assert again.errors == ()


def test_malformed_file_keeps_all_its_resources() -> None:
    store = ConfigStore()
    good = store.update(FILES)
    result = store.update({**FILES, "services.yaml": BOOKINFO_SERVICES + "\n  bad: [\n"})
    assert result.resources == good.resources
    assert not result.changed
    (error,) = result.errors
    assert error.file == "services.yaml"
    assert "invalid YAML" in error.message
    assert "keeping" in error.message
    # The error is reported again on every update until the file is fixed.
    assert store.update({**FILES, "services.yaml": "a: [\n"}).errors[0].file == "services.yaml"
    assert store.update(FILES).errors == ()


def test_invalid_document_keeps_last_good_version_of_that_resource() -> None:
    store = ConfigStore()
    good = store.update(FILES)
    broken = REVIEWS_VS.replace("weight: 75", "weight: 70")
    result = store.update({**FILES, "vs.yaml": broken})
    assert result.resources == good.resources
    (error,) = result.errors
    assert "add up to 95" in error.message
    assert error.message.endswith("keeping its last good version")


def test_invalid_new_resource_is_simply_refused() -> None:
    store = ConfigStore()
    result = store.update({"vs.yaml": REVIEWS_VS.replace("weight: 75", "weight: 70")})
    assert result.resources == ()
    assert len(result.errors) == 1
    assert not result.changed


def test_reference_error_falls_back_to_last_good_version() -> None:
    store = ConfigStore()
    good = store.update(FILES)
    vs_v4 = REVIEWS_VS.replace("subset: v3", "subset: v4")
    result = store.update({**FILES, "vs.yaml": vs_v4})
    assert result.resources == good.resources
    (error,) = result.errors
    assert "subset 'v4'" in error.message
    assert "keeping its last good version" in error.message
    # If the old version no longer fits either (v3 removed from the rule), it goes too.
    dr_without_v3 = REVIEWS_DR.split("  - name: v3")[0]
    result = store.update({**FILES, "vs.yaml": vs_v4, "dr.yaml": dr_without_v3})
    assert "VirtualService" not in {r.kind for r in result.resources}
    assert result.changed
    assert "keeping" not in result.errors[0].message


def test_deleted_file_loses_its_resources() -> None:
    store = ConfigStore()
    store.update(FILES)
    result = store.update({"services.yaml": BOOKINFO_SERVICES, "dr.yaml": REVIEWS_DR})
    assert result.changed
    assert result.errors == ()
    assert all(r.kind != "VirtualService" for r in result.resources)
    # Deleting the services makes nothing route to them; the rule stays.
    result = store.update({"vs.yaml": REVIEWS_VS, "dr.yaml": REVIEWS_DR})
    assert _kinds(result.resources) == [("DestinationRule", "default", "reviews")]
    assert result.errors
