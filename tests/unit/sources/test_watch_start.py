"""The folder watcher misses nothing written between the first read and the watch's start.

The control plane reads the folder, builds and starts serving, and only then watches: a file
`shoal up`'s user (or a test) writes in that gap has no inotify event. CI lost a Gateway
added right after start-up this way (`test_edges_up_gateway`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shoal.sources.directory import Changes, DirCache, read_changes, watch_dir


async def test_a_file_written_before_the_watch_began_is_found(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: A\n")
    cache = DirCache()
    read_changes(tmp_path, cache, None)
    (tmp_path / "b.yaml").write_text("kind: B\n")  # in the gap: no watch yet

    seen: asyncio.Queue[Changes] = asyncio.Queue()
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_dir(str(tmp_path), seen.put_nowait, stop, cache))
    try:
        first = await asyncio.wait_for(seen.get(), 10)
    finally:
        stop.set()
        await watcher
    assert first is None  # a full scan, the only way to see the gap's file
    assert [c.source for c in read_changes(tmp_path, cache, first)] == ["b.yaml"]


async def test_the_scan_at_watch_start_happens_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: A\n")
    cache = DirCache()
    read_changes(tmp_path, cache, None)
    seen: asyncio.Queue[Changes] = asyncio.Queue()
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_dir(str(tmp_path), seen.put_nowait, stop, cache))
    try:
        assert await asyncio.wait_for(seen.get(), 10) is None
        await asyncio.sleep(1.2)  # two more quiet timeouts: no further full scan
        assert seen.empty()
        (tmp_path / "a.yaml").write_text("kind: A2\n")
        assert await asyncio.wait_for(seen.get(), 10) == frozenset({"a.yaml"})
    finally:
        stop.set()
        await watcher
