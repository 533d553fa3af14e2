"""A seed folder's files are read only from inside it, and what is not a unit is neither kept nor echoed.

The audit linked `units/p.json` to `/etc/passwd`: its text was stored in
`import_batch_items.source_data` and served by `musingly batch show --json`; a unit linked from
outside the folder was imported; and `seed export` wrote through a pre-existing `OUT/units` link.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import psycopg
import pytest

from musingly_pipeline.cli import main
from musingly_pipeline.seed_units.files import UNITS_DIR, USERS_FILE, encode
from musingly_pipeline.seed_units.folder import import_folder
from musingly_pipeline.seed_units.synthetic import synthetic_unit, synthetic_users

SEED_DATA = Path(__file__).resolve().parents[2] / "data" / "seed_data"
SECRET = "SECRET-7f3a-CONTENT"


@pytest.fixture
def url(make_database, monkeypatch) -> str:
    url = make_database()
    monkeypatch.setenv("MUSINGLY_DATABASE_URL", url)
    return url


@pytest.fixture
def seed(tmp_path) -> Path:
    shutil.copytree(SEED_DATA, tmp_path / "seed")
    return tmp_path / "seed"


def secret_unit() -> dict:
    document = synthetic_unit(77, lessons=1, exercises=2)
    document["title"] = SECRET
    document["description"] = SECRET
    return document


def stored_text(url: str) -> str:
    """Everything the batch tables hold, as text."""
    with psycopg.connect(url) as conn:
        return "\n".join(
            str(row) for table in ("import_batch_items", "import_batch_logs", "import_batches")
            for row in conn.execute(f"SELECT * FROM {table}").fetchall())


def batch_show(capsys, batch_id) -> str:
    capsys.readouterr()
    assert main(["batch", "show", str(batch_id), "--json"]) == 0
    return capsys.readouterr().out


def test_a_unit_linked_from_outside_the_folder_is_refused_and_nothing_of_it_kept(url, seed, tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_bytes(encode(secret_unit()))
    (seed / UNITS_DIR / "p.json").symlink_to(outside / "secret.json")

    result = import_folder(seed, url)
    by_source = {u.source: u for u in result.units}
    linked = by_source["units/p.json"]
    assert not linked.imported
    assert [i.code for i in linked.errors] == ["FILE_OUTSIDE_FOLDER"]
    assert all(u.imported for s, u in by_source.items() if s != "units/p.json")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM units WHERE title = %s", (SECRET,)).fetchone()[0] == 0
    assert SECRET not in stored_text(url)
    assert SECRET not in batch_show(capsys, result.batch_id)


def test_a_link_to_a_system_file_is_refused_without_reading_it(url, seed, capsys):
    (seed / UNITS_DIR / "passwd.json").symlink_to("/etc/passwd")
    result = import_folder(seed, url)
    [linked] = [u for u in result.units if u.source == "units/passwd.json"]
    assert [i.code for i in linked.errors] == ["FILE_OUTSIDE_FOLDER"]
    assert "root:" not in stored_text(url)
    assert "root:" not in batch_show(capsys, result.batch_id)


def test_users_json_and_the_units_folder_linked_from_outside_are_refused(url, seed, tmp_path):
    outside = tmp_path / "outside"
    (outside / UNITS_DIR).mkdir(parents=True)
    (outside / USERS_FILE).write_bytes(encode(synthetic_users()))
    (outside / UNITS_DIR / "secret.json").write_bytes(encode(secret_unit()))
    (seed / USERS_FILE).unlink()
    (seed / USERS_FILE).symlink_to(outside / USERS_FILE)
    shutil.rmtree(seed / UNITS_DIR)
    (seed / UNITS_DIR).symlink_to(outside / UNITS_DIR, target_is_directory=True)

    result = import_folder(seed, url)
    assert [i.code for i in result.users.errors] == ["FILE_OUTSIDE_FOLDER"]
    assert [(u.source, [i.code for i in u.errors]) for u in result.units] == [
        ("units/secret.json", ["FILE_OUTSIDE_FOLDER"])]
    assert SECRET not in stored_text(url)


def test_links_inside_the_folder_are_followed(url, seed):
    shared = seed / "shared"
    shared.mkdir()
    (shared / "u.json").write_bytes(encode(synthetic_unit(78, lessons=1, exercises=2)))
    (seed / UNITS_DIR / "u.json").symlink_to(Path("..") / "shared" / "u.json")
    result = import_folder(seed, url)
    assert result.ok, result.issues()
    assert "units/u.json" in [u.source for u in result.units]


def test_entries_that_are_not_regular_files_are_refused_without_blocking(url, seed):
    os.mkfifo(seed / UNITS_DIR / "pipe.json")  # opening it for reading would wait for a writer
    (seed / UNITS_DIR / "loop.json").symlink_to("loop.json")
    (seed / UNITS_DIR / "dangling.json").symlink_to("nowhere.json")
    result = import_folder(seed, url)
    codes = {u.source: [i.code for i in u.errors] for u in result.units}
    assert codes["units/pipe.json"] == ["FILE_UNREADABLE"]
    assert codes["units/loop.json"] == ["FILE_UNREADABLE"]
    assert codes["units/dangling.json"] == ["FILE_NOT_FOUND"]
    assert sum(u.imported for u in result.units) == 2


@pytest.mark.parametrize(("content", "code"), [
    (b"root:x:0:0:" + SECRET.encode() + b":/root:/bin/bash\n", "JSON_INVALID"),
    (json.dumps([SECRET, "an array, not a unit"]).encode(), "SEED_NOT_OBJECT"),
    (b"\xff\xfe" + SECRET.encode(), "FILE_NOT_UTF8"),
])
def test_a_file_that_is_not_a_unit_fails_without_its_content_being_kept(url, seed, capsys, content, code):
    (seed / UNITS_DIR / "notes.json").write_bytes(content)
    result = import_folder(seed, url)
    [notes] = [u for u in result.units if u.source == "units/notes.json"]
    assert [i.code for i in notes.errors] == [code]
    assert SECRET not in stored_text(url)
    shown = batch_show(capsys, result.batch_id)
    assert SECRET not in shown
    [item] = [i for i in json.loads(shown)["items"] if i["source_data"]["file"] == "units/notes.json"]
    assert item["status"] == "failed" and item["error_code"] == "ITEM_INVALID" and code in item["error_message"]

    # reprocessing it says the same: the file must be fixed and imported again
    capsys.readouterr()
    assert main(["batch", "reprocess", str(result.batch_id), "--json"]) == 1
    assert SECRET not in stored_text(url)


def test_export_does_not_write_through_a_units_link_leading_out(url, tmp_path, capsys):
    assert main(["seed", "import", "--dir", str(SEED_DATA)]) == 0
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / UNITS_DIR).symlink_to(elsewhere, target_is_directory=True)
    capsys.readouterr()
    assert main(["seed", "export", "--all-units", "--output-dir", str(out)]) == 1
    assert "FILE_OUTSIDE_FOLDER" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []


def test_export_writes_through_a_units_link_inside_the_folder(url, tmp_path):
    assert main(["seed", "import", "--dir", str(SEED_DATA)]) == 0
    out = tmp_path / "out"
    (out / "real-units").mkdir(parents=True)
    (out / UNITS_DIR).symlink_to("real-units", target_is_directory=True)
    assert main(["seed", "export", "--all-units", "--output-dir", str(out)]) == 0
    assert sorted(p.name for p in (out / "real-units").iterdir()) == sorted(
        p.name for p in (SEED_DATA / UNITS_DIR).iterdir())


def test_the_folder_check_reads_the_files_as_the_import_does(url, seed, tmp_path):
    """The Dagster check `seed_units_package_validation` used to read the files itself, following links."""
    from musingly_pipeline.seed_units.folder import validate_folder

    os.mkfifo(seed / UNITS_DIR / "pipe.json")
    (seed / UNITS_DIR / "passwd.json").symlink_to("/etc/passwd")
    issues = {(i.code, i.path) for i in validate_folder(seed, url)}
    assert issues == {("FILE_UNREADABLE", "units/pipe.json"), ("FILE_OUTSIDE_FOLDER", "units/passwd.json")}
