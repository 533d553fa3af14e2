"""`musingly batches`, `musingly batch show`, `musingly batch reprocess` against a real database."""

from __future__ import annotations

import json

import psycopg
import pytest

from musingly_pipeline.cli import main
from musingly_pipeline_tests.batches.processors import PACKAGE, make_manager


@pytest.fixture
def manager(make_database, monkeypatch):
    url = make_database()
    monkeypatch.setenv("MUSINGLY_DATABASE_URL", url)
    monkeypatch.setenv("MUSINGLY_PROCESSOR_PACKAGES", PACKAGE)
    return make_manager(url)


def test_list_show_and_reprocess_failures(manager, capsys):
    with psycopg.connect(manager.database_url) as conn:
        conn.execute("INSERT INTO toggle_switch VALUES ('off')")
    failed = manager.process_batch(manager.create_batch("toggle", [{"n": 1}, {"n": 2}]))
    ok = manager.process_batch(manager.create_batch("counter", [{"n": 9}]))
    capsys.readouterr()

    assert main(["batches", "--status", "failed"]) == 0
    out = capsys.readouterr().out
    assert str(failed.batch_id) in out and str(ok.batch_id) not in out

    assert main(["batch", "show", str(failed.batch_id)]) == 0
    out = capsys.readouterr().out
    assert "status failed" in out and "[0] ITEM_FAILED: RuntimeError: the switch is off" in out

    assert main(["batch", "reprocess", str(failed.batch_id)]) == 1  # still off: fails again
    capsys.readouterr()
    with psycopg.connect(manager.database_url) as conn:
        conn.execute("UPDATE toggle_switch SET value = 'on'")
    assert main(["batch", "reprocess", str(failed.batch_id), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["parent_batch_id"] == str(failed.batch_id)
    assert (summary["status"], summary["completed_items"]) == ("completed", 2)

    assert main(["batches", "--json", "--type", "toggle"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_mistakes_are_one_line_with_a_code(manager, capsys):
    assert main(["batch", "show", "not-a-uuid"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("musingly batch: BATCH_ID_INVALID") and "Traceback" not in err
    assert main(["batch", "reprocess", "3f2c9a1e-0c4b-4d8e-9a57-1b2c3d4e5f60"]) == 1
    assert "BATCH_NOT_FOUND" in capsys.readouterr().err
    ok = manager.process_batch(manager.create_batch("counter", [{"n": 1}]))
    assert main(["batch", "reprocess", str(ok.batch_id)]) == 1
    assert "BATCH_NOTHING_TO_REPROCESS" in capsys.readouterr().err


def test_unreachable_database_exits_3(monkeypatch, capsys):
    monkeypatch.setenv("MUSINGLY_DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/none")
    assert main(["batches"]) == 3
    err = capsys.readouterr().err
    assert "database unavailable" in err and "secret" not in err


@pytest.mark.parametrize("argv", [["batches", "--help"], ["batch", "show", "--help"], ["batch", "process", "--help"],
                                  ["batch", "reprocess", "--help"]])
def test_every_command_has_help_with_an_example(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0 and "Example:" in capsys.readouterr().out
