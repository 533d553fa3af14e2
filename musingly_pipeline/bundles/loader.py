"""Load a validated bundle into a draft snapshot with binary COPY, one table after another.

Each table of the snapshot is its own partition (the baseline migration, 0001_baseline.sql): it is made detached and without
indexes (``prepare_snapshot_partition``), filled by COPY, then ``finish_snapshot_partition`` builds
its keys and indexes by sort, checks its references with one anti-join each and attaches it. That
costs less than half of inserting the same rows into the live, indexed tables.

Ids are made here, in Python: an entity's id is ``uuid5(kind, slug)``, so every slug reference
resolves from a dict without a round trip to the database, and the same slug keeps the same id in
every snapshot (applications can hold on to ids across versions; diffs can join by id). The caller
owns the transaction: nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import psycopg
from psycopg import sql

from musingly_core.models import ENTITY_KINDS, ImportBundle

# Namespace of entity ids (uuid5). Never change it: ids would change for every slug.
ID_NAMESPACE = uuid.UUID("6d757369-6e67-6c79-8000-736e61707368")
ENTITY_TABLES: tuple[str, ...] = ("domains", "trails", "concepts", "sparks", "beacons")
# How often (rows) the progress callback hears about a table being loaded.
PROGRESS_EVERY = 20_000

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stage is a table name (or another step's name)."""


@dataclass(frozen=True)
class Table:
    """A content table: its columns and their PostgreSQL types, in COPY order."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]


TABLES: dict[str, Table] = {t.name: t for t in (
    Table("domains", ("snapshot_id", "id", "name", "slug", "description", "icon", "color", "is_published"),
          ("uuid", "uuid", "text", "text", "text", "text", "text", "bool")),
    Table("trails", ("snapshot_id", "id", "domain_id", "title", "slug", "description", "difficulty_level",
                     "is_published"),
          ("uuid", "uuid", "uuid", "text", "text", "text", "text", "bool")),
    Table("concepts", ("snapshot_id", "id", "trail_id", "title", "slug", "description", "order_index",
                       "is_published"),
          ("uuid", "uuid", "uuid", "text", "text", "text", "int4", "bool")),
    Table("sparks", ("snapshot_id", "id", "title", "slug", "summary", "content_md", "difficulty_level",
                     "estimated_minutes", "is_published"),
          ("uuid", "uuid", "text", "text", "text", "text", "text", "int4", "bool")),
    Table("beacons", ("snapshot_id", "id", "name", "slug", "description", "category"),
          ("uuid", "uuid", "text", "text", "text", "text")),
    Table("concept_sparks", ("snapshot_id", "concept_id", "spark_id", "order_index"),
          ("uuid", "uuid", "uuid", "int4")),
    Table("spark_beacons", ("snapshot_id", "spark_id", "beacon_id"), ("uuid", "uuid", "uuid")),
    Table("spark_links", ("snapshot_id", "source_id", "target_id", "link_type", "weight", "description"),
          ("uuid", "uuid", "uuid", "text", "float8", "text")),
    Table("concept_links", ("snapshot_id", "source_id", "target_id", "link_type", "weight", "description"),
          ("uuid", "uuid", "uuid", "text", "float8", "text")),
)}


def entity_id(kind: str, slug: str) -> uuid.UUID:
    """The id of entity ``slug`` of ``kind`` (``sparks``) in every snapshot."""
    return uuid.uuid5(ID_NAMESPACE, f"{kind}/{slug}")


def entity_ids(bundle: ImportBundle) -> dict[str, dict[str, uuid.UUID]]:
    """kind -> slug -> id for every entity of the bundle."""
    return {kind: {e.slug: entity_id(kind, e.slug) for e in getattr(bundle, kind)} for kind in ENTITY_TABLES}


def table_rows(bundle: ImportBundle, snapshot_id: uuid.UUID,
               ids: dict[str, dict[str, uuid.UUID]] | None = None) -> dict[str, Iterator[tuple]]:
    """Per table, the COPY rows of ``bundle`` for ``snapshot_id`` (generators, in import order).

    The bundle must be valid: a reference to an unknown slug raises ``KeyError``.
    """
    ids = ids or entity_ids(bundle)
    s = snapshot_id
    dom, trl, con, spk, bcn = (ids[k] for k in ENTITY_TABLES)
    return {
        "domains": ((s, dom[d.slug], d.name, d.slug, d.description, d.icon, d.color, d.is_published)
                    for d in bundle.domains),
        "trails": ((s, trl[t.slug], dom[t.domain_slug], t.title, t.slug, t.description, t.difficulty_level,
                    t.is_published) for t in bundle.trails),
        "concepts": ((s, con[c.slug], None if c.trail_slug is None else trl[c.trail_slug], c.title, c.slug,
                      c.description, c.order_index, c.is_published) for c in bundle.concepts),
        "sparks": ((s, spk[p.slug], p.title, p.slug, p.summary, p.content_md, p.difficulty_level,
                    p.estimated_minutes, p.is_published) for p in bundle.sparks),
        "beacons": ((s, bcn[b.slug], b.name, b.slug, b.description, b.category) for b in bundle.beacons),
        "concept_sparks": ((s, con[j.concept_slug], spk[j.spark_slug], j.order_index)
                           for j in bundle.concept_sparks),
        "spark_beacons": ((s, spk[j.spark_slug], bcn[j.beacon_slug]) for j in bundle.spark_beacons),
        "spark_links": ((s, spk[k.source_slug], spk[k.target_slug], k.link_type, k.weight, k.description)
                        for k in bundle.spark_links),
        "concept_links": ((s, con[k.source_slug], con[k.target_slug], k.link_type, k.weight, k.description)
                          for k in bundle.concept_links),
    }


def copy_rows(cursor: psycopg.Cursor, table: Table, rows: Iterable[tuple], *,
              total: int = 0, progress: Progress | None = None, stage: str | None = None) -> int:
    """Binary COPY of ``rows`` into ``table``; returns how many rows were written. ``progress``
    hears of it as ``stage`` (default: the table's name)."""
    stage = stage or table.name
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, table.columns)))
    n = 0
    with cursor.copy(statement) as copy:
        copy.set_types(list(table.types))
        write = copy.write_row
        for n, row in enumerate(rows, 1):
            write(row)
            if progress is not None and n % PROGRESS_EVERY == 0:
                progress(stage, n, total)
    if progress is not None:
        progress(stage, n, total)
    return n


