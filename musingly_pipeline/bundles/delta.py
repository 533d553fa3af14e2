"""A merge stored as a delta on a full snapshot, checked over what it changes (issue 19).

A merge used to read the whole current snapshot back, merge in Python, run every rule and the hash
over the merged content and copy every kept row: the cost of the platform, not of the change. Here
it plans from the patch and the rows the patch touches only:

* the rows it replaces or removes (and, for a removed concept, spark or beacon, the junction and
  link rows that mention it, as :func:`~musingly_pipeline.bundles.merge.merge_bundles` removes
  them), read from the current snapshot by key;
* the rules that the change can break, checked on the merged result without building it
  (:func:`check_delta`): every reference of a new row resolves; nothing still refers to a removed
  entity; no self link; a new link closes no cycle (only a path back from its target to its source
  can, searched from its target over the merged graph); and the warnings of the rows it touches;
* the content hash from the current snapshot's sums (``content_hash.ContentSums.apply``);
* the new snapshot's rows: its base's (the current snapshot's base, or the current snapshot if it
  is full), a delta (the current delta's rows carried, then the patch's), and masks for every base
  row replaced or removed (``snapshot_masks``, 0003_delta_snapshots.sql). So a snapshot is never
  more than one delta away from its base.

When a delta would hold more than :attr:`DeltaPolicy.max_share` of its base's rows, or the base is
small (:attr:`DeltaPolicy.min_base_rows`), the merge writes a full snapshot as before (compaction:
readers then pay nothing, and a small platform's merge is cheap anyway). A property-based test
(``musingly_pipeline_tests/bundles/test_delta_rules.py``) holds that :func:`check_delta` refuses
exactly what ``check_bundle`` on the merged content refuses, with the same codes, and warns about
the touched rows as it does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from musingly_core.models import ENTITY_KINDS, ImportBundle
from musingly_core.integrity import cycle_found, empty_concept, orphan_spark, published_in_unpublished, self_link
from musingly_core.report import Issue, error

from musingly_pipeline.bundles.content_hash import ContentSums
from musingly_pipeline.bundles.errors import RemovalError
from musingly_pipeline.bundles.loader import (
    KEY_COLUMNS, TABLES, Progress, _key_ids, copy_rows, copy_unchanged, entity_id, snapshot_partition, table_rows,
)
from musingly_pipeline.bundles.merge import DEPENDENT_ROWS
from musingly_pipeline.bundles.models import SnapshotInfo
from musingly_pipeline.bundles.projections import MODELS, row_key, rows_of, trusted_builder

def _id_column(slug_field: str) -> str:
    """The table column holding the id a contract's slug field names: ``domain_slug`` -> ``domain_id``."""
    return slug_field.removesuffix("_slug") + "_id"


_SINGULAR = {"domains": "domain", "trails": "trail", "concepts": "concept", "sparks": "spark", "beacons": "beacon"}
# Per kind, its references: (field, kind referred to).
_REFERENCES = {
    "trails": (("domain_slug", "domains"),),
    "concepts": (("trail_slug", "trails"),),
    "concept_sparks": (("concept_slug", "concepts"), ("spark_slug", "sparks")),
    "spark_beacons": (("spark_slug", "sparks"), ("beacon_slug", "beacons")),
    "spark_links": (("source_slug", "sparks"), ("target_slug", "sparks")),
    "concept_links": (("source_slug", "concepts"), ("target_slug", "concepts")),
}
# Entity kind -> the (kind, id column, slug field) of rows that refer to it and are NOT removed with
# it (an entity referring to a removed one makes the merge invalid).
_REFERRERS = {"domains": (("trails", "domain_id", "domain_slug"),),
              "trails": (("concepts", "trail_id", "trail_slug"),)}
# Entity kind -> the (kind, id column) of junction and link rows removed with it (merge's table).
_DEPENDENTS = {kind: tuple((dependent, _id_column(f)) for dependent, fields in rows for f in fields)
               for kind, rows in DEPENDENT_ROWS.items()}
_LINK_KIND = {"spark_links": "sparks", "concept_links": "concepts"}
_CYCLE_LIMIT = 10


