"""What changes between two snapshots: added, removed and changed rows per kind, by slug.

Rows are compared in the bundle's shape (references as slugs, see ``projections``), inside
PostgreSQL, so a diff of two 100k-spark snapshots never moves their content to Python; a changed
row comes with the names of its fields that changed.
By default it compares the current snapshot with the newest ready one: what a promotion would do.
With no ready snapshot, it shows what the last promotion did: the current snapshot against the one
it replaced.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from psycopg import sql

from musingly_core.models import ENTITY_KINDS

import psycopg

from musingly_pipeline.bundles.errors import SnapshotError
from musingly_pipeline.bundles.models import SnapshotInfo
from musingly_pipeline.bundles.projections import MODELS, projection
from musingly_pipeline.bundles.session import current_row, parse_id, snapshot_row


@dataclass(frozen=True)
class KindDiff:
    """Keys (slug, ``a -> b`` for links, ``a / b`` for junctions) added, removed and changed in one
    kind; ``fields`` names, for each changed key, the contract fields whose values differ."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_dict(self) -> dict:
        return {"added": list(self.added), "removed": list(self.removed), "changed": list(self.changed),
                "changed_fields": {key: list(names) for key, names in self.fields.items()}}


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
    # For a changed row, the names of the columns (the contract's fields) whose values differ.
    changed_fields = sql.SQL(", ").join(
        sql.SQL("CASE WHEN a.{f} IS DISTINCT FROM b.{f} THEN {name} END").format(
            f=sql.Identifier(name), name=sql.Literal(name))
        for name in MODELS[kind].model_fields)
    return sql.SQL(
        "WITH a AS ({a}), b AS ({b}) "
        "SELECT CASE WHEN a.key IS NULL THEN 'added' WHEN b.key IS NULL THEN 'removed' ELSE 'changed' END, "
        "coalesce(a.key, b.key), "
        "CASE WHEN a.key IS NOT NULL AND b.key IS NOT NULL THEN array_remove(ARRAY[{changed}]::text[], NULL) END "
        "FROM a FULL JOIN b ON a.key = b.key "
        "WHERE a.key IS NULL OR b.key IS NULL OR ROW(a.*) IS DISTINCT FROM ROW(b.*) ORDER BY 2"
    ).format(a=projection(kind, "a"), b=projection(kind, "b"), changed=changed_fields)


def _published_before(conn, current: SnapshotInfo) -> bool:
    """Whether another snapshot was ever published (its import promoted or rolled back), so that a
    current snapshot without ``previous_id`` lost it to cleanup rather than being the first."""
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM import_logs WHERE status IN ('promoted', 'rolled_back') "
        "AND snapshot_id IS DISTINCT FROM %s)", (current.id,)).fetchone()[0]


def diff_snapshots(conn: psycopg.Connection, from_id: uuid.UUID | str | None = None,
                   to_id: uuid.UUID | str | None = None) -> SnapshotDiff:
    """Diff ``from_id`` (default: current) to ``to_id`` (default: the newest ready snapshot).

    With neither given and no ready snapshot: the current snapshot against the one it replaced
    (``previous_id``; nothing, if it was the first promoted), i.e. what the last promotion changed.
    """
    last_promotion = False
    if to_id is None:
        row = conn.execute("SELECT id FROM snapshots WHERE status = 'ready' ORDER BY created_at DESC LIMIT 1").fetchone()
        if row is None:
            current = current_row(conn)
            if current is None or from_id is not None:
                raise SnapshotError("DIFF_NOTHING_TO_COMPARE", "there is no ready snapshot to compare; import a "
                                "bundle, or name two snapshots")
            row, last_promotion = (current.id,), True
        to_id = row[0]
    target = snapshot_row(conn, parse_id(to_id, "snapshot id"))
    if target is None:
        raise SnapshotError("SNAPSHOT_NOT_FOUND", f"snapshot {to_id} does not exist; see `musingly snapshots`")
    if last_promotion:
        source = snapshot_row(conn, target.previous_id) if target.previous_id else None
        if source is None and _published_before(conn, target):
            raise SnapshotError(
                "DIFF_NOTHING_TO_COMPARE", f"there is no ready snapshot, and the current snapshot {target.version_label} "
                "records no snapshot it replaced (that one was deleted by cleanup, or this one came back by a "
                "rollback); name two snapshots from `musingly snapshots`")
    elif from_id is None:
        source = current_row(conn)
    else:
        source = snapshot_row(conn, parse_id(from_id, "snapshot id"))
        if source is None:
            raise SnapshotError("SNAPSHOT_NOT_FOUND", f"snapshot {from_id} does not exist; see `musingly snapshots`")
    params = {"a": source.id if source else None, "b": target.id}
    kinds: dict[str, KindDiff] = {}
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for kind in ENTITY_KINDS:
            found: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
            fields: dict[str, tuple[str, ...]] = {}
            for change, key, names in conn.execute(_diff_query(kind), params):
                found[change].append(key)
                if names is not None:
                    fields[key] = tuple(names)
            kinds[kind] = KindDiff(**{k: tuple(v) for k, v in found.items()}, fields=fields)
    return SnapshotDiff(from_snapshot=source, to_snapshot=target, kinds=kinds)
