"""Incremental imports (issue 19): what a change costs against what the platform's size costs.

In one run, side by side, for a large and a small bundle (100k and 10k sparks; ``--quick``: 20k
and 2k), each in its own fresh database on the same server:

* the full import of the bundle file, end to end (``SnapshotStore.import_file``), then its promotion;
* a re-import of content identical to the current snapshot: the same file, and the same content
  re-serialised (other key order and whitespace, lists reversed), both reused;
* a ``--merge`` of a file of 100 changed sparks onto the current snapshot, end to end;
* a ``--merge`` of one new prerequisite link (early -> middle spark; middle -> a later one);
* the diff of the merged snapshot against the full import, and its export;
* promote and rollback (the merged snapshot promoted, the same merge again, then rolled back);
* a full import of other content with the same row counts (another seed of the generator);
* readers on the ``current_*`` views: a spark by slug, a full scan of ``current_sparks``, and the
  prerequisite graph of a concept (its transitive prerequisite concepts over
  ``current_concept_links``, with their sparks and each spark's direct prerequisites);
* where the time goes (the large size; ``--no-steps`` skips it): each step of a full import and of a
  merge timed alone, one after the other (parse, rules, hash, COPY; reading the base back, merging,
  the rules and the hash of the merged content, the merged load), every load rolled back.

It prints the figures and the ratios the issue's aims name: merge / full import at the large size
(aim <= 0.1), merge at the large size / merge at the small one (aim <= 1.5), identical re-import /
full import (aim <= 0.35), readers against a baseline given with ``--readers-baseline`` (aim <= 1.2).

Usage: python bench/incremental.py [--quick] [--server postgresql://postgres@127.0.0.1:5432/postgres]
       [--sizes 100000 10000] [--content-bytes 1500] [--json FILE] [--readers-baseline FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musingly_core.bundle_file import read_bundle  # noqa: E402
from musingly_core.integrity import check_bundle  # noqa: E402
from musingly_core.models import ImportBundle  # noqa: E402

from musingly_pipeline.bundles import SnapshotStore  # noqa: E402
from musingly_pipeline.bundles.content_hash import content_hash  # noqa: E402
from musingly_pipeline.bundles.loader import load_bundle, load_merged_bundle  # noqa: E402
from musingly_pipeline.bundles.merge import merge_bundles  # noqa: E402
from musingly_pipeline.bundles.projections import read_bundle_content  # noqa: E402
from musingly_pipeline.bundles.synthetic import write_bundle  # noqa: E402
from musingly_pipeline.storage.database import connect, create_database, drop_database  # noqa: E402
from musingly_pipeline.storage.migrations import migrate  # noqa: E402

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
CHANGED = 100

SLUG_LOOKUP = "SELECT * FROM current_sparks WHERE slug = %s"
FULL_SCAN = "SELECT count(*), sum(length(content_md)), max(title) FROM current_sparks"
# The prerequisite graph of a concept: every concept it needs first (transitively, over
# current_concept_links), each one's sparks, and each of those sparks' direct prerequisites.
PREREQUISITE_GRAPH = """
WITH RECURSIVE needs(slug, depth) AS (
    SELECT %s::text, 0
    UNION
    SELECT l.source_slug, n.depth + 1 FROM current_concept_links l JOIN needs n ON l.target_slug = n.slug
)
SELECT n.slug, n.depth, cs.spark_slug, sl.source_slug AS spark_prerequisite
FROM needs n
JOIN current_concept_sparks cs ON cs.concept_slug = n.slug
LEFT JOIN current_spark_links sl ON sl.target_slug = cs.spark_slug
ORDER BY n.depth, cs.order_index
"""


def timed(call):
    started = time.perf_counter()
    value = call()
    return value, time.perf_counter() - started


def reserialise(source: Path, target: Path) -> Path:
    """The same content with other key order and whitespace, every list reversed."""
    with source.open(encoding="utf-8") as f:
        data = json.load(f)
    for value in data.values():
        if isinstance(value, list):
            value.reverse()
    with target.open("w", encoding="utf-8") as out:
        json.dump(data, out, sort_keys=True, indent="\t", separators=(" ,", " : "), ensure_ascii=True)
    return target


def patch_file(bundle: ImportBundle, path: Path, n: int) -> Path:
    """A partial bundle of ``n`` sparks of ``bundle`` (spread over it), each with a changed summary."""
    step = max(1, len(bundle.sparks) // n)
    sparks = [{**s.model_dump(mode="json"), "summary": f"changed {i}"}
              for i, s in enumerate(bundle.sparks[::step][:n])]
    path.write_text(json.dumps({
        "schema_version": "1.0.0", "version_label": "bench-merge",
        "metadata": {"generated_at": "2026-12-03T00:00:00+00:00", "source_system": "bench"},
        "sparks": sparks}), encoding="utf-8")
    return path


def link_files(bundle: ImportBundle, tmp: Path) -> dict[str, Path]:
    """Partial bundles of one new prerequisite link: from an early spark to one in the middle, and
    between two sparks in the middle (a fifth of the bundle apart: never linked by the generator,
    whose links span at most 1,000 sparks, and never closing a cycle: its links go forward)."""
    n = len(bundle.sparks)
    pairs = {"merge_link_early_s": (bundle.sparks[1], bundle.sparks[n // 2]),
             "merge_link_middle_s": (bundle.sparks[n // 2], bundle.sparks[n // 2 + n // 5])}
    files = {}
    for key, (source, target) in pairs.items():
        files[key] = tmp / f"{key}-{n}.json"
        files[key].write_text(json.dumps({
            "schema_version": "1.0.0", "version_label": "bench-link",
            "metadata": {"generated_at": "2026-12-03T00:00:00+00:00", "source_system": "bench"},
            "spark_links": [{"source_slug": source.slug, "target_slug": target.slug}]}), encoding="utf-8")
    return files


def median_ms(conn, query: str, params_list: list[tuple], rounds: int) -> float:
    times = []
    for i in range(rounds):
        params = params_list[i % len(params_list)]
        started = time.perf_counter()
        conn.execute(query, params).fetchall()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def reader_keys(bundle: ImportBundle) -> tuple[list[tuple], list[tuple]]:
    """200 spark slugs to look up, and the concepts whose prerequisite graphs are read."""
    rng = random.Random(7)
    slugs = [(s.slug,) for s in rng.sample(bundle.sparks, min(200, len(bundle.sparks)))]
    # concepts late in the synthetic chain have the deepest prerequisite graphs
    return slugs, [(c.slug,) for c in bundle.concepts[-5:]]


# 0001's views (before issue 19: the current snapshot's partition only, joined on (snapshot_id, id)),
# made as temporary views to measure them in the same run and database as today's; they read a full
# current snapshot correctly (a delta's base rows they would miss).
VIEWS_0001 = {
    "current_sparks": "SELECT p.* FROM sparks p WHERE p.snapshot_id = (SELECT id FROM current_snapshot)",
    "current_concept_sparks": (
        "SELECT j.*, c.slug AS concept_slug, p.slug AS spark_slug FROM concept_sparks j "
        "JOIN concepts c ON c.snapshot_id = j.snapshot_id AND c.id = j.concept_id "
        "JOIN sparks p ON p.snapshot_id = j.snapshot_id AND p.id = j.spark_id "
        "WHERE j.snapshot_id = (SELECT id FROM current_snapshot)"),
    "current_spark_links": (
        "SELECT l.*, a.slug AS source_slug, b.slug AS target_slug FROM spark_links l "
        "JOIN sparks a ON a.snapshot_id = l.snapshot_id AND a.id = l.source_id "
        "JOIN sparks b ON b.snapshot_id = l.snapshot_id AND b.id = l.target_id "
        "WHERE l.snapshot_id = (SELECT id FROM current_snapshot)"),
    "current_concept_links": (
        "SELECT l.*, a.slug AS source_slug, b.slug AS target_slug FROM concept_links l "
        "JOIN concepts a ON a.snapshot_id = l.snapshot_id AND a.id = l.source_id "
        "JOIN concepts b ON b.snapshot_id = l.snapshot_id AND b.id = l.target_id "
        "WHERE l.snapshot_id = (SELECT id FROM current_snapshot)"),
}


def _on_0001_views(query: str) -> str:
    for name in sorted(VIEWS_0001, key=len, reverse=True):
        query = query.replace(f" {name} ", f" v0001_{name[len('current_'):]} ")
    return query


def readers(url: str, keys: tuple[list[tuple], list[tuple]], with_0001: bool = False) -> dict[str, float]:
    """The readers' queries on the current_* views (medians); with ``with_0001``, the same queries on
    0001's views too (``*_0001_ms``), the two alternating in three rounds (the median round kept)."""
    slugs, concepts = keys
    with connect(url, autocommit=True) as conn:
        for name, body in VIEWS_0001.items():
            conn.execute(f"CREATE TEMP VIEW v0001_{name[len('current_'):]} AS {body}")
        median_ms(conn, FULL_SCAN, [()], 2)  # warm the cache
        rows = len(conn.execute(PREREQUISITE_GRAPH, concepts[0]).fetchall())
        out: dict[str, float] = {"prerequisite_graph_rows": rows}
        for key, query, params, rounds in (("slug_lookup", SLUG_LOOKUP, slugs, 200),
                                           ("full_scan", FULL_SCAN, [()], 7),
                                           ("prerequisite_graph", PREREQUISITE_GRAPH, concepts, 15)):
            ways = {f"{key}_ms": query} | ({f"{key}_0001_ms": _on_0001_views(query)} if with_0001 else {})
            seen: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(3 if with_0001 else 1):
                for name, q in ways.items():
                    seen[name].append(median_ms(conn, q, params, rounds))
            out.update({name: statistics.median(values) for name, values in seen.items()})
        return out


