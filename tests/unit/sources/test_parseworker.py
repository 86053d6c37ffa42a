"""YAML loaded in the child process gives the store exactly what loading it here gives."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shoal.api import Change, ConfigStore
from shoal.api.load import load_texts
from shoal.sources.parseworker import ParseWorker

DOC = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: se-{i}
  namespace: default
spec:
  hosts: [se-{i}.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{{number: 80, name: http, protocol: HTTP}}]
"""
TEXT = "---\n".join(DOC.format(i=i) for i in range(5))


@pytest.fixture
def worker() -> Iterator[ParseWorker]:
    w = ParseWorker()
    yield w
    w.close()


def test_the_child_loads_as_this_process_does(worker: ParseWorker) -> None:
    texts = [DOC.format(i=1), "a: [\n", ""]
    assert worker.load("f.yaml", texts) == load_texts("f.yaml", texts)


def test_a_prepared_store_applies_the_same_result_without_parsing_again(
    worker: ParseWorker,
) -> None:
    plain = ConfigStore().apply([Change.file("f.yaml", TEXT)])
    store = ConfigStore()
    changes = [Change.file("f.yaml", TEXT)]
    store.prepare(changes, worker.load)
    prepared = store.apply(changes)
    assert prepared.resources == plain.resources and prepared.errors == ()
    assert [r.origin.line for r in prepared.resources] == [r.origin.line for r in plain.resources]
    # an edit: only the changed piece goes to the child
    edited = TEXT.replace("se-3.example.com", "se-three.example.com")
    sent: list[list[str]] = []

    def spy(path: str, texts: object) -> list[object]:
        sent.append(list(texts))  # type: ignore[call-overload]
        return worker.load(path, sent[-1])  # type: ignore[return-value]

    store.prepare([Change.file("f.yaml", edited)], spy)  # type: ignore[arg-type]
    assert [len(t) for t in sent] == [1] and "se-three" in sent[0][0]


def test_a_syntax_error_prepared_aside_is_the_whole_files_error(worker: ParseWorker) -> None:
    broken = TEXT + "---\nkind: [\n"
    plain = ConfigStore().apply([Change.file("f.yaml", broken)])
    store = ConfigStore()
    store.prepare([Change.file("f.yaml", broken)], worker.load)
    assert store.apply([Change.file("f.yaml", broken)]).errors == plain.errors != ()


def test_a_dead_child_is_started_again(
    worker: ParseWorker, caplog: pytest.LogCaptureFixture
) -> None:
    assert worker.load("f.yaml", ["a: 1\n"])
    proc = worker._proc
    assert proc is not None
    proc.kill()
    proc.wait()
    assert worker.load("f.yaml", ["a: 1\n"]) == load_texts("f.yaml", ["a: 1\n"])
    assert worker._proc is not proc
    assert "starting it again" in caplog.text


def test_a_started_child_is_the_one_that_loads(worker: ParseWorker) -> None:
    worker.start()
    child = worker._proc
    assert child is not None and child.poll() is None  # running before anything is loaded
    assert worker.load("f.yaml", [TEXT]) == load_texts("f.yaml", [TEXT])
    assert worker._proc is child
