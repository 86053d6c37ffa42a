"""Loading YAML in a child process, so a big file never stalls the control plane's event loop.

libyaml's composer holds the GIL for long stretches: measured while a thread loaded a 3 MB
folder's worth of documents, the event loop's thread got no turn for 0.6 s (p99) to 1.9 s
(max), and the admin API and every xDS stream with it. Validation (pydantic, one call per
document) lets it run every few milliseconds, so only the loading goes to a child: this
module's `main` runs `api.load.load_texts` and sends the plain documents back.

The protocol is length-prefixed pickles over the child's stdin and stdout: `(path, texts)` in,
`load_texts(path, texts)` out. Texts go in chunks of about `CHUNK_BYTES`, so the parent
unpickles a little at a time and holds the GIL briefly. The child is started on first use and
started again if it died.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO

from shoal.api.load import Loaded, load_texts

log = logging.getLogger("shoal.sources")

CHUNK_BYTES = 256 * 1024
_HEADER = 8


def _send(out: IO[bytes], obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(len(data).to_bytes(_HEADER, "big") + data)
    out.flush()


def _receive(inp: IO[bytes]) -> object:
    header = inp.read(_HEADER)
    if len(header) < _HEADER:
        raise EOFError("the YAML worker closed its pipe")
    size = int.from_bytes(header, "big")
    data = inp.read(size)
    if len(data) < size:
        raise EOFError("the YAML worker closed its pipe mid-message")
    return pickle.loads(data)  # our own child, over our own pipe


def _chunks(texts: Sequence[str]) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    size = 0
    for text in texts:
        if chunks[-1] and size + len(text) > CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(text)
        size += len(text)
    return chunks


class ParseWorker:
    """A child process loading YAML texts (`load`: `api.load.load_texts` elsewhere)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one conversation at a time

    def _child(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is not None:
            log.warning("the YAML worker exited with %s; starting it again", self._proc.returncode)
            self._stop_child()
        if self._proc is None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "shoal.sources.parseworker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        return self._proc

    def start(self) -> None:
        """Start the child now (it imports while the caller goes on), so that the first big
        edit does not wait for a Python start: ~0.5-1 s on a busy 2-core machine, which was
        the whole p99 of an endpoint edit in a one-file registry."""
        with self._lock:
            self._child()

    def load(self, path: str, texts: Sequence[str]) -> list[Loaded]:
        """`load_texts(path, texts)`, computed by the child. Blocks: call it off the loop."""
        if not texts:
            return []
        with self._lock:
            proc = self._child()
            assert proc.stdin is not None and proc.stdout is not None
            out: list[Loaded] = []
            try:
                for chunk in _chunks(texts):
                    _send(proc.stdin, (path, chunk))
                    result = _receive(proc.stdout)
                    assert isinstance(result, list)
                    out += result
            except (OSError, EOFError):
                self._stop_child()
                raise
            return out

    def _stop_child(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop the child (it also exits by itself when this process's end of the pipe goes)."""
        with self._lock:
            self._stop_child()


def main() -> None:
    """The child: answer `(path, texts)` with `load_texts(path, texts)` until stdin closes."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            request = _receive(inp)
        except EOFError:
            return
        assert isinstance(request, tuple)
        path, texts = request
        _send(out, load_texts(str(path), list(texts)))


if __name__ == "__main__":
    main()
