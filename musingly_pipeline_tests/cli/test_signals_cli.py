"""`musingly signals`: ingest the example files, replay by entity and source, stats, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from musingly_pipeline.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "signals" / "incoming"


def test_ingest_replay_and_stats(tmp_path, capsys):
    incoming = tmp_path / "incoming"
    shutil.copytree(EXAMPLES, incoming)
    store = str(tmp_path / "ws")
    assert main(["signals", "ingest", "--all", "--store", store, "--incoming", str(incoming)]) == 0
    first = capsys.readouterr().out
    assert "2026-02-04: 1 file(s), 12 written" in first
    assert main(["signals", "ingest", "--day", "2026-02-04", "--store", store, "--incoming", str(incoming)]) == 0
    assert "0 written, 12 already stored" in capsys.readouterr().out
    assert main(["signals", "replay", "--store", store, "--since", "2026-02-05", "--until", "2026-02-05",
                 "--entity", "person:x:ada", "--source", "score.worker"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(r["source"] == "score.worker" and r["timestamp"].startswith("2026-02-05") for r in rows)
    assert main(["signals", "stats", "--store", store, "--json"]) == 0
    assert [d["signals"] for d in json.loads(capsys.readouterr().out)["days"]] == [12, 16, 20]


def test_user_mistakes_are_one_line(tmp_path, capsys):
    assert main(["signals", "replay", "--store", str(tmp_path), "--since", "2026-02-05T00:00:00"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no UTC offset" in err
    assert main(["signals", "ingest", "--all", "--store", str(tmp_path), "--incoming", str(tmp_path / "nope")]) == 1
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "2026-02-05.jsonl").write_text('{"signal_id": "x", "timestamp": "2026-02-05T00:00:00"}\n')
    assert main(["signals", "ingest", "--all", "--store", str(tmp_path / "ws"), "--incoming", str(tmp_path / "in")]) == 1
    assert "SIGNAL_NAIVE_TIMESTAMP" in capsys.readouterr().err


def test_a_date_that_is_not_one_is_a_usage_error_not_a_traceback(tmp_path, capsys):
    for command in (["signals", "stats", "--store", str(tmp_path), "--day", "bogus"],
                    ["signals", "ingest", "--store", str(tmp_path), "--day", "2026-02-30"]):
        with pytest.raises(SystemExit) as exit_:
            main(command)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "is not a date; write it as YYYY-MM-DD" in err and "Traceback" not in err
    assert main(["signals", "replay", "--store", str(tmp_path), "--since", "2026-13-01"]) == 2
    assert "'2026-13-01' is not a date" in capsys.readouterr().err


def test_store_refusals_print_their_code_and_json(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["signals", "stats", "--store", str(tmp_path / "file"), "--json"]) == 1
    out = capsys.readouterr()
    assert out.err.startswith("musingly signals: SIGNAL_STORE_NOT_DIRECTORY: ")
    assert json.loads(out.out)["error"]["code"] == "SIGNAL_STORE_NOT_DIRECTORY"
    assert main(["signals", "replay", "--store", str(tmp_path / "ws"), "--since", "2026-02-06", "--until", "2026-02-05"]) == 1
    assert "SIGNAL_WINDOW_INVALID" in capsys.readouterr().err