@dataclass(frozen=True)
class DeltaPolicy:
    """When a merge is stored as a delta: the base holds at least ``min_base_rows`` rows and the
    delta (its rows and masks) at most ``max_share`` of the base's rows; otherwise the merge writes
    a full snapshot. ``DeltaPolicy(min_base_rows=0)`` makes every merge a delta it can (tests);
    ``DeltaPolicy(max_share=0)`` none."""

    min_base_rows: int = 10_000
    max_share: float = 0.1


@dataclass
class DeltaPlan:
    """A merge onto ``parent`` (the current snapshot) as a delta on ``base_id``: ``upserts`` (kind ->
    key -> patch row), ``removed`` / ``replaced`` (kind -> key -> the parent's row), the merged
    content's ``counts`` and ``sums``, and the warnings of the rows it touches."""

    parent: SnapshotInfo
    base_id: uuid.UUID
    parent_rows: dict[str, int]  # the parent delta's own rows per table (empty: the parent is full)
    upserts: dict[str, dict[str, object]]
    removed: dict[str, dict[str, object]]
    replaced: dict[str, dict[str, object]]
    counts: dict[str, int]
    sums: ContentSums
    issues: list[Issue] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return self.sums.digest

    def changes_nothing(self) -> bool:
        return self.sums.digest == self.parent.content_hash


class _Reader:
    """Rows of one snapshot by key, by referring column, and whether slugs exist: index probes.

    Each lookup reads one table by an index (its key, or the referring column's index), then the
    slugs of the ids it refers to by primary key, and builds the contract rows here. A join in SQL
    would leave the join order to estimates, and a snapshot's partitions have no statistics until
    autovacuum analyzes them: the planner then drove a lookup of 100 sparks' concept_sparks rows
    from all 5,000 concepts (59 ms at 100k sparks, 16 ms at 10k: the cost of the platform).
    """

    def __init__(self, conn: psycopg.Connection, snapshot_id: uuid.UUID):
        self.conn, self.snapshot_id = conn, snapshot_id
        self._patch_slugs: dict[uuid.UUID, str] = {}  # ids of entities only the patch defines

    def know_patch(self, kind: str, slugs: Iterable[str]) -> None:
        self._patch_slugs.update((entity_id(kind, slug), slug) for slug in slugs)

    def rows(self, kind: str, where: sql.Composable, params: dict) -> dict[str, object]:
        """key -> contract row of ``kind`` in the snapshot matching ``where`` (on ``x``)."""
        columns = TABLES[kind].columns[1:]
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT {} FROM {} x WHERE {}").format(
                sql.SQL(", ").join(sql.Identifier("x", c) for c in columns), rows_of(kind), where),
                {"s": self.snapshot_id, **params})
            found = [dict(zip(columns, row)) for row in cur.fetchall()]
        for fname, target in _REFERENCES.get(kind, ()):  # each id referred to, as its slug
            column = _id_column(fname)
            ids = list({r[column] for r in found if r[column] is not None})
            slug_of = dict(zip(ids, self.slugs(target, ids))) if ids else {}
            for r in found:
                r[fname] = slug_of.get(r[column])
        fields = list(MODELS[kind].model_fields)
        build = trusted_builder(MODELS[kind], fields)
        models = (build(tuple(r[f] for f in fields)) for r in found)
        return {row_key(kind, m): m for m in models}

    def edges(self, name: str, column: str, ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(source id, target id) of the snapshot's ``name`` links whose ``column`` is in ``ids``."""
        return self.conn.execute(
            sql.SQL("SELECT x.source_id, x.target_id FROM {} x WHERE x.{} = ANY(%(a)s::uuid[])").format(
                rows_of(name), sql.Identifier(column)), {"s": self.snapshot_id, "a": ids}).fetchall()

    def slugs(self, kind: str, ids: list[uuid.UUID]) -> list[str]:
        """The slugs of entities ``ids`` of ``kind`` (uuid5 of the slug: the patch's as well), in order."""
        found = dict(self.conn.execute(
            sql.SQL("SELECT x.id, x.slug FROM {} x WHERE x.id = ANY(%(a)s::uuid[])").format(rows_of(kind)),
            {"s": self.snapshot_id, "a": ids}).fetchall())
        return [found.get(i, self._patch_slugs.get(i, str(i))) for i in ids]

    def by_keys(self, kind: str, keys: Iterable[str]) -> dict[str, object]:
        keys = list(keys)
        if not keys:
            return {}
        columns = KEY_COLUMNS[kind]
        ids = list(zip(*(_key_ids(kind, k) for k in keys)))
        if len(columns) == 1:
            return self.rows(kind, sql.SQL("x.id = ANY(%(a)s::uuid[])"), {"a": list(ids[0])})
        return self.rows(kind, sql.SQL("(x.{}, x.{}) IN (SELECT * FROM unnest(%(a)s::uuid[], %(b)s::uuid[]))").format(
            sql.Identifier(columns[0]), sql.Identifier(columns[1])), {"a": list(ids[0]), "b": list(ids[1])})

    def referring(self, kind: str, column: str, ids: Iterable[uuid.UUID]) -> dict[str, object]:
        ids = list(ids)
        if not ids:
            return {}
        return self.rows(kind, sql.SQL("x.{} = ANY(%(a)s::uuid[])").format(sql.Identifier(column)), {"a": ids})


def delta_rows(conn: psycopg.Connection, snapshot_id: uuid.UUID) -> dict[str, int]:
    """Per table, the rows a delta snapshot keeps of its own, and its masks (``snapshot_masks``)."""
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}, count(*) FROM {} WHERE snapshot_id = %(s)s").format(sql.Literal(t), sql.Identifier(t))
        for t in (*TABLES, "snapshot_masks"))
    return dict(conn.execute(query, {"s": snapshot_id}).fetchall())