def load_bundle(conn: psycopg.Connection, snapshot_id: uuid.UUID, bundle: ImportBundle,
                progress: Progress | None = None) -> dict[str, int]:
    """COPY every entity list of ``bundle`` into ``snapshot_id``'s partitions; returns rows per table.

    Runs inside the caller's transaction. Tables load in dependency order, so each reference check
    finds its targets already attached.
    """
    counts: dict[str, int] = {}
    rows = table_rows(bundle, snapshot_id)
    with conn.cursor() as cursor:
        for kind in ENTITY_KINDS:
            total = len(getattr(bundle, kind))
            with snapshot_partition(cursor, kind, snapshot_id) as table:
                counts[kind] = copy_rows(cursor, table, rows[kind], total=total, progress=progress,
                                         stage=kind) if total else 0
    return counts


@contextmanager
def snapshot_partition(cursor: psycopg.Cursor, kind: str, snapshot_id: uuid.UUID) -> Iterator[Table]:
    """A new, detached partition of table ``kind`` for ``snapshot_id`` to fill; on leaving the block
    its keys and indexes are built, its references checked, and it is attached."""
    name = cursor.execute("SELECT prepare_snapshot_partition(%s, %s)", (kind, snapshot_id)).fetchone()[0]
    yield replace(TABLES[kind], name=name)
    cursor.execute("SELECT finish_snapshot_partition(%s, %s)", (kind, snapshot_id))


# Per table, the columns that identify a row within a snapshot: what a merge compares by key.
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "domains": ("id",), "trails": ("id",), "concepts": ("id",), "sparks": ("id",), "beacons": ("id",),
    "concept_sparks": ("concept_id", "spark_id"), "spark_beacons": ("spark_id", "beacon_id"),
    "spark_links": ("source_id", "target_id"), "concept_links": ("source_id", "target_id"),
}
_KEY_KINDS = {
    "concept_sparks": ("concepts", "sparks"), "spark_beacons": ("sparks", "beacons"),
    "spark_links": ("sparks", "sparks"), "concept_links": ("concepts", "concepts"),
}