def rolled_back(url: str, work) -> float:
    """Seconds of ``work(conn, snapshot_id)`` in a transaction (a new snapshot row) rolled back."""
    with connect(url) as conn:
        sid = conn.execute("SELECT create_snapshot_row(%s, %s, %s, %s)", ("bench", "steps", None, None)).fetchone()[0]
        _, seconds = timed(lambda: work(conn, sid))
        conn.rollback()
    return seconds


def steps(url: str, big: Path, patch: Path) -> dict[str, float]:
    """Each step of a full import and of a merge, alone and one after the other."""
    out: dict[str, float] = {}
    file, out["full.read_parse"] = timed(lambda: read_bundle(big))
    bundle = file.bundle
    _, out["full.rules"] = timed(lambda: check_bundle(bundle))
    _, out["full.content_hash"] = timed(lambda: content_hash(bundle))
    out["full.copy_and_index"] = rolled_back(url, lambda conn, sid: load_bundle(conn, sid, bundle))
    del file, bundle
    patch_bundle = read_bundle(patch).bundle
    _, out["merge.rules_on_patch"] = timed(lambda: check_bundle(patch_bundle))
    with connect(url) as conn:
        current = conn.execute("SELECT id FROM snapshots WHERE status = 'current'").fetchone()[0]
        base, out["merge.read_base"] = timed(lambda: read_bundle_content(conn, current, patch_bundle))
        conn.rollback()
    merged, out["merge.merge_in_python"] = timed(lambda: merge_bundles(base, patch_bundle))
    _, out["merge.rules_on_merged"] = timed(lambda: check_bundle(merged))
    _, out["merge.content_hash"] = timed(lambda: content_hash(merged))
    out["merge.load_kept_and_patch"] = rolled_back(
        url, lambda conn, sid: load_merged_bundle(conn, sid, merged, current, base, patch_bundle))
    return out


