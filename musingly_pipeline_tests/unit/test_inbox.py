"""Inbox scanning: new, changed, unchanged, half-written and hostile files."""

from __future__ import annotations

import os
import time
from pathlib import Path

from musingly_pipeline.inbox import scan_inbox


def settle(inbox: Path, state=None):
    """Two scans, as two sensor ticks with nothing written in between."""
    first = scan_inbox(inbox, state)
    second = scan_inbox(inbox, first.state)
    return first, second


def test_new_file_is_ready_once_stable(tmp_path):
    (tmp_path / "a.json").write_text('{"x": 1}')
    first, second = settle(tmp_path)
    assert first.ready == [] and first.waiting == ["a.json"]
    assert [f.name for f in second.ready] == ["a.json"]
    assert scan_inbox(tmp_path, second.state).ready == []  # unchanged: never again


def test_growing_file_waits(tmp_path):
    path = tmp_path / "big.json"
    path.write_text("{")
    state = scan_inbox(tmp_path, None).state
    with path.open("a") as f:
        f.write('"more": 1')
    assert scan_inbox(tmp_path, state).ready == []


def test_changed_content_runs_again_same_content_does_not(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"v": 1}')
    _, done = settle(tmp_path)
    sha1 = done.ready[0].sha256
    # touched with identical content: no new run
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    _, touched = settle(tmp_path, done.state)
    assert touched.ready == []
    path.write_text('{"v": 2}')
    _, changed = settle(tmp_path, touched.state)
    assert [f.name for f in changed.ready] == ["a.json"] and changed.ready[0].sha256 != sha1


def test_ignores_hidden_partial_and_non_json(tmp_path):
    for name in (".hidden.json", "x.json.tmp", "y.json.part", "z.part", "notes.txt", "w.tmp"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "sub.json").mkdir()
    _, second = settle(tmp_path)
    assert second.ready == [] and second.waiting == []


def test_links_outside_the_inbox_are_skipped(tmp_path):
    inbox, outside = tmp_path / "inbox", tmp_path / "secret"
    inbox.mkdir()
    outside.mkdir()
    (outside / "s.json").write_text("{}")
    (inbox / "evil.json").symlink_to(outside / "s.json")
    (inbox / "real.json").write_text("{}")
    (inbox / "inside.json").symlink_to(inbox / "real.json")
    _, second = settle(inbox)
    assert sorted(f.name for f in second.ready) == ["inside.json", "real.json"]
    assert "outside the inbox" in second.skipped["evil.json"]


def test_missing_inbox_is_empty(tmp_path):
    assert scan_inbox(tmp_path / "nope", None).ready == []


def test_thousands_of_unchanged_files_are_not_read(tmp_path, monkeypatch):
    for i in range(3000):
        (tmp_path / f"b{i}.json").write_text("{}")
    _, second = settle(tmp_path)
    assert len(second.ready) == 3000
    from musingly_pipeline import inbox

    def no_reads(path):
        raise AssertionError(f"read {path}")

    monkeypatch.setattr(inbox, "_sha256", no_reads)
    assert scan_inbox(tmp_path, second.state).ready == []


def test_a_symlink_loop_is_skipped_with_a_reason_and_the_rest_goes_on(tmp_path):
    """One looping link used to make every scan raise `RuntimeError: Symlink loop`."""
    (tmp_path / "self.json").symlink_to("self.json")
    (tmp_path / "ping.json").symlink_to("pong.json")
    (tmp_path / "pong.json").symlink_to("ping.json")
    (tmp_path / "good.json").write_text("{}")
    first, second = settle(tmp_path)
    assert [f.name for f in second.ready] == ["good.json"]
    for name in ("self.json", "ping.json", "pong.json"):
        assert "loop" in second.skipped[name], second.skipped