def _key_ids(kind: str, key: str) -> tuple[uuid.UUID, ...]:
    """A projection key (``slug``, ``a -> b``, ``a / b``) as the table's key columns."""
    if kind in _KEY_KINDS:
        left, _, right = key.partition(" -> " if kind.endswith("_links") else " / ")
        return entity_id(_KEY_KINDS[kind][0], left), entity_id(_KEY_KINDS[kind][1], right)
    return (entity_id(kind, key),)


def copy_unchanged(cursor: psycopg.Cursor, table: Table, snapshot_id: uuid.UUID, base_id: uuid.UUID,
                   excluded: set[str], target: Table | None = None) -> int:
    """INSERT ... SELECT the base snapshot's rows of ``table`` into ``snapshot_id`` (into ``target``,
    its partition, if given), except ``excluded`` (projection keys); returns how many rows were
    copied. The rows never leave the server."""
    keys = KEY_COLUMNS[table.name]
    arrays = list(zip(*(_key_ids(table.name, k) for k in excluded))) or [() for _ in keys]
    unnest = sql.SQL(", ").join(sql.SQL("%s::uuid[]") for _ in keys)
    names = sql.SQL(", ").join(sql.Identifier(f"k{i}") for i in range(len(keys)))
    statement = sql.SQL(
        "INSERT INTO {target} ({cols}) SELECT %s, {rest} FROM {t} WHERE snapshot_id = %s "
        "AND ({key}) NOT IN (SELECT {names} FROM unnest({unnest}) AS u({names}))").format(
        t=sql.Identifier(table.name), target=sql.Identifier((target or table).name),
        cols=sql.SQL(", ").join(map(sql.Identifier, table.columns)),
        rest=sql.SQL(", ").join(map(sql.Identifier, table.columns[1:])),
        key=sql.SQL(", ").join(map(sql.Identifier, keys)), names=names, unnest=unnest)
    cursor.execute(statement, (snapshot_id, base_id, *(list(a) for a in arrays)))
    return cursor.rowcount


def load_merged_bundle(conn: psycopg.Connection, snapshot_id: uuid.UUID, merged: ImportBundle,
                       base_id: uuid.UUID, base: ImportBundle, patch: ImportBundle,
                       progress: Progress | None = None) -> dict[str, int]:
    """Load ``merged`` (``base`` with ``patch`` applied) into ``snapshot_id``; returns rows per table.

    The rows ``merged`` keeps from ``base`` unchanged are copied inside the database from snapshot
    ``base_id`` (which holds ``base``); only the patch's rows are sent with COPY. Raises
    ``RuntimeError`` (the caller rolls back) if the counts do not add up to ``merged``'s.
    """
    from musingly_pipeline.bundles.projections import row_key

    ids = entity_ids(merged)
    counts: dict[str, int] = {}
    with conn.cursor() as cursor:
        for kind in ENTITY_KINDS:
            patched = {row_key(kind, r) for r in getattr(patch, kind)}
            rows = getattr(merged, kind)
            sent = [r for r in rows if row_key(kind, r) in patched]
            kept = {row_key(kind, r) for r in rows} - patched
            excluded = {row_key(kind, r) for r in getattr(base, kind)} - kept
            with snapshot_partition(cursor, kind, snapshot_id) as table:
                n = copy_unchanged(cursor, TABLES[kind], snapshot_id, base_id, excluded, table)
                if sent:
                    sub = merged.model_copy(update={k: (sent if k == kind else []) for k in ENTITY_KINDS})
                    n += copy_rows(cursor, table, table_rows(sub, snapshot_id, ids)[kind])
                if n != len(rows):
                    raise RuntimeError(f"merge loaded {n} {kind} rows, expected {len(rows)}; nothing was kept")
            if progress is not None:
                progress(kind, n, len(rows))
            counts[kind] = n
    return counts
