"""The guide's database functions called from SQL, and the invariants PostgreSQL enforces itself."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from musingly_pipeline.bundles import SnapshotError, SnapshotStore
from musingly_pipeline.storage.database import connect
from musingly_pipeline.storage.migrations import ensure_migrated
from musingly_pipeline.bundles.synthetic import write_bundle
from musingly_pipeline_tests.bundles.helpers import EXAMPLE, bundle, variant


@pytest.fixture
def url(make_database) -> str:
    url = make_database()
    ensure_migrated(url)
    return url


def _one(conn, query, params=()):
    return conn.execute(query, params).fetchone()[0]


def test_the_guides_flow_in_plain_sql(url):
    with connect(url, autocommit=True) as conn:
        sid = _one(conn, "SELECT create_import_snapshot('Hand made', 'v1', 'typed in psql')")
        iid = _one(conn, "SELECT start_import('v1', 'psql', '16', 'alice')")
        conn.execute("SELECT update_import_status(%s, 'importing', %s)", (iid, sid))
        did = uuid.uuid4()
        conn.execute("INSERT INTO domains (snapshot_id, id, name, slug) VALUES (%s, %s, 'D', 'd')", (sid, did))
        conn.execute("INSERT INTO sparks (snapshot_id, id, title, slug, content_md, difficulty_level, "
                     "estimated_minutes) VALUES (%s, %s, 'S', 's', 'body', 'beginner', 5)", (sid, uuid.uuid4()))
        conn.execute("SELECT finalize_import(%s, %s, '{\"domains\": 1, \"sparks\": 1}')", (iid, sid))
        assert _one(conn, "SELECT status FROM snapshots WHERE id = %s", (sid,)) == "ready"
        assert _one(conn, "SELECT promote_import(%s, %s)", (iid, sid)) == sid
        assert _one(conn, "SELECT count(*) FROM current_sparks") == 1

        sid2 = _one(conn, "SELECT create_import_snapshot('Second', 'v2')")
        assert _one(conn, "SELECT parent_id FROM snapshots WHERE id = %s", (sid2,)) == sid
        iid2 = _one(conn, "SELECT start_import('v2', 'psql')")
        conn.execute("SELECT finalize_import(%s, %s, '{}')", (iid2, sid2))
        conn.execute("SELECT promote_import(%s, %s)", (iid2, sid2))
        assert _one(conn, "SELECT rollback_import(%s)", (iid2,)) == sid
        assert _one(conn, "SELECT status FROM import_logs WHERE id = %s", (iid2,)) == "rolled_back"
        assert _one(conn, "SELECT count(*) FROM current_sparks") == 1

        sid3 = _one(conn, "SELECT create_import_snapshot('Third', 'v3')")
        conn.execute("SELECT delete_draft_snapshot(%s)", (sid3,))
        assert _one(conn, "SELECT count(*) FROM snapshots WHERE id = %s", (sid3,)) == 0
        assert _one(conn, "SELECT cleanup_old_snapshots(1)") == 1  # v2, archived
        stats = conn.execute("SELECT total_imports, promoted, rolled_back FROM get_import_stats(30)").fetchone()
        assert stats == (2, 1, 1)
        conn.execute("SELECT update_import_status(start_import('v4'), 'failed', NULL, NULL, NULL, 'boom')")
        assert _one(conn, "SELECT error_message FROM import_logs WHERE status = 'failed'") == "boom"


def test_at_most_one_current_snapshot(url):
    a = SnapshotStore(url).import_bundle(bundle("a"), promote=True)
    b = SnapshotStore(url).import_bundle(variant("b", "b"))
    with connect(url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("UPDATE snapshots SET status = 'current' WHERE id = %s", (b.snapshot_id,))
    assert SnapshotStore(url).current_snapshot().id == a.snapshot_id


def test_only_a_ready_snapshot_can_be_promoted(url):
    with connect(url, autocommit=True) as conn:
        sid = _one(conn, "SELECT create_import_snapshot('x', 'x')")
        iid = _one(conn, "SELECT start_import('x')")
        conn.execute("SELECT update_import_status(%s, 'importing', %s)", (iid, sid))
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            conn.execute("SELECT promote_import(%s, %s)", (iid, sid))
        with pytest.raises(psycopg.errors.CheckViolation, match="only a ready snapshot"):
            conn.execute("UPDATE snapshots SET status = 'current' WHERE id = %s", (sid,))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE snapshots SET status = 'published' WHERE id = %s", (sid,))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE import_logs SET status = 'done' WHERE id = %s", (iid,))


def test_an_archived_snapshot_comes_back_only_through_rollback(url):
    a = SnapshotStore(url).import_bundle(bundle("a"), promote=True)
    SnapshotStore(url).import_bundle(variant("b", "b"), promote=True)
    with connect(url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE snapshots SET status = 'current' WHERE id = %s", (a.snapshot_id,))
    with pytest.raises(SnapshotError, match="not ready"):
        SnapshotStore(url).promote(a.import_id)


def test_the_current_snapshot_cannot_be_deleted(url):
    a = SnapshotStore(url).import_file(EXAMPLE, promote=True)
    with connect(url) as conn, pytest.raises(psycopg.errors.CheckViolation, match="cannot be deleted"):
        conn.execute("DELETE FROM snapshots WHERE id = %s", (a.snapshot_id,))
    with pytest.raises(SnapshotError):
        SnapshotStore(url).delete_draft(a.snapshot_id)
    assert SnapshotStore(url).snapshot_row_counts(a.snapshot_id)["sparks"] == 4


def test_references_cannot_leave_their_snapshot(url):
    a = SnapshotStore(url).import_file(EXAMPLE)
    b = SnapshotStore(url).import_bundle(variant("b", "b"))
    with connect(url) as conn:
        concept, spark = conn.execute(
            "SELECT c.id, p.id FROM concepts c, sparks p WHERE c.snapshot_id = %s AND p.snapshot_id = %s "
            "LIMIT 1", (a.snapshot_id, a.snapshot_id)).fetchone()
        # the same ids exist in snapshot b (ids follow slugs); a row of a new snapshot pointing at them fails
        sid = _one(conn, "SELECT create_import_snapshot('c', 'c')")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO concept_sparks (snapshot_id, concept_id, spark_id) VALUES (%s, %s, %s)",
                         (sid, concept, spark))
    assert b.snapshot_id != a.snapshot_id


def test_bulk_statements_check_references_too(url, tmp_path):
    """From 20k rows on, the reference check takes its hash-join form: same rule, same error."""
    a = SnapshotStore(url).import_file(write_bundle(tmp_path / "big.json", 7000, content_bytes=10))
    assert a.entity_counts["spark_links"] >= 20_000  # the load itself went through the bulk form
    with connect(url) as conn:
        sid = _one(conn, "SELECT create_import_snapshot('copy', 'copy')")
        conn.execute("INSERT INTO sparks SELECT %s, id, title, slug, summary, content_md, difficulty_level, "
                     "estimated_minutes, is_published FROM sparks WHERE snapshot_id = %s", (sid, a.snapshot_id))
        copy_links = ("INSERT INTO spark_links (snapshot_id, source_id, target_id, link_type, weight) "
                      "SELECT %s, source_id, CASE WHEN row_number() OVER () = 12345 THEN %s ELSE target_id END, "
                      "link_type, weight FROM spark_links WHERE snapshot_id = %s")
        stray = uuid.uuid4()
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"target_id -> sparks: {stray}"):
            conn.execute(copy_links, (sid, stray, a.snapshot_id))
        conn.rollback()
        sid = _one(conn, "SELECT create_import_snapshot('copy', 'copy')")
        conn.execute("INSERT INTO sparks SELECT %s, id, title, slug, summary, content_md, difficulty_level, "
                     "estimated_minutes, is_published FROM sparks WHERE snapshot_id = %s", (sid, a.snapshot_id))
        conn.execute(copy_links.replace("= 12345", "= -1"), (sid, stray, a.snapshot_id))
        assert _one(conn, "SELECT count(*) FROM spark_links WHERE snapshot_id = %s", (sid,)) == \
            a.entity_counts["spark_links"]


def test_referenced_rows_and_snapshots_cannot_be_deleted_from_under_their_references(url):
    a = SnapshotStore(url).import_file(EXAMPLE)
    with connect(url) as conn:
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="still referred to"):
            conn.execute("DELETE FROM sparks WHERE snapshot_id = %s", (a.snapshot_id,))
        conn.rollback()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("UPDATE concepts SET id = gen_random_uuid() WHERE snapshot_id = %s", (a.snapshot_id,))
        conn.rollback()
        # a row of no snapshot has no partition to go to (0007: one partition per snapshot)
        with pytest.raises(psycopg.errors.CheckViolation, match='no partition of relation "sparks"'):
            conn.execute("INSERT INTO sparks (snapshot_id, id, title, slug, content_md, difficulty_level, "
                         "estimated_minutes) VALUES (gen_random_uuid(), gen_random_uuid(), 't', 't', 'x', "
                         "'beginner', 1)")
        conn.rollback()
    SnapshotStore(url).delete_draft(a.snapshot_id)  # deleting a whole snapshot, referencing rows first, is fine
    assert SnapshotStore(url).get_snapshot(a.snapshot_id) is None


def test_stale_importing_log_is_failed_by_the_next_command(url):
    # A session starts an import and disappears without finishing (its connection closes).
    conn = connect(url, autocommit=True)
    iid = _one(conn, "SELECT start_import('ghost')")
    conn.execute("SELECT update_import_status(%s, 'importing')", (iid,))
    [log] = SnapshotStore(url).list_imports()
    assert log.status == "importing"  # its session is alive: not stale
    conn.close()
    deadline = time.monotonic() + 10  # the server notices the closed socket almost at once
    while (log := SnapshotStore(url).list_imports()[0]).status == "importing" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.status == "failed" and "ended before finishing" in log.error_message