def plan_delta(conn: psycopg.Connection, parent: SnapshotInfo, patch: ImportBundle,
               removals: list[tuple[str, str]], policy: DeltaPolicy) -> DeltaPlan | None:
    """The merge of ``patch`` minus ``removals`` onto ``parent`` as a delta, checked (errors in
    ``issues``), or None when it should be a full snapshot (see :class:`DeltaPolicy`; also when the
    parent has no content sums: hashed before version 2). Raises :class:`RemovalError` for a
    removal that names no row. Reads only the rows the patch touches."""
    row = conn.execute("SELECT base_id, content_sums FROM snapshots WHERE id = %s", (parent.id,)).fetchone()
    if row is None or row[1] is None or policy.max_share <= 0:
        return None
    base_id, sums = row[0] or parent.id, ContentSums.from_json(row[1])
    base_rows = sum(parent.entity_counts.values()) if row[0] is None else sum(
        conn.execute("SELECT entity_counts FROM snapshots WHERE id = %s", (base_id,)).fetchone()[0].values())
    parent_rows = delta_rows(conn, parent.id) if row[0] is not None else {}
    own = sum(parent_rows.values())
    budget = policy.max_share * base_rows
    patch_rows = sum(len(getattr(patch, k)) for k in ENTITY_KINDS)
    if base_rows < policy.min_base_rows or own + 2 * patch_rows + len(removals) > budget:
        return None

    read = _Reader(conn, parent.id)
    upserts = {kind: {row_key(kind, r): r for r in getattr(patch, kind)} for kind in ENTITY_KINDS}
    removed: dict[str, dict[str, object]] = {kind: {} for kind in ENTITY_KINDS}
    by_kind: dict[str, list[str]] = {}
    for kind, key in removals:
        by_kind.setdefault(kind, []).append(key)
    for kind, keys in by_kind.items():
        found = read.by_keys(kind, keys)
        for key in keys:
            if key not in found:
                raise RemovalError("IMPORT_REMOVAL_NOT_FOUND",
                                   f"cannot remove {kind} `{key}`: the current snapshot has no such row")
        removed[kind].update(found)
    for kind, dependents in _DEPENDENTS.items():
        gone = [entity_id(kind, slug) for slug in removed[kind]]
        for dependent, column in dependents:
            removed[dependent].update(read.referring(dependent, column, gone))
    for kind in ENTITY_KINDS:  # a row the patch writes again is replaced, not removed
        for key in upserts[kind]:
            removed[kind].pop(key, None)
    replaced = {kind: read.by_keys(kind, upserts[kind]) for kind in ENTITY_KINDS}

    counts = {kind: int(parent.entity_counts.get(kind, 0)) - len(removed[kind])
              + len(upserts[kind]) - len(replaced[kind]) for kind in ENTITY_KINDS}
    new_sums = sums.apply(removed={k: [*removed[k].values(), *replaced[k].values()] for k in ENTITY_KINDS},
                          added={k: upserts[k].values() for k in ENTITY_KINDS})
    if new_sums.counts != counts:  # the stored sums disagree with the stored counts: do not trust them
        return None
    masks = sum(len(removed[k]) + len(replaced[k]) for k in ENTITY_KINDS)
    if own + sum(len(u) for u in upserts.values()) + masks > budget:
        return None
    plan = DeltaPlan(parent, base_id, parent_rows, upserts, removed, replaced, counts, new_sums)
    plan.issues = check_delta(read, patch, plan)
    return plan


