"""Seed units in a real PostgreSQL: exact round trip, per-unit failure, upsert in place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from psycopg import sql

from musingly_pipeline.seed_units.files import UNITS_DIR, USERS_FILE, encode
from musingly_pipeline.seed_units.folder import export_folder, import_folder, round_trip
from musingly_pipeline.seed_units.synthetic import synthetic_unit, synthetic_users
from musingly_pipeline.storage.database import connect
from musingly_pipeline.seed_units.tables import CHILD_TABLES, USERS, UNITS

SEED_DATA = Path(__file__).resolve().parents[2] / "data" / "seed_data"
TABLES = ("users", "units") + tuple(t.name for t in CHILD_TABLES)


def folder(tmp_path: Path, units: dict[str, dict], users: dict | None = None) -> Path:
    (tmp_path / UNITS_DIR).mkdir(parents=True, exist_ok=True)
    (tmp_path / USERS_FILE).write_bytes(encode(users or synthetic_users()))
    for name, document in units.items():
        (tmp_path / UNITS_DIR / name).write_bytes(encode(document))
    return tmp_path


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*.json"))}


def table_contents(url: str) -> dict[str, list]:
    """Every row of every seed table, in a stable order (the database state)."""
    with connect(url) as conn:
        return {
            table: sorted(map(repr, conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall()))
            for table in TABLES
        }


def count(url: str, table: str) -> int:
    with connect(url) as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]


def test_example_files_round_trip_byte_for_byte(make_database, tmp_path):
    url = make_database()
    result = import_folder(SEED_DATA, url)
    assert result.ok, result.issues()
    assert len(result.units) >= 2
    export_folder(tmp_path, url, users=True)
    assert files(tmp_path) == files(SEED_DATA)
    assert round_trip(SEED_DATA, url).exact


def test_generated_unit_with_every_optional_part_round_trips(make_database, tmp_path):
    """Database A -> export -> import -> Database B: same files, same rows."""
    url_a, url_b = make_database(), make_database()
    source = folder(tmp_path / "source", {"big.json": synthetic_unit(11, lessons=3, exercises=6)})
    assert import_folder(source, url_a).ok
    export_folder(tmp_path / "a", url_a, users=True)
    [exported] = (tmp_path / "a" / UNITS_DIR).iterdir()
    assert exported.read_bytes() == (source / UNITS_DIR / "big.json").read_bytes()
    assert import_folder(tmp_path / "a", url_b).ok
    export_folder(tmp_path / "b", url_b, users=True)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert table_contents(url_a) == table_contents(url_b)


def test_absent_and_null_fields_and_number_spelling_survive(make_database, tmp_path):
    url = make_database()
    document = synthetic_unit(12, lessons=1, exercises=2)
    lesson = document["lessons"][0]
    del lesson["podcast_voice"]
    lesson["podcast_transcript"] = None
    lesson["step_runs"] = None
    del lesson["llm_requests"]
    lesson["flow_run"]["progress_percentage"] = 100
    lesson["flow_run"]["created_at"] = "2024-01-15T10:00:00.5+05:30"
    lesson["package"]["quiz_metadata"]["difficulty_distribution_target"] = {"easy": 1, "hard": 0.0}
    document["learning_conversations"] = {"coach": None}
    del document["resources"]
    del document["learning_conversations"]["coach"]
    document["learning_conversations"]["assistant"] = []
    source = folder(tmp_path / "source", {"u.json": document})
    # llm_requests is gone, so nothing may refer to it.
    assert import_folder(source, url).ok
    assert round_trip(source, url).exact


def test_a_broken_unit_fails_alone(make_database, tmp_path):
    url = make_database()
    broken = synthetic_unit(21, lessons=1, exercises=3)
    broken["lessons"][0]["package"]["quiz"][0] = "ex_404"
    source = folder(tmp_path, {
        "a.json": synthetic_unit(20, lessons=1, exercises=3),
        "b-broken.json": broken,
        "c.json": synthetic_unit(22, lessons=1, exercises=3),
    })
    result = import_folder(source, url)
    assert not result.ok
    assert [(u.source, u.imported) for u in result.units] == [
        ("units/a.json", True), ("units/b-broken.json", False), ("units/c.json", True)]
    [failed] = result.failed
    assert [(i.code, i.path) for i in failed.errors] == [
        ("SEED_QUIZ_UNKNOWN_EXERCISE", "lessons[0].package.quiz[0]")]
    assert count(url, "units") == 2


def test_a_unit_refused_by_the_database_fails_alone(make_database, tmp_path):
    """A lesson id already owned by another unit: the second unit fails, the first stays whole."""
    url = make_database()
    first = synthetic_unit(30, lessons=1, exercises=2)
    second = synthetic_unit(31, lessons=1, exercises=2)
    second["lessons"][0]["id"] = first["lessons"][0]["id"]
    result = import_folder(folder(tmp_path, {"a.json": first, "b.json": second}), url)
    assert [u.imported for u in result.units] == [True, False]
    [issue] = result.units[1].issues
    assert issue.code == "SEED_ID_CONFLICT" and "lessons" in issue.message
    assert count(url, "units") == 1 and count(url, "lessons") == 1


def test_reimporting_a_fixed_unit_updates_it_in_place(make_database, tmp_path):
    url = make_database()
    document = synthetic_unit(40, lessons=3, exercises=2)
    document["lessons"][1]["package"]["quiz_metadata"]["total_items"] = 99
    source = folder(tmp_path / "source", {"u.json": document})
    assert not import_folder(source, url).ok
    assert count(url, "units") == 0

    document["lessons"][1]["package"]["quiz_metadata"]["total_items"] = 1
    (source / UNITS_DIR / "u.json").write_bytes(encode(document))
    first = import_folder(source, url)
    assert first.ok and first.units[0].created is True

    document["title"] = "A better title"
    document["lessons"].pop()
    (source / UNITS_DIR / "u.json").write_bytes(encode(document))
    again = import_folder(source, url)
    assert again.ok and again.units[0].created is False and again.units[0].unit_id == document["id"]
    assert count(url, "units") == 1 and count(url, "lessons") == 2
    assert round_trip(source, url).exact


def test_missing_ids_get_uuids_and_export_writes_them(make_database, tmp_path):
    url = make_database()
    document = synthetic_unit(50, lessons=2, exercises=2)
    del document["id"]
    for lesson in document["lessons"]:
        del lesson["id"], lesson["flow_run"]["id"], lesson["flow_run_id"]
        for step in lesson["step_runs"]:
            del step["id"], step["flow_run_id"]
    source = folder(tmp_path / "source", {"u.json": document})
    result = import_folder(source, url)
    assert result.ok, result.issues()
    unit_id = result.units[0].unit_id
    export = export_folder(tmp_path / "out", url, unit_ids=[unit_id])
    exported = json.loads(export.files[0].read_bytes())
    assert exported["id"] == unit_id
    lesson = exported["lessons"][0]
    assert lesson["id"] and lesson["flow_run_id"] == lesson["flow_run"]["id"]
    assert {s["flow_run_id"] for s in lesson["step_runs"]} == {lesson["flow_run_id"]}
    # The export now carries the ids: importing it again updates the same unit.
    shutil.copy(export.files[0], source / UNITS_DIR / "u.json")
    assert import_folder(source, url).units[0].created is False
    assert count(url, "units") == 1


def test_export_names_units_with_equal_titles_apart(make_database, tmp_path):
    url = make_database()
    a, b = synthetic_unit(60, lessons=1, exercises=1), synthetic_unit(61, lessons=1, exercises=1)
    a["title"] = b["title"] = "../Same / Title"
    assert import_folder(folder(tmp_path / "source", {"a.json": a, "b.json": b}), url).ok
    export = export_folder(tmp_path / "out", url)
    names = sorted(p.name for p in export.files)
    assert len(names) == 2 and names[0].startswith("same-title") and names[0] != names[1]
    assert all(p.parent == tmp_path / "out" / UNITS_DIR for p in export.files)


def test_table_columns_are_the_document_fields(database_url):
    from musingly_pipeline.storage.migrations import ensure_migrated

    ensure_migrated(database_url)
    with connect(database_url) as conn:
        for table in (USERS, UNITS, *CHILD_TABLES):
            columns = {r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table.name,))}
            assert columns == set(table.columns), table.name


@pytest.mark.parametrize("name", ["users.json"])
def test_users_round_trip_in_file_order(make_database, tmp_path, name):
    url = make_database()
    users = synthetic_users()
    users["users"].reverse()
    source = folder(tmp_path / "source", {}, users)
    assert import_folder(source, url).ok
    export_folder(tmp_path / "out", url, users=True)
    assert (tmp_path / "out" / name).read_bytes() == (source / name).read_bytes()
