"""What changes between two snapshots: added, removed and changed rows per kind, by slug.

Rows are compared in the bundle's shape (references as slugs, see ``projections``), inside
PostgreSQL, so a diff of two 100k-spark snapshots never moves their content to Python.
By default it compares the current snapshot with the newest ready one: what a promotion would do.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from psycopg import sql

from musingly_core.models import ENTITY_KINDS

from musingly_pipeline.storage.projections import projection
from musingly_pipeline.storage.snapshots import SnapshotError, SnapshotInfo, _current, _snapshot, _uuid, session


@dataclass(frozen=True)
class KindDiff:
    """Keys (slug, ``a -> b`` for links, ``a / b`` for junctions) added, removed and changed in one kind."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, list[str]]:
        return {"added": list(self.added), "removed": list(self.removed), "changed": list(self.changed)}


@dataclass(frozen=True)
class SnapshotDiff:
    """From one snapshot (``None``: empty) to another, per entity kind in import order."""

    from_snapshot: SnapshotInfo | None
    to_snapshot: SnapshotInfo
    kinds: dict[str, KindDiff]

    @property
    def empty(self) -> bool:
        return not any(self.kinds.values())

    def summary(self) -> dict[str, dict[str, int]]:
        """kind -> {added, removed, changed} counts."""
        return {kind: {"added": len(d.added), "removed": len(d.removed), "changed": len(d.changed)}
                for kind, d in self.kinds.items()}

    def to_dict(self) -> dict:
        def describe(info: SnapshotInfo | None) -> dict | None:
            if info is None:
                return None
            return {"id": str(info.id), "version_label": info.version_label, "status": info.status}

        return {"from": describe(self.from_snapshot), "to": describe(self.to_snapshot),
                "summary": self.summary(), "changes": {k: d.to_dict() for k, d in self.kinds.items()}}


def _diff_query(kind: str) -> sql.Composed:
    return sql.SQL(
        "WITH a AS ({a}), b AS ({b}) "
        "SELECT CASE WHEN a.key IS NULL THEN 'added' WHEN b.key IS NULL THEN 'removed' ELSE 'changed' END, "
        "coalesce(a.key, b.key) FROM a FULL JOIN b ON a.key = b.key "
        "WHERE a.key IS NULL OR b.key IS NULL OR ROW(a.*) IS DISTINCT FROM ROW(b.*) ORDER BY 2"
    ).format(a=projection(kind, "a"), b=projection(kind, "b"))


def diff_snapshots(url: str | None = None, from_id: uuid.UUID | str | None = None,
                   to_id: uuid.UUID | str | None = None) -> SnapshotDiff:
    """Diff ``from_id`` (default: current) to ``to_id`` (default: the newest ready snapshot)."""
    with session(url) as conn:
        if to_id is None:
            row = conn.execute("SELECT id FROM snapshots WHERE status = 'ready' ORDER BY created_at DESC LIMIT 1").fetchone()
            if row is None:
                raise SnapshotError("there is no ready snapshot to compare; import a bundle, or name two snapshots")
            to_id = row[0]
        target = _snapshot(conn, _uuid(to_id, "snapshot id"))
        if target is None:
            raise SnapshotError(f"snapshot {to_id} does not exist; see `musingly snapshots`")
        if from_id is None:
            source = _current(conn)
        else:
            source = _snapshot(conn, _uuid(from_id, "snapshot id"))
            if source is None:
                raise SnapshotError(f"snapshot {from_id} does not exist; see `musingly snapshots`")
        params = {"a": source.id if source else None, "b": target.id}
        kinds: dict[str, KindDiff] = {}
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            for kind in ENTITY_KINDS:
                found: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
                for change, key in conn.execute(_diff_query(kind), params):
                    found[change].append(key)
                kinds[kind] = KindDiff(**{k: tuple(v) for k, v in found.items()})
    return SnapshotDiff(from_snapshot=source, to_snapshot=target, kinds=kinds)
