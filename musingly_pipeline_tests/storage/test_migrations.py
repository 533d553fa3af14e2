"""The baseline migration and old databases: a database made by ``0001_baseline.sql`` and one made by the
old chain (``migrations/legacy/``, whole or in part) and then upgraded by the runner are the same schema,
compared object by object from the catalogs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from musingly_pipeline.storage.database import connect
from musingly_pipeline.storage.migrations import (
    MIGRATIONS_DIR, MigrationError, available, legacy, migrate, status,
)

BASELINE = available()[0]
OLD_CHAIN = legacy()

# Each query lists one kind of object of the public schema as comparable rows (no oids, no times).
SCHEMA_QUERIES = {
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence, c.reloptions::text, c.relispartition,
               CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END
        FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace""",
    "columns": """
        SELECT table_name, column_name, ordinal_position, data_type, udt_name, is_nullable, column_default,
               is_identity, identity_generation, identity_start, identity_increment, identity_cycle,
               is_generated, character_maximum_length, numeric_precision, numeric_scale
        FROM information_schema.columns WHERE table_schema = 'public'""",
    "column_storage": """
        SELECT c.relname, a.attname, a.attstorage, a.attcompression, a.attstattarget, a.attnotnull, a.atthasdef
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": """
        SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid, true),
               c.condeferrable, c.condeferred, c.convalidated, c.connoinherit
        FROM pg_constraint c WHERE c.connamespace = 'public'::regnamespace""",
    "indexes": """
        SELECT i.indrelid::regclass::text, x.relname, pg_get_indexdef(i.indexrelid), i.indisunique,
               i.indisprimary, i.indisvalid
        FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
        WHERE x.relnamespace = 'public'::regnamespace""",
    "views": """
        SELECT c.relname, pg_get_viewdef(c.oid, true)
        FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
        FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace""",
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid, true), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal""",
    "sequences": """
        SELECT s.sequencename, s.data_type::text, s.start_value, s.min_value, s.max_value, s.increment_by,
               s.cycle, s.cache_size,
               (SELECT d.refobjid::regclass::text || '.' || a.attname || ' (' || d.deptype::text || ')'
                FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = (s.schemaname || '.' || s.sequencename)::regclass
                  AND d.deptype IN ('a', 'i'))
        FROM pg_sequences s WHERE s.schemaname = 'public'""",
    "comments": """
        SELECT pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
        FROM pg_description d WHERE d.objoid >= 16384""",  # FirstNormalObjectId: objects made after initdb
    "types": """
        SELECT t.typname, t.typtype FROM pg_type t
        WHERE t.typnamespace = 'public'::regnamespace AND t.typtype NOT IN ('c', 'b')""",
}


def schema(url: str) -> dict[str, list[tuple]]:
    """Every object of the database's public schema, by kind, as sorted rows."""
    with connect(url) as conn:
        return {kind: sorted(conn.execute(query).fetchall(), key=repr) for kind, query in SCHEMA_QUERIES.items()}


def assert_same_schema(expected: dict[str, list[tuple]], actual: dict[str, list[tuple]]) -> None:
    differences = []
    for kind in SCHEMA_QUERIES:
        missing = [row for row in expected[kind] if row not in actual[kind]]
        extra = [row for row in actual[kind] if row not in expected[kind]]
        if missing or extra:
            differences.append(f"{kind}:\n  only in the baseline: {missing}\n  only in the upgraded: {extra}")
    assert not differences, "the schemas differ in " + "\n".join(differences)


def old_chain_folder(tmp_path: Path, last: str | None = None) -> Path:
    """A folder with the legacy files up to ``last`` (all if None), as the old runner found them."""
    folder = tmp_path / f"old-upto-{last or 'all'}"
    folder.mkdir()
    for migration in OLD_CHAIN:
        shutil.copy(MIGRATIONS_DIR / "legacy" / migration.name, folder / migration.name)
        if migration.name == last:
            break
    return folder


def recorded(url: str) -> dict[str, tuple]:
    with connect(url) as conn:
        return {r[0]: r[1:] for r in conn.execute("SELECT name, checksum, applied_at FROM schema_migrations")}


@pytest.fixture(scope="module")
def baseline_schema(make_database) -> dict[str, list[tuple]]:
    url = make_database()
    assert migrate(url) == [m.name for m in available()]
    return schema(url)


def test_the_baseline_is_the_first_migration_and_the_old_chain_is_kept():
    assert BASELINE.name == "0001_baseline.sql"
    assert [m.name for m in OLD_CHAIN][:1] == ["0001_snapshot_store.sql"] and len(OLD_CHAIN) == 12
    assert all(not m.name.startswith("0001_") for m in available()[1:])


def test_the_baseline_schema_is_the_whole_schema(baseline_schema):
    tables = {r[0] for r in baseline_schema["relations"] if r[1] in ("r", "p")}
    assert {"snapshots", "import_logs", "sparks", "staged_bundles", "inbox_pushes", "units", "import_batches",
            "signal_events", "schema_migrations"} <= tables
    counts = {kind: len(rows) for kind, rows in baseline_schema.items()}
    assert counts["functions"] >= 25 and counts["triggers"] >= 50 and counts["views"] == 12
    assert counts["sequences"] >= 5 and counts["comments"] >= 15


