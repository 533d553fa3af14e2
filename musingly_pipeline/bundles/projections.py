"""A snapshot's content in the bundle's own shape: references as slugs, fields as in the contracts.

One SELECT per entity kind, whose first column ``key`` identifies a row by slug (or pair of slugs:
``a -> b`` for links, ``a / b`` for junctions) and whose other columns are the contract's fields.
Diffs compare these rows; merges read them back into an :class:`ImportBundle`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
from psycopg import sql
from pydantic import BaseModel

from musingly_core.models import (
    ENTITY_KINDS,
    BeaconImport,
    ConceptImport,
    ConceptLinkImport,
    ConceptSparkImport,
    DomainImport,
    ImportBundle,
    SparkBeaconImport,
    SparkImport,
    SparkLinkImport,
    TrailImport,
)

from musingly_pipeline.bundles.loader import KEY_COLUMNS, TABLES

MODELS = {
    "domains": DomainImport, "trails": TrailImport, "concepts": ConceptImport, "sparks": SparkImport,
    "beacons": BeaconImport, "concept_sparks": ConceptSparkImport, "spark_beacons": SparkBeaconImport,
    "spark_links": SparkLinkImport, "concept_links": ConceptLinkImport,
}

# {domains} ... {concept_links}: the snapshot's rows of that table (:func:`rows_of`); {s}: the
# snapshot id placeholder. Column names after `key` equal the contract's field names.
_SELECTS: dict[str, str] = {
    "domains": "SELECT x.slug AS key, x.name, x.slug, x.description, x.icon, x.color, x.is_published "
               "FROM {domains} x",
    "trails": "SELECT x.slug AS key, d.slug AS domain_slug, x.title, x.slug, x.description, x.difficulty_level, "
              "x.is_published FROM {trails} x JOIN {domains} d ON d.id = x.domain_id",
    "concepts": "SELECT x.slug AS key, t.slug AS trail_slug, x.title, x.slug, x.description, x.order_index, "
                "x.is_published FROM {concepts} x LEFT JOIN {trails} t ON t.id = x.trail_id",
    "sparks": "SELECT x.slug AS key, x.title, x.slug, x.summary, x.content_md, x.difficulty_level, "
              "x.estimated_minutes, x.is_published FROM {sparks} x",
    "beacons": "SELECT x.slug AS key, x.name, x.slug, x.description, x.category FROM {beacons} x",
    "concept_sparks": "SELECT c.slug || ' / ' || p.slug AS key, c.slug AS concept_slug, p.slug AS spark_slug, "
                      "x.order_index FROM {concept_sparks} x "
                      "JOIN {concepts} c ON c.id = x.concept_id JOIN {sparks} p ON p.id = x.spark_id",
    "spark_beacons": "SELECT p.slug || ' / ' || b.slug AS key, p.slug AS spark_slug, b.slug AS beacon_slug "
                     "FROM {spark_beacons} x "
                     "JOIN {sparks} p ON p.id = x.spark_id JOIN {beacons} b ON b.id = x.beacon_id",
    "spark_links": "SELECT a.slug || ' -> ' || b.slug AS key, a.slug AS source_slug, b.slug AS target_slug, "
                   "x.link_type, x.weight, x.description FROM {spark_links} x "
                   "JOIN {sparks} a ON a.id = x.source_id JOIN {sparks} b ON b.id = x.target_id",
    "concept_links": "SELECT a.slug || ' -> ' || b.slug AS key, a.slug AS source_slug, b.slug AS target_slug, "
                     "x.link_type, x.weight, x.description FROM {concept_links} x "
                     "JOIN {concepts} a ON a.id = x.source_id JOIN {concepts} b ON b.id = x.target_id",
}


def rows_of(table: str, placeholder: str = "s") -> sql.Composed:
    """The rows of content ``table`` that snapshot ``%(placeholder)s`` holds, as a FROM item.

    A full snapshot's are its partition's. A delta snapshot's (``snapshots.base_id``, issue 19) are
    its own rows plus its base's rows it does not mask (``snapshot_masks``): the same rule, and the
    same shape, as the ``current_*`` views (one scan of the parent table, pruned to the snapshot's
    partition and its base's; see 0003_delta_snapshots.sql). ``snapshot_id`` is not among the
    columns: rows of both partitions belong to the snapshot asked for. ``from_base`` and
    ``stored_at`` (its place in its partition) give the stored order.
    """
    table_def = TABLES[table]
    keys = KEY_COLUMNS[table]
    cols = sql.SQL(", ").join(sql.Identifier("r", c) for c in table_def.columns[1:])
    masked = sql.SQL("m.id = r.{}").format(sql.Identifier(keys[0]))
    if len(keys) == 2:
        masked = sql.SQL("{} AND m.id2 = r.{}").format(masked, sql.Identifier(keys[1]))
    s = sql.Placeholder(placeholder)
    return sql.SQL(
        "(SELECT {cols}, r.snapshot_id <> {s} AS from_base, r.ctid AS stored_at FROM {t} r WHERE r.snapshot_id IN ({s}, (SELECT base_id FROM snapshots WHERE id = {s})) "
        "AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = {s} AND m.snapshot_id <> r.snapshot_id "
        "AND m.table_name = {name} AND {masked}))").format(
        cols=cols, t=sql.Identifier(table), s=s, name=sql.Literal(table), masked=masked)


def projection(kind: str, placeholder: str, ordered: bool = False) -> sql.Composed:
    """The bundle-shaped SELECT of ``kind`` for the snapshot bound to ``%(placeholder)s``; its
    content table is ``x`` (``WHERE x.id = ...`` narrows it). ``ordered``: in stored order (see
    :func:`read_entities`)."""
    select = sql.SQL(_SELECTS[kind]).format(**{t: rows_of(t, placeholder) for t in TABLES})
    return sql.SQL("{} ORDER BY x.from_base DESC, x.stored_at").format(select) if ordered else select


def row_key(kind: str, row) -> str:
    """The key a projection gives to a contract row (the same text as its ``key`` column)."""
    if kind == "concept_sparks":
        return f"{row.concept_slug} / {row.spark_slug}"
    if kind == "spark_beacons":
        return f"{row.spark_slug} / {row.beacon_slug}"
    if kind in ("spark_links", "concept_links"):
        return f"{row.source_slug} -> {row.target_slug}"
    return row.slug


def read_entities(conn: psycopg.Connection, snapshot_id: uuid.UUID, kind: str) -> list:
    """Every row of ``kind`` in the snapshot, as contract models (trusted: not re-validated), in the
    order they were stored: a full import's in its file's order; a delta's base rows first, then its
    own. The same snapshot always gives the same list (an export is reproducible)."""
    with conn.cursor() as cur:
        cur.execute(projection(kind, "s", ordered=True), {"s": snapshot_id})
        build = trusted_builder(MODELS[kind], [c.name for c in cur.description][1:])
        return [build(row[1:]) for row in cur.fetchall()]


def trusted_builder(model: type[BaseModel], names: list[str]) -> Callable[[tuple], BaseModel]:
    """A function making ``model`` instances from value tuples in ``names`` order, unvalidated.

    What ``model.model_construct(**dict(zip(names, values)))`` makes (a test checks they are
    equal), for every field given, at a seventh of the cost: model_construct's general path (aliases,
    defaults, extras) took 7 us a row, which for the 700k rows of a large snapshot was most of a
    merge's reading time. The database already holds valid rows; re-validating them would cost
    seconds for nothing, and a merged bundle is still checked by the integrity rules.
    """
    names = tuple(names)
    missing = set(model.model_fields) - set(names)
    if missing or set(names) - set(model.model_fields):
        raise ValueError(f"{model.__name__} needs exactly its fields; missing {sorted(missing)}")
    if model.__pydantic_post_init__ or model.__private_attributes__ or model.model_config.get("extra") == "allow":
        raise ValueError(f"{model.__name__} has post-init, private or extra attributes; use model_construct")
    new, setattr_ = object.__new__, object.__setattr__

    def build(values: tuple) -> BaseModel:
        obj = new(model)
        setattr_(obj, "__dict__", dict(zip(names, values)))
        setattr_(obj, "__pydantic_fields_set__", set(names))
        setattr_(obj, "__pydantic_extra__", None)
        setattr_(obj, "__pydantic_private__", None)
        return obj

    return build


def read_bundle_content(conn: psycopg.Connection, snapshot_id: uuid.UUID, header: ImportBundle) -> ImportBundle:
    """The snapshot's content as a bundle, with ``header``'s version label, name and metadata."""
    lists = {kind: read_entities(conn, snapshot_id, kind) for kind in ENTITY_KINDS}
    return header.model_copy(update=lists)