def check_delta(read: _Reader, patch: ImportBundle, plan: DeltaPlan) -> list[Issue]:
    """The rules the change can break, on the merged result: errors first, then warnings."""
    issues: list[Issue] = []
    upserts, removed = plan.upserts, plan.removed
    where = {kind: {row_key(kind, r): i for i, r in enumerate(getattr(patch, kind))} for kind in ENTITY_KINDS}

    def path(kind: str, key: str) -> str:
        return f"{kind}[{where[kind][key]}]" if key in where[kind] else f"{kind}:{key}"

    # Entities of the merged content, as far as asked: in the patch, or in the parent and not removed.
    known: dict[str, dict[str, bool]] = {kind: {} for kind in _SINGULAR}

    def exist(kind: str, slugs: Iterable[str]) -> None:
        ask = [s for s in set(slugs) if s not in known[kind] and s not in upserts[kind]]
        found = read.by_keys(kind, ask) if ask else {}
        for slug in ask:
            known[kind][slug] = slug in found and slug not in removed[kind]

    def present(kind: str, slug: str) -> bool:
        return slug in upserts[kind] or known[kind].get(slug, False)

    # 1. every reference of a row the patch writes resolves
    for kind, refs in _REFERENCES.items():
        for fname, target in refs:
            exist(target, (getattr(r, fname) for r in upserts[kind].values() if getattr(r, fname) is not None))
    for kind, refs in _REFERENCES.items():
        for key, row in upserts[kind].items():
            for fname, target in refs:
                slug = getattr(row, fname)
                if slug is not None and not present(target, slug):
                    issues.append(error("BUNDLE_UNKNOWN_REFERENCE", f"{path(kind, key)}.{fname}",
                                        f"unknown {_SINGULAR[target]} `{slug}`; define it in `{target}` or fix "
                                        "the slug (the current snapshot has none, or this merge removes it)"))
    # 2. nothing left refers to a removed entity (junctions and links went with it)
    for kind, referrers in _REFERRERS.items():
        gone = list(removed[kind])
        for referrer, column, fname in referrers:
            for key, row in read.referring(referrer, column, (entity_id(kind, s) for s in gone)).items():
                if key in removed[referrer] or key in upserts[referrer]:
                    continue
                issues.append(error("BUNDLE_UNKNOWN_REFERENCE", f"{referrer}:{key}.{fname}",
                                    f"unknown {_SINGULAR[kind]} `{getattr(row, fname)}`; this merge removes it but "
                                    f"{_SINGULAR[referrer]} `{key}` still refers to it: remove or change that "
                                    f"{_SINGULAR[referrer]} too"))
    # 3. links: no self link; a new link closes no cycle
    for name, kind in _LINK_KIND.items():
        new_edges = []
        for key, link in upserts[name].items():
            if link.source_slug == link.target_slug:
                issues.append(self_link(path(name, key), link.source_slug, kind))
            elif key not in plan.replaced[name] and present(kind, link.source_slug) and present(kind, link.target_slug):
                new_edges.append((key, link.source_slug, link.target_slug))
        cycles = 0
        for key, source, target in new_edges:
            if cycles >= _CYCLE_LIMIT:
                break
            read.know_patch(kind, plan.upserts[kind])
            loop = _path_between(read, name, kind, plan, target, source, present)
            if loop is not None:
                cycles += 1  # the new link, then the path back from its target to its source
                issues.append(cycle_found(path(name, key), name, [source, *loop[:-1]]))
    if issues:  # refused: the warnings would be about content that is not imported
        return issues
    issues.extend(_touched_warnings(read, plan, path, present, exist))
    return issues


