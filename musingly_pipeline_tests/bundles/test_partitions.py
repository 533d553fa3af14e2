"""Content tables partitioned by snapshot (0001_baseline.sql): one partition per snapshot and table,
loaded detached, indexed by sort, checked and attached; dropped with their snapshot."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from musingly_core.models import ENTITY_KINDS

from musingly_pipeline.bundles import SnapshotStore
from musingly_pipeline.storage.database import connect
from musingly_pipeline.bundles.loader import TABLES, copy_rows, table_rows
from musingly_pipeline.storage.migrations import MIGRATIONS_DIR, migrate
from musingly_pipeline_tests.bundles.helpers import EXAMPLE, bundle, variant


@pytest.fixture
def url(make_database) -> str:
    return make_database()


def _partitions(conn: psycopg.Connection, table: str) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass", (table,))}


def _content_tables(conn: psycopg.Connection) -> set[str]:
    """Every table whose name starts like a content table's (partitions and leftovers alike)."""
    return {r[0] for r in conn.execute(
        "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND relname ~ %s",
        ("^(" + "|".join(ENTITY_KINDS) + ")(_|$)",))}


def test_each_snapshot_is_one_partition_per_table_and_goes_with_it(url):
    a = SnapshotStore(url).import_file(EXAMPLE)
    b = SnapshotStore(url).import_bundle(variant("b", "b"))
    with connect(url) as conn:
        for kind in ENTITY_KINDS:
            names = {conn.execute("SELECT snapshot_partition(%s, %s)", (kind, s)).fetchone()[0]
                     for s in (a.snapshot_id, b.snapshot_id)}
            assert names <= _partitions(conn, kind), kind
            # the keys and indexes of the parent, attached (not built twice)
            assert conn.execute(
                "SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass",
                (min(names),)).fetchone()[0] == conn.execute(
                "SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", (kind,)).fetchone()[0]
    SnapshotStore(url).delete_draft(a.snapshot_id)
    with connect(url) as conn:
        left = _content_tables(conn)
    assert not {t for t in left if t.endswith(a.snapshot_id.hex)}
    assert SnapshotStore(url).snapshot_row_counts(b.snapshot_id) == b.entity_counts


def test_a_partition_that_fails_its_reference_check_is_not_attached_and_leaves_no_table(url):
    """The loader's own path in SQL: prepare, fill, finish; a stray reference is refused by the
    database itself (the loader's ids come from the validated bundle, so this is the last guard)."""
    a = SnapshotStore(url).import_file(EXAMPLE, promote=True)
    with connect(url) as conn:
        before = _content_tables(conn)
        sid = conn.execute("SELECT create_snapshot_row('by hand', 'by-hand')").fetchone()[0]
        for kind in ("sparks", "spark_links"):
            name = conn.execute("SELECT prepare_snapshot_partition(%s, %s)", (kind, sid)).fetchone()[0]
            conn.execute(f"INSERT INTO {name} SELECT %s, " + ", ".join(TABLES[kind].columns[1:]) +
                         f" FROM {kind} WHERE snapshot_id = %s", (sid, a.snapshot_id))
            if kind == "spark_links":
                conn.execute(f"UPDATE {name} SET target_id = gen_random_uuid() "
                             "WHERE ctid = (SELECT min(ctid) FROM " + name + ")")
                with pytest.raises(psycopg.errors.ForeignKeyViolation,
                                   match=rf"spark_links\.target_id -> sparks: .* is not in snapshot {sid}"):
                    with conn.transaction():  # a savepoint: the rest of the transaction goes on
                        conn.execute("SELECT finish_snapshot_partition(%s, %s)", (kind, sid))
            else:
                conn.execute("SELECT finish_snapshot_partition(%s, %s)", (kind, sid))
        assert name not in _partitions(conn, "spark_links")
        assert conn.execute("SELECT snapshot_partition('sparks', %s)", (sid,)).fetchone()[0] in _partitions(conn, "sparks")
        conn.rollback()
        assert _content_tables(conn) == before