def test_an_old_database_upgrades_to_the_baseline(make_database, tmp_path, baseline_schema):
    url = make_database()
    assert migrate(url, old_chain_folder(tmp_path)) == [m.name for m in OLD_CHAIN]
    # The whole old chain is there: nothing of it runs again, the baseline is recorded, not run.
    assert migrate(url) == [m.name for m in available()[1:]]
    rows = recorded(url)
    assert rows[BASELINE.name][0] == BASELINE.checksum
    assert {m.name for m in OLD_CHAIN} <= rows.keys()
    assert all(state.applied_at is not None for state in status(url))
    assert_same_schema(baseline_schema, schema(url))


@pytest.mark.parametrize("last", ["0001_snapshot_store.sql", "0005_reference_checks.sql", "0008_lifecycle_lock_order.sql"])
def test_a_partly_migrated_old_database_gets_the_rest_of_the_old_chain_first(make_database, tmp_path,
                                                                              baseline_schema, last):
    url = make_database()
    migrate(url, old_chain_folder(tmp_path, last))
    rest = [m.name for m in OLD_CHAIN if m.name > last]
    assert migrate(url) == rest + [m.name for m in available()[1:]]
    assert {m.name for m in OLD_CHAIN} | {BASELINE.name} <= recorded(url).keys()
    assert_same_schema(baseline_schema, schema(url))


def test_running_the_runner_again_is_a_no_op(make_database, tmp_path):
    fresh, old = make_database(), make_database()
    migrate(fresh)
    migrate(old, old_chain_folder(tmp_path, "0005_reference_checks.sql"))
    migrate(old)
    for url in (fresh, old):
        before, rows = schema(url), recorded(url)
        assert migrate(url) == []
        assert schema(url) == before and recorded(url) == rows


# The rule on small folders: a baseline, a later migration and a legacy chain of two files.

def _folders(tmp_path: Path, baseline: str = "CREATE TABLE a (id int, b text);") -> tuple[Path, Path]:
    old = tmp_path / "old"
    new = tmp_path / "new"
    (new / "legacy").mkdir(parents=True)
    old.mkdir()
    for name, text in (("0001_a.sql", "CREATE TABLE a (id int);"), ("0002_b.sql", "ALTER TABLE a ADD COLUMN b text;")):
        (old / name).write_text(text)
        (new / "legacy" / name).write_text(text)
    (new / "0001_baseline.sql").write_text(baseline)
    (new / "0002_c.sql").write_text("CREATE TABLE c (id int);")
    return old, new


def test_a_fresh_database_runs_the_baseline_and_never_reads_the_legacy_files(make_database, tmp_path):
    _, new = _folders(tmp_path)
    (new / "legacy" / "0002_b.sql").write_text("SELECT no_such_function();")
    url = make_database()
    assert migrate(url, new) == ["0001_baseline.sql", "0002_c.sql"]
    assert set(recorded(url)) == {"0001_baseline.sql", "0002_c.sql"}


def test_an_old_database_records_the_baseline_without_running_it(make_database, tmp_path):
    old, new = _folders(tmp_path, baseline="SELECT no_such_function();")  # it would fail if it ran
    url = make_database()
    migrate(url, old)
    (old / "0002_b.sql").unlink()
    url_partial = make_database()
    migrate(url_partial, old)
    assert migrate(url, new) == ["0002_c.sql"]
    assert migrate(url_partial, new) == ["0002_b.sql", "0002_c.sql"]
    for u in (url, url_partial):
        assert set(recorded(u)) == {"0001_a.sql", "0002_b.sql", "0001_baseline.sql", "0002_c.sql"}
        with connect(u) as conn:
            assert [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'a' ORDER BY ordinal_position")] \
                == ["id", "b"]


def test_an_edited_legacy_file_is_refused(make_database, tmp_path):
    old, new = _folders(tmp_path)
    url = make_database()
    migrate(url, old)
    (new / "legacy" / "0001_a.sql").write_text("CREATE TABLE a (id bigint);")
    with pytest.raises(MigrationError, match="0001_a.sql was edited") as info:
        migrate(url, new)
    assert info.value.code == "MIGRATION_EDITED"
    assert "0001_baseline.sql" not in recorded(url)


def test_musingly_db_migrate_prints_a_refused_migration_with_its_code(make_database, monkeypatch, capsys):
    from musingly_pipeline.cli import main

    url = make_database()
    migrate(url)
    with connect(url) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE name = %s", (BASELINE.name,))
        conn.commit()
    monkeypatch.setenv("MUSINGLY_DATABASE_URL", url)
    assert main(["db", "migrate"]) == 1
    assert f"MIGRATION_EDITED: {BASELINE.name} was edited" in capsys.readouterr().err
