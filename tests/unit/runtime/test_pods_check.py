"""`shoal up --netns` without what it needs says what is missing (never a traceback)."""

from __future__ import annotations

import pytest

from shoal.runtime import pods
from shoal.runtime.pods import PodsUnavailable, check_host


def test_without_root_the_message_says_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pods.os, "geteuid", lambda: 1000)
    with pytest.raises(PodsUnavailable, match=r"needs root \(CAP_NET_ADMIN and CAP_SYS_ADMIN"):
        check_host()


def test_a_missing_tool_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pods.os, "geteuid", lambda: 0)
    monkeypatch.setattr(pods.shutil, "which", lambda tool: None if tool == "setpriv" else tool)
    with pytest.raises(PodsUnavailable, match="needs setpriv: apt-get install"):
        check_host()
