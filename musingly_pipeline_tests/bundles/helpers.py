"""Bundles and database checks shared by the snapshot store tests."""

from __future__ import annotations

import json
from pathlib import Path

from musingly_core.models import ImportBundle
from psycopg import sql

from musingly_pipeline.bundles.projections import rows_of
from musingly_pipeline.storage.database import connect

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"
EXAMPLE = EXAMPLES / "ml-curriculum.json"
HOTFIX = EXAMPLES / "incremental" / "hotfix-v2.1.1.json"


def example_data() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def parse(data: dict) -> ImportBundle:
    """A bundle from a dict as a generator would write it (JSON, so enums are strings)."""
    return ImportBundle.model_validate_json(json.dumps(data))


def bundle(label: str = "v2.1.0", **changes) -> ImportBundle:
    """The example bundle with another version label and top-level lists replaced."""
    data = example_data()
    data["version_label"] = label
    data.update(changes)
    return parse(data)


def variant(label: str, summary: str) -> ImportBundle:
    """The example bundle with different content (the first spark's summary)."""
    data = example_data()
    data["version_label"] = label
    data["sparks"][0]["summary"] = summary
    return parse(data)


def assert_consistent(url: str) -> None:
    """The invariants a user relies on, whatever happened before."""
    with connect(url) as conn:
        currents = conn.execute("SELECT count(*) FROM snapshots WHERE status = 'current'").fetchone()[0]
        assert currents <= 1
        bad = conn.execute(
            "SELECT l.id, l.status, s.status FROM import_logs l LEFT JOIN snapshots s ON s.id = l.snapshot_id "
            "WHERE NOT ((l.status = 'promoted' AND s.status IN ('current', 'archived')) "
            "        OR (l.status = 'rolled_back' AND s.status = 'archived') "
            "        OR (l.status = 'ready' AND s.status IN ('ready', 'current')) "
            "        OR (l.status = 'failed') OR (l.status IN ('pending', 'importing')))").fetchall()
        assert bad == []
        # every snapshot's rows (a delta's: its own and its base's it does not mask) match its counts
        for sid, counts in conn.execute("SELECT id, entity_counts FROM snapshots WHERE status <> 'draft'"):
            stored = conn.execute(sql.SQL("SELECT count(*) FROM {} x").format(rows_of("sparks")),
                                  {"s": sid}).fetchone()[0]
            assert stored == counts.get("sparks", 0)
        # a delta stands on a full snapshot that exists
        assert conn.execute("SELECT count(*) FROM snapshots s JOIN snapshots b ON b.id = s.base_id "
                            "WHERE b.base_id IS NOT NULL").fetchone()[0] == 0