def _path_between(read: _Reader, name: str, kind: str, plan: DeltaPlan, start: str, goal: str,
                  present) -> list[str] | None:
    """A path of merged ``name`` links from ``start`` to ``goal`` (slugs, both ends included), or
    None. Searched from both ends at once, a level at a time, always on the smaller frontier: forward
    over links out of ``start``'s side, backward over links into ``goal``'s side (one indexed query
    per level), until the two meet or one side runs out. A new link from an early spark to a late one
    (no cycle) then costs the early spark's few ancestors, not the late one's descendants. A link of
    the patch to an unknown entity is no edge (it is an error of its own, as in ``check_bundle``)."""
    as_id = {}

    def ident(slug: str) -> uuid.UUID:
        value = as_id.get(slug)
        if value is None:
            value = as_id[slug] = entity_id(kind, slug)
        return value

    out_new: dict[uuid.UUID, list[uuid.UUID]] = {}
    in_new: dict[uuid.UUID, list[uuid.UUID]] = {}
    for link in plan.upserts[name].values():
        if present(kind, link.source_slug) and present(kind, link.target_slug):
            a, b = ident(link.source_slug), ident(link.target_slug)
            out_new.setdefault(a, []).append(b)
            in_new.setdefault(b, []).append(a)
    hidden = {tuple(ident(s) for s in _pair(key)) for key in (*plan.removed[name], *plan.upserts[name])}
    sides = {"forward": ({ident(start): None}, [ident(start)], "source_id", out_new),
             "backward": ({ident(goal): None}, [ident(goal)], "target_id", in_new)}
    while sides["forward"][1] and sides["backward"][1]:
        direction = min(sides, key=lambda d: len(sides[d][1]))
        came, frontier, column, new = sides[direction]
        other = sides["backward" if direction == "forward" else "forward"][0]
        step: dict[uuid.UUID, list[uuid.UUID]] = {}
        for a, b in read.edges(name, column, frontier):
            if (a, b) not in hidden:
                here, there = (a, b) if direction == "forward" else (b, a)
                step.setdefault(here, []).append(there)
        following = []
        for node in frontier:
            for nxt in (*new.get(node, ()), *step.get(node, ())):
                if nxt in came:
                    continue
                came[nxt] = node
                if nxt in other:
                    forward, backward = sides["forward"][0], sides["backward"][0]
                    path = [nxt]
                    while forward[path[0]] is not None:
                        path.insert(0, forward[path[0]])
                    while backward[path[-1]] is not None:
                        path.append(backward[path[-1]])
                    return read.slugs(kind, path)
                following.append(nxt)
        sides[direction] = (came, following, column, new)
    return None


def _pair(key: str) -> tuple[str, str]:
    source, _, target = key.partition(" -> ")
    return source, target


