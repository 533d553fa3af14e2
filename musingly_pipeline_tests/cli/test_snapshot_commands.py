"""The snapshot commands as a user runs them: exit codes, output, one-line errors."""

from __future__ import annotations

import json

import pytest

from musingly_pipeline.cli import main
from musingly_pipeline_tests.bundles.helpers import EXAMPLE, HOTFIX


@pytest.fixture
def db(make_database, monkeypatch) -> str:
    url = make_database()  # fresh and never migrated: the commands must do it themselves
    monkeypatch.setenv("MUSINGLY_DATABASE_URL", url)
    return url


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_promote_diff_rollback(db, capsys):
    code, out, _ = run(capsys, "import", str(EXAMPLE), "--promote", "--json")
    assert code == 0
    first = json.loads(out)
    assert first["status"] == "promoted" and first["entity_counts"]["sparks"] == 4

    code, _, err = run(capsys, "import", str(HOTFIX))
    assert code == 1 and "--merge" in err and len(err.strip().splitlines()) == 1

    code, out, _ = run(capsys, "import", str(HOTFIX), "--merge")
    assert code == 0 and "merged" in out and "musingly promote" in out

    code, out, _ = run(capsys, "diff", "--json")
    assert code == 0
    assert json.loads(out)["changes"]["sparks"]["changed"] == ["self-attention-explained"]
    code, out, _ = run(capsys, "diff")
    assert "~ self-attention-explained" in out

    code, out, _ = run(capsys, "promote", "--latest")
    assert code == 0 and "v2.1.1-hotfix" in out
    code, out, _ = run(capsys, "snapshots", "--json")
    assert [s["status"] for s in json.loads(out)] == ["current", "archived"]

    code, out, _ = run(capsys, "rollback", "--json")
    assert code == 0 and json.loads(out)["id"] == first["snapshot_id"]
    code, out, _ = run(capsys, "imports", "--json")
    assert [i["status"] for i in json.loads(out)] == ["rolled_back", "promoted"]
    code, out, _ = run(capsys, "stats", "--json")
    assert json.loads(out)["total_imports"] == 2

    code, _, err = run(capsys, "rollback")
    assert code == 1 and "no previous snapshot" in err


def test_reimport_reports_the_same_snapshot(db, capsys):
    run(capsys, "import", str(EXAMPLE))
    code, out, _ = run(capsys, "import", str(EXAMPLE))
    assert code == 0 and "same content" in out
    code, out, _ = run(capsys, "snapshots")
    assert out.count("ready") == 1
    code, out, _ = run(capsys, "imports")
    header, reused, _ = out.splitlines()
    assert header.split()[-1] == "note"  # a reuse is a note, not an error
    assert "reused snapshot" in reused and "error" not in reused


def test_cli_promote_and_rollback_record_lifecycle_signals(db, capsys, data_dir):
    from datetime import datetime, timezone

    from musingly_pipeline.signals.lifecycle import configured_store, current_snapshot_at

    code, out, _ = run(capsys, "import", str(EXAMPLE), "--json")
    first = json.loads(out)
    run(capsys, "promote", first["import_id"])
    code, out, _ = run(capsys, "import", str(HOTFIX), "--merge", "--json")
    second = json.loads(out)
    code, _, _ = run(capsys, "promote", "--latest")
    assert code == 0
    with configured_store() as store:  # MUSINGLY_DATA_DIR/signals: the session's data folder
        assert current_snapshot_at(store, datetime.now(timezone.utc)).snapshot_id == second["snapshot_id"]
    # with no ready snapshot, `diff` shows what the last promotion did, with the changed fields
    code, out, _ = run(capsys, "diff")
    assert code == 0 and "from v2.1.0 (archived) to v2.1.1-hotfix (current)" in out
    assert "~ self-attention-explained (content_md)" in out
    run(capsys, "rollback")
    with configured_store() as store:
        now = current_snapshot_at(store, datetime.now(timezone.utc))
    assert (now.snapshot_id, now.event) == (first["snapshot_id"], "rolled_back")


