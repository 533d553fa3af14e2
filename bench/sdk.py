"""Benchmark: a generator's work with musingly-core against plain ``json`` on the same data, in one run.

The data is a synthetic 100k-spark bundle (``musingly_pipeline.bundles.synthetic``: ~1 KB of Markdown per
spark, ~300k prerequisite links, ~700k rows in all) as plain dicts. Measured, in this process:

* write, baseline ``json.dumps``: ``json.dumps`` of the dicts (C encoder) and writing the text;
* write, baseline ``json.dump indent=2``: the guide's export call on the plain dicts;
* SDK build: every model made with keyword arguments, as the guide does (``SparkImport(**row)``,
  then ``ImportBundle(...)``);
* SDK guide export: ``json.dump(bundle.model_dump(), f, indent=2)``, the guide's ``export_bundle``;
* SDK ``model_dump_json``: writing ``bundle.model_dump_json()``, the fast way to export;
* read, baseline ``json.load`` of the exported file, against ``musingly_core.validate`` of it (every
  rule ``musingly validate`` runs).

Each round runs every step once, in the order above, so a busy machine slows steps and baselines
alike; the median of ``--rounds`` rounds (default 3) is shown. Ratios are to the baseline named on
their line.

    python bench/sdk.py                 # 100k sparks
    python bench/sdk.py --sparks 10000  # quicker
    python bench/sdk.py --no-numpy      # as in a generator's venv: musingly-core counts keys without numpy
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if "--no-numpy" in sys.argv:
    sys.modules["numpy"] = None  # `import numpy` now fails, as where it is not installed

import musingly_core  # noqa: E402
from musingly_core import duplicate_keys  # noqa: E402
from musingly_core.models import (  # noqa: E402
    BeaconImport,
    ConceptImport,
    ConceptLinkImport,
    ConceptSparkImport,
    DomainImport,
    ImportBundle,
    ImportMetadata,
    SparkBeaconImport,
    SparkImport,
    SparkLinkImport,
    TrailImport,
)

from musingly_pipeline.bundles.synthetic import bundle_entities  # noqa: E402

MODELS = {
    "domains": DomainImport, "trails": TrailImport, "concepts": ConceptImport, "sparks": SparkImport,
    "beacons": BeaconImport, "concept_sparks": ConceptSparkImport, "spark_beacons": SparkBeaconImport,
    "spark_links": SparkLinkImport, "concept_links": ConceptLinkImport,
}
HEAD = {"schema_version": "1.0.0", "version_label": "bench-sdk", "name": "SDK benchmark"}
GENERATED_AT = datetime(2026, 12, 2, tzinfo=timezone.utc).isoformat()


def build(entities: dict[str, list[dict]]) -> ImportBundle:
    """The bundle as a generator makes it with the SDK: keyword arguments, model by model."""
    return ImportBundle(
        **HEAD,
        metadata=ImportMetadata(generated_at=GENERATED_AT, source_system="bench", source_version="1"),
        **{kind: [MODELS[kind](**row) for row in rows] for kind, rows in entities.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sparks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-numpy", action="store_true", help="hide numpy, as a venv with only musingly-core")
    args = parser.parse_args()

    entities = {kind: rows for kind, rows in bundle_entities(args.sparks)}
    document = {**HEAD, "metadata": {"generated_at": GENERATED_AT, "source_system": "bench",
                                     "source_version": "1"}, **entities}
    rows = sum(len(r) for r in entities.values())
    with tempfile.TemporaryDirectory() as tmp:
        plain, guide, fast = (Path(tmp) / name for name in ("plain.json", "guide.json", "fast.json"))

        def write_plain() -> None:
            plain.write_text(json.dumps(document), encoding="utf-8")

        def dump_plain_indented() -> None:
            with open(plain, "w") as f:
                json.dump(document, f, indent=2)

        def export_guide(bundle: ImportBundle) -> None:
            with open(guide, "w") as f:
                json.dump(bundle.model_dump(), f, indent=2)

        def load_plain() -> dict:
            with open(guide) as f:
                return json.load(f)

        seconds: dict[str, list[float]] = {}

        def timed(name: str, step):
            start = time.perf_counter()
            result = step()
            seconds.setdefault(name, []).append(time.perf_counter() - start)
            return result

        for _ in range(args.rounds):
            timed("dumps", write_plain)
            timed("dump_indent", dump_plain_indented)
            bundle = None  # the previous round's models go before the next ones are made
            bundle = timed("build", lambda: build(entities))
            timed("guide", lambda: export_guide(bundle))
            timed("fast", lambda: fast.write_text(bundle.model_dump_json(), encoding="utf-8"))
            timed("load", load_plain)
            report = timed("validate", lambda: musingly_core.validate(guide))
            assert report.valid and report.counts == bundle.counts(), [str(i) for i in report.errors[:5]]
        size = guide.stat().st_size
        assert json.loads(fast.read_bytes()) == json.loads(guide.read_bytes())

    median = {name: statistics.median(values) for name, values in seconds.items()}
    t_dumps, t_dump_indent, t_build, t_guide, t_fast, t_load, t_validate = (
        median[n] for n in ("dumps", "dump_indent", "build", "guide", "fast", "load", "validate"))
    print(f"bundle: {args.sparks} sparks, {rows} rows, {size / 2**20:.0f} MiB (indented); "
          f"median of {args.rounds} rounds; musingly-core {musingly_core.__version__}, "
          f"{'with' if duplicate_keys.np is not None else 'without'} numpy")
    lines = [
        ("json.dumps of the dicts + write (baseline)", t_dumps, None),
        ("json.dump(dicts, f, indent=2) (baseline)", t_dump_indent, None),
        ("SDK build: models from keyword arguments", t_build, None),
        ("SDK export: json.dump(bundle.model_dump(), indent=2)", t_guide, None),
        ("SDK build + guide export", t_build + t_guide, ("json.dump indent=2", t_dump_indent)),
        ("SDK export: write bundle.model_dump_json()", t_fast, None),
        ("SDK build + model_dump_json", t_build + t_fast, ("json.dumps", t_dumps)),
        ("json.load of the file (baseline)", t_load, None),
        ("musingly_core.validate(file)", t_validate, ("json.load", t_load)),
    ]
    for name, took, versus in lines:
        ratio = f"  {took / versus[1]:5.2f}x {versus[0]}" if versus else ""
        print(f"{name:<55} {took:7.2f} s {rows / took:10,.0f} rows/s{ratio}")


if __name__ == "__main__":
    main()