def test_the_guides_sql_path_still_inserts_through_the_parents(url):
    a = SnapshotStore(url).import_file(EXAMPLE)
    with connect(url) as conn:
        sid = conn.execute("SELECT create_import_snapshot('by hand', 'by-hand')").fetchone()[0]
        for kind in ENTITY_KINDS:
            conn.execute(f"INSERT INTO {kind} SELECT %s, " +
                         ", ".join(TABLES[kind].columns[1:]) + f" FROM {kind} WHERE snapshot_id = %s",
                         (sid, a.snapshot_id))
        conn.commit()
    assert SnapshotStore(url).snapshot_row_counts(sid) == a.entity_counts


def test_the_current_views_read_only_the_current_partition(url):
    SnapshotStore(url).import_bundle(bundle("a"), promote=True)
    b = SnapshotStore(url).import_bundle(variant("b", "b"), promote=True)
    SnapshotStore(url).import_bundle(variant("c", "c"))
    with connect(url) as conn:
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM current_spark_links"))
        slugs = conn.execute("SELECT slug FROM current_sparks ORDER BY slug").fetchall()
    scanned = [line for line in plan.splitlines() if " on spark" in line and "never executed" not in line]
    assert scanned and all(b.snapshot_id.hex in line for line in scanned), plan
    assert len(slugs) == b.entity_counts["sparks"]


def test_upgrade_from_0006_moves_every_row_into_partitions(make_database, tmp_path):
    """A database made by the old chain's 0001-0006, holding snapshots, keeps every row and view through
    the rest of the chain (0007 partitions the content tables) and on to the baseline."""
    url = make_database()
    old = tmp_path / "migrations"
    old.mkdir()
    for path in sorted((MIGRATIONS_DIR / "legacy").glob("000[1-6]_*.sql")):
        shutil.copy(path, old / path.name)
    migrate(url, old)
    first, second = bundle("old-1"), variant("old-2", "changed")
    ids = []
    with connect(url) as conn:  # as 0001's create_import_snapshot and a COPY into the plain tables
        for b in (first, second):
            sid = conn.execute("SELECT create_import_snapshot(%s, %s)", (b.name, b.version_label)).fetchone()[0]
            rows = table_rows(b, sid)
            with conn.cursor() as cur:
                for kind in ENTITY_KINDS:
                    copy_rows(cur, TABLES[kind], rows[kind])
            iid = conn.execute("SELECT start_import(%s)", (b.version_label,)).fetchone()[0]
            conn.execute("SELECT finalize_import(%s, %s, '{}')", (iid, sid))
            ids.append((iid, sid))
        conn.execute("SELECT promote_import(%s)", (ids[0][0],))
        conn.commit()
        assert conn.execute("SELECT count(*) FROM current_sparks").fetchone()[0] == len(first.sparks)
    migrate(url)
    for b, (_, sid) in zip((first, second), ids):
        assert SnapshotStore(url).export_bundle(sid).model_dump(exclude={"metadata", "name", "description"}) == \
            b.model_dump(exclude={"metadata", "name", "description"})
    with connect(url) as conn:
        assert {sid.hex for _, sid in ids} == {p.rsplit("_", 1)[1] for p in _partitions(conn, "sparks")}
        assert not {t for t in _content_tables(conn) if t.endswith("_0006")}
        assert conn.execute("SELECT count(*) FROM current_spark_links").fetchone()[0] == len(first.spark_links)
        # the reference triggers moved to the partitioned tables
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("DELETE FROM sparks WHERE snapshot_id = %s", (ids[1][1],))
    SnapshotStore(url).delete_draft(ids[1][1])
    new = SnapshotStore(url).import_bundle(variant("new", "new"), allow_shrink=True)
    assert SnapshotStore(url).snapshot_row_counts(new.snapshot_id) == new.entity_counts