def test_dry_run_never_touches_the_database(monkeypatch, capsys):
    monkeypatch.setenv("MUSINGLY_DATABASE_URL", "postgresql://nobody:pw@127.0.0.1:1/none")
    code, out, _ = run(capsys, "import", str(EXAMPLE), "--dry-run")
    assert code == 0 and "would import v2.1.0" in out
    code, out, _ = run(capsys, "import", str(EXAMPLE), "--validate-only", "--json")
    assert code == 0 and json.loads(out)["valid"]


def test_invalid_bundle_exit_1_with_the_issues(db, capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": "1.0.0"}')
    code, _, err = run(capsys, "import", str(bad))
    assert code == 1 and "SCHEMA_MISSING_FIELD" in err
    code, out, _ = run(capsys, "imports")
    assert "no imports" in out


def test_unreachable_database_is_one_line_exit_3_without_password(monkeypatch, capsys):
    monkeypatch.setenv("MUSINGLY_DATABASE_URL", "postgresql://alice:s3cret@127.0.0.1:1/content")
    for argv in (["snapshots"], ["import", str(EXAMPLE)], ["promote", "--latest"], ["db", "status"]):
        code, out, err = run(capsys, *argv)
        assert code == 3, argv
        assert len(err.strip().splitlines()) == 1 and "s3cret" not in err and "127.0.0.1:1/content" in err


def test_lifecycle_refusals_and_usage(db, capsys):
    code, _, err = run(capsys, "promote")
    assert code == 2 and "--latest" in err
    code, _, err = run(capsys, "promote", "not-a-uuid")
    assert code == 1 and "not a UUID" in err
    code, _, err = run(capsys, "delete-draft", "00000000-0000-0000-0000-000000000000")
    assert code == 1 and "does not exist" in err
    code, _, err = run(capsys, "cleanup", "--keep", "0")
    assert code == 2
    code, out, _ = run(capsys, "cleanup", "--keep", "3")
    assert code == 0 and "deleted 0" in out


def test_snapshot_refusals_print_their_code_and_the_json_error_shape(db, capsys):
    code, out, err = run(capsys, "promote", "not-a-uuid", "--json")
    assert code == 1 and err.startswith("musingly promote: IMPORT_ID_INVALID: ")
    error = json.loads(out)["error"]
    assert error["code"] == "IMPORT_ID_INVALID" and error["severity"] == "error" and "not a UUID" in error["message"]
    code, out, err = run(capsys, "promote", "--latest", "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "PROMOTE_NOTHING_READY"
    code, out, _ = run(capsys, "rollback", "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "ROLLBACK_REFUSED"
    code, _, err = run(capsys, "delete-draft", "00000000-0000-0000-0000-000000000000")
    assert code == 1 and "SNAPSHOT_NOT_FOUND" in err
    code, out, _ = run(capsys, "import", str(HOTFIX), "--merge", "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "IMPORT_NOTHING_TO_MERGE"


def test_db_migrate_and_status(db, capsys):
    code, out, _ = run(capsys, "db", "status", "--json")
    assert code == 0 and json.loads(out)["migrations"][0]["applied_at"] is None
    code, out, _ = run(capsys, "db", "migrate")
    assert code == 0 and "0001_baseline.sql" in out
    code, out, _ = run(capsys, "db", "status")
    assert "pending" not in out


def test_every_command_has_help_with_an_example(capsys):
    for command in ("import", "promote", "rollback", "snapshots", "imports", "stats", "delete-draft",
                    "cleanup", "diff", "db"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        assert "Example:" in capsys.readouterr().out


def test_an_import_whose_signal_cannot_be_written_says_it_is_done_and_what_is_missing(db, capsys, monkeypatch,
                                                                                       tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MUSINGLY_SIGNAL_STORE", str(blocker / "signals"))
    code, out, err = run(capsys, "import", str(EXAMPLE))
    assert code == 1
    assert "imported" in out and "(ready)" in out
    assert "is ready" in err and "lifecycle signal could not be written" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run(capsys, "imports", "--json")
    assert [i["status"] for i in json.loads(out)] == ["ready"]  # what it said is what it did
