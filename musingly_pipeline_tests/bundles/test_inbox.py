"""Inbox scanning: new, changed, unchanged, half-written and hostile files."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from musingly_pipeline.bundles.inbox import scan_inbox


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


def test_thousands_of_unchanged_files_are_not_read(tmp_path):
    for i in range(3000):
        (tmp_path / f"b{i}.json").write_text("{}")
    _, second = settle(tmp_path)
    assert len(second.ready) == 3000
    # New bytes behind an unchanged size and modification time: a scan that read the files would
    # hand them out again; one that only stats them does not.
    for i in range(3000):
        path = tmp_path / f"b{i}.json"
        stat = path.stat()
        path.write_text("[]")
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert scan_inbox(tmp_path, second.state).ready == []


def test_a_file_must_stay_unchanged_for_the_settle_time(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"half": ')
    first = scan_inbox(tmp_path, None, settle_seconds=10, now=1000.0)
    # a writer pausing: the same size and mtime on the next tick, but not for 10 s yet
    paused = scan_inbox(tmp_path, first.state, settle_seconds=10, now=1005.0)
    assert paused.ready == [] and paused.waiting == ["a.json"]
    path.write_text('{"half": "and the rest"}')
    resumed = scan_inbox(tmp_path, paused.state, settle_seconds=10, now=1008.0)
    assert resumed.ready == []
    still = scan_inbox(tmp_path, resumed.state, settle_seconds=10, now=1012.0)
    assert still.ready == []  # 4 s since the last change
    done = scan_inbox(tmp_path, still.state, settle_seconds=10, now=1018.5)
    assert [f.name for f in done.ready] == ["a.json"]
    assert done.ready[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_incremental_files_are_named_by_their_folder(tmp_path):
    (tmp_path / "incremental").mkdir()
    (tmp_path / "incremental" / "fix.json").write_text('{"v": 1}')
    (tmp_path / "full.json").write_text('{"v": 2}')
    _, second = settle(tmp_path)
    ready = {f.name: f.incremental for f in second.ready}
    assert ready == {"incremental/fix.json": True, "full.json": False}


def test_ready_files_are_staged_and_a_file_changed_while_staged_waits(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"v": 1}')
    staged: list[tuple[str, str]] = []

    def stage(p: Path, sha: str) -> str:
        staged.append((p.name, sha))
        return sha

    first = scan_inbox(tmp_path, None, stage=stage)
    second = scan_inbox(tmp_path, first.state, stage=stage)
    assert [f.sha256 for f in second.ready] == [staged[0][1]] and len(staged) == 1

    path.write_text('{"v": 2}')

    def stage_while_rewritten(p: Path, sha: str) -> str:
        p.write_text('{"v": 3, "still": "writing"}')  # the writer is back: what got staged differs
        return "0" * 64

    changed = scan_inbox(tmp_path, second.state)
    raced = scan_inbox(tmp_path, changed.state, stage=stage_while_rewritten)
    assert raced.ready == [] and raced.waiting == ["a.json"]
    calm = scan_inbox(tmp_path, raced.state, stage=stage)
    assert [f.name for f in calm.ready] == ["a.json"]
    assert calm.ready[0].sha256 == hashlib.sha256(b'{"v": 3, "still": "writing"}').hexdigest()


def test_a_link_loop_is_skipped_and_the_rest_goes_on(tmp_path):
    (tmp_path / "loop.json").symlink_to(tmp_path / "loop.json")
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    (tmp_path / "good.json").write_text("{}")
    _, second = settle(tmp_path)
    assert [f.name for f in second.ready] == ["good.json"]
    assert set(second.skipped) == {"loop.json", "dangling.json"}


def test_a_file_quiet_for_the_settle_time_by_its_mtime_is_ready_at_first_sight(tmp_path):
    old, fresh = tmp_path / "old.json", tmp_path / "fresh.json"
    old.write_text('{"v": 1}')
    fresh.write_text('{"v": 2}')
    now = time.time()
    os.utime(old, (now - 60, now - 60))  # renamed into place a minute after it was written
    first = scan_inbox(tmp_path, None, settle_seconds=10, now=now)
    assert [f.name for f in first.ready] == ["old.json"] and first.waiting == ["fresh.json"]
    later = scan_inbox(tmp_path, first.state, settle_seconds=10, now=now + 11)
    assert [f.name for f in later.ready] == ["fresh.json"]


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