def run_size(server: str, sparks: int, content_bytes: int, tmp: Path, with_steps: bool) -> dict:
    name = f"musingly_bench_inc_{uuid.uuid4().hex[:8]}"
    url = create_database(server, name)
    r: dict = {"sparks": sparks}
    try:
        migrate(url)
        store = SnapshotStore(url)
        path = write_bundle(tmp / f"b{sparks}.json", sparks, content_bytes=content_bytes)
        other = reserialise(path, tmp / f"b{sparks}-reserialised.json")
        r["file_mib"] = path.stat().st_size / 2**20

        full, r["full_import_s"] = timed(lambda: store.import_file(path))
        r["rows"] = sum(full.entity_counts.values())
        _, r["promote_s"] = timed(lambda: store.promote(full.import_id))
        same, r["reimport_same_file_s"] = timed(lambda: store.import_file(path))
        assert same.reused and same.snapshot_id == full.snapshot_id, same
        again, r["reimport_reserialised_s"] = timed(lambda: store.import_file(other))
        assert again.reused and again.snapshot_id == full.snapshot_id, again

        bundle = read_bundle(path).bundle
        keys = reader_keys(bundle)
        patch = patch_file(bundle, tmp / f"patch{sparks}.json", CHANGED)
        links = link_files(bundle, tmp)
        del bundle  # this process holds no bundle while it times (a collection of 700k objects is not the import's)
        r.update(readers(url, keys, with_0001=True))
        merged, r["merge_s"] = timed(lambda: store.import_file(patch, merge=True))
        assert not merged.reused and merged.entity_counts["sparks"] == sparks, merged
        _, r["diff_merged_s"] = timed(lambda: store.diff(full.snapshot_id, merged.snapshot_id))
        _, r["export_merged_s"] = timed(lambda: store.export_bundle(merged.snapshot_id))
        _, r["promote_merged_s"] = timed(lambda: store.promote(merged.import_id))
        # the readers again, the merged snapshot current (a delta on the first one, if it is stored so)
        r["merged_is_delta"] = store.get_snapshot(merged.snapshot_id).base_id is not None
        r.update({f"merged_{k}": v for k, v in readers(url, keys).items()})
        again, r["merge_again_s"] = timed(lambda: store.import_file(patch, merge=True))  # delivered twice
        assert again.snapshot_id == merged.snapshot_id, again
        for key, link in links.items():  # one new link: the cycle check searches from its ends
            linked, r[key] = timed(lambda: store.import_file(link, merge=True))
            store.delete_draft(linked.snapshot_id)
        _, r["rollback_s"] = timed(lambda: store.rollback())
        # a full import of other content with the current snapshot's row counts (another seed):
        # what recognising identical content before loading must not make slower
        changed = write_bundle(tmp / f"c{sparks}.json", sparks, seed=1, content_bytes=content_bytes)
        other_full, r["full_import_same_counts_s"] = timed(lambda: store.import_file(changed))
        assert not other_full.reused and other_full.entity_counts == full.entity_counts, other_full
        changed.unlink()
        if with_steps:
            r["steps"] = steps(url, path, patch)
    finally:
        drop_database(server, name)
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=os.environ.get("MUSINGLY_BENCH_SERVER", DEFAULT_SERVER),
                        help="a PostgreSQL URL; fresh databases are created on its server and dropped")
    parser.add_argument("--quick", action="store_true", help="20k and 2k sparks")
    parser.add_argument("--sizes", type=int, nargs=2, metavar=("LARGE", "SMALL"))
    parser.add_argument("--content-bytes", type=int, default=1500)
    parser.add_argument("--no-steps", action="store_true", help="skip the step-by-step breakdown")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--readers-baseline", type=Path, help="a --json file of an earlier run: readers' ratios")
    args = parser.parse_args()
    large, small = args.sizes or ((20_000, 2_000) if args.quick else (100_000, 10_000))

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MUSINGLY_SIGNAL_STORE"] = str(Path(tmp) / "signals")  # not the checkout's data/
        results = {}
        for sparks in (large, small):
            results[sparks] = run_size(args.server, sparks, args.content_bytes, Path(tmp),
                                       with_steps=sparks == large and not args.no_steps)
            Path(tmp, f"b{sparks}.json").unlink()
            Path(tmp, f"b{sparks}-reserialised.json").unlink()

    L, S = results[large], results[small]
    print(f"sizes: {large} sparks ({L['rows']} rows, {L['file_mib']:.0f} MiB) and {small} sparks "
          f"({S['rows']} rows, {S['file_mib']:.0f} MiB); {CHANGED} changed sparks merged")
    print(f"{'':40s} {large:>10d} {small:>10d}")
    for key, label, unit in (
            ("full_import_s", "full import (file -> ready)", "s"),
            ("reimport_same_file_s", "re-import, same file (reused)", "s"),
            ("reimport_reserialised_s", "re-import, re-serialised (reused)", "s"),
            ("full_import_same_counts_s", "full import, other content, same counts", "s"),
            ("merge_s", f"merge of {CHANGED} changed sparks", "s"),
            ("merge_again_s", "the same merge again (changes nothing)", "s"),
            ("merge_link_early_s", "merge of one link, early -> middle spark", "s"),
            ("merge_link_middle_s", "merge of one link, middle -> later spark", "s"),
            ("diff_merged_s", "diff, full import -> merged", "s"),
            ("export_merged_s", "export of the merged snapshot", "s"),
            ("promote_s", "promote (first)", "ms"), ("promote_merged_s", "promote (merged)", "ms"),
            ("rollback_s", "rollback", "ms"),
            ("slug_lookup_ms", "reader: spark by slug (median)", "ms*"),
            ("full_scan_ms", "reader: full scan current_sparks", "ms*"),
            ("prerequisite_graph_ms", "reader: prerequisite graph", "ms*"),
            ("slug_lookup_0001_ms", "reader: spark by slug, 0001's views", "ms*"),
            ("full_scan_0001_ms", "reader: full scan, 0001's views", "ms*"),
            ("prerequisite_graph_0001_ms", "reader: prerequisite graph, 0001's", "ms*"),
            ("merged_slug_lookup_ms", "reader: spark by slug, merged current", "ms*"),
            ("merged_full_scan_ms", "reader: full scan, merged current", "ms*"),
            ("merged_prerequisite_graph_ms", "reader: prerequisite graph, merged", "ms*")):
        scale = 1000 if unit == "ms" else 1
        print(f"{label:40s} {L[key] * scale:10.2f} {S[key] * scale:10.2f}  {unit.rstrip('*')}")
    print(f"(prerequisite graph of a concept: {L['prerequisite_graph_rows']} / {S['prerequisite_graph_rows']} rows; "
          f"merged snapshot stored as a delta: {L['merged_is_delta']} / {S['merged_is_delta']})")
    ratios = {
        "merge/full at large (aim <= 0.1)": L["merge_s"] / L["full_import_s"],
        "merge large/small (aim <= 1.5)": L["merge_s"] / S["merge_s"],
        "same-file re-import/full at large (aim <= 0.35)": L["reimport_same_file_s"] / L["full_import_s"],
        "re-serialised re-import/full at large (aim <= 0.35)": L["reimport_reserialised_s"] / L["full_import_s"],
        "same merge again/full at large": L["merge_again_s"] / L["full_import_s"],
        "one-link merge (middle) / full at large": L["merge_link_middle_s"] / L["full_import_s"],
        "one-link merge (middle) large/small": L["merge_link_middle_s"] / S["merge_link_middle_s"],
        "same-counts full import/full at large (not slower: ~1)": L["full_import_same_counts_s"] / L["full_import_s"],
        "promote large/small (constant: ~1)": L["promote_merged_s"] / S["promote_merged_s"],
        "rollback large/small (constant: ~1)": L["rollback_s"] / S["rollback_s"],
    }
    for key in ("slug_lookup_ms", "full_scan_ms", "prerequisite_graph_ms"):
        old = L[key.replace("_ms", "_0001_ms")]
        ratios[f"reader {key} / 0001's views, same run (aim <= 1.2)"] = L[key] / old
        ratios[f"reader {key}, merged current / 0001's views, same run (aim <= 1.2)"] = L[f"merged_{key}"] / old
    if args.readers_baseline:
        before = json.loads(args.readers_baseline.read_text())[str(large)]
        for key in ("slug_lookup_ms", "full_scan_ms", "prerequisite_graph_ms"):
            ratios[f"reader {key} / baseline (aim <= 1.2)"] = L[key] / before[key]
            ratios[f"reader {key}, merged current / baseline (aim <= 1.2)"] = L[f"merged_{key}"] / before[key]
    for label, value in ratios.items():
        print(f"ratio {label:55s} {value:6.2f}")
    if "steps" in L:
        print(f"where the time goes at {large} sparks (each step alone, loads rolled back):")
        for key, seconds in L["steps"].items():
            print(f"  {key:32s} {seconds:7.2f} s")
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in results.items()} | {"ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