def _touched_warnings(read: _Reader, plan: DeltaPlan, path, present, exist) -> list[Issue]:
    """The warnings ``check_bundle`` gives the merged content about the rows this merge touches:
    the sparks and concepts it writes or whose concept_sparks rows it removes, the trails it
    writes and those of a domain it writes."""
    upserts, removed = plan.upserts, plan.removed
    issues: list[Issue] = []
    joins = {**upserts["concept_sparks"]}
    gone_joins = set(removed["concept_sparks"])
    sparks = set(upserts["sparks"]) | {r.spark_slug for r in removed["concept_sparks"].values()}
    concepts = set(upserts["concepts"]) | {r.concept_slug for r in removed["concept_sparks"].values()}
    exist("sparks", sparks)
    exist("concepts", concepts)

    def joined(column: str, slugs: set[str], kind: str, fname: str) -> set[str]:
        have = {getattr(r, fname) for r in joins.values() if getattr(r, fname) in slugs}
        stored = read.referring("concept_sparks", column, (entity_id(kind, s) for s in slugs - have))
        have |= {getattr(r, fname) for k, r in stored.items() if k not in gone_joins and k not in joins}
        return have

    in_concept = joined("spark_id", {s for s in sparks if present("sparks", s)}, "sparks", "spark_slug")
    for slug in sorted(s for s in sparks if present("sparks", s) and s not in in_concept):
        issues.append(orphan_spark(path("sparks", slug), slug))
    with_sparks = joined("concept_id", {c for c in concepts if present("concepts", c)}, "concepts", "concept_slug")
    for slug in sorted(c for c in concepts if present("concepts", c) and c not in with_sparks):
        issues.append(empty_concept(path("concepts", slug), slug))
    trails = dict(upserts["trails"])
    unpublished = [d for d, row in upserts["domains"].items() if not row.is_published]
    for key, row in read.referring("trails", "domain_id", (entity_id("domains", d) for d in unpublished)).items():
        if key not in removed["trails"] and key not in trails:
            trails[key] = row
    domains = {t.domain_slug for t in trails.values() if t.is_published and t.domain_slug not in upserts["domains"]}
    stored_domains = read.by_keys("domains", domains)
    for key in sorted(trails):
        trail = trails[key]
        domain = upserts["domains"].get(trail.domain_slug) or stored_domains.get(trail.domain_slug)
        if trail.is_published and domain is not None and domain.is_published is False:
            issues.append(published_in_unpublished(f"{path('trails', key)}.is_published", key, trail.domain_slug))
    return issues


class _Ids(dict):
    """slug -> id of one entity kind, made on demand (ids are uuid5(kind, slug) in every snapshot)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def __missing__(self, slug: str) -> uuid.UUID:
        value = self[slug] = entity_id(self.kind, slug)
        return value


def load_delta(conn: psycopg.Connection, snapshot_id: uuid.UUID, plan: DeltaPlan,
               progress: Progress | None = None) -> int:
    """Write ``plan`` as snapshot ``snapshot_id`` (a new draft): its base, masks for every base row
    it replaces or removes (and the parent delta's masks), the parent delta's rows it keeps, the
    patch's rows. Returns the delta's rows. The caller owns the transaction."""
    conn.execute("UPDATE snapshots SET base_id = %s WHERE id = %s", (plan.base_id, snapshot_id))
    if plan.parent_rows:
        conn.execute("INSERT INTO snapshot_masks (snapshot_id, table_name, id, id2) SELECT %s, table_name, id, id2 "
                     "FROM snapshot_masks WHERE snapshot_id = %s", (snapshot_id, plan.parent.id))
    hidden = [(kind, *_key_ids(kind, key)) for kind in ENTITY_KINDS
              for key in (*plan.removed[kind], *plan.replaced[kind])]
    if hidden:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO snapshot_masks (snapshot_id, table_name, id, id2) "
                            "VALUES (%s, %s, %s, coalesce(%s, '00000000-0000-0000-0000-000000000000'::uuid)) "
                            "ON CONFLICT DO NOTHING",
                            [(snapshot_id, kind, ids[0], ids[1] if len(ids) > 1 else None) for kind, *ids in hidden])
    ids = {kind: _Ids(kind) for kind in _SINGULAR}
    patch = ImportBundle.model_construct(**{k: list(plan.upserts[k].values()) for k in ENTITY_KINDS})
    rows = table_rows(patch, snapshot_id, ids)
    total = 0
    with conn.cursor() as cursor:
        for kind in ENTITY_KINDS:
            dropped = [*plan.removed[kind], *plan.upserts[kind]]
            carry = plan.parent_rows.get(kind, 0) > 0
            if not carry and not plan.upserts[kind]:
                continue
            with snapshot_partition(cursor, kind, snapshot_id) as table:
                n = copy_unchanged(cursor, TABLES[kind], snapshot_id, plan.parent.id, set(dropped), table) if carry else 0
                if plan.upserts[kind]:
                    n += copy_rows(cursor, table, rows[kind])
            total += n
            if progress is not None:
                progress(kind, n, n)
    return total
