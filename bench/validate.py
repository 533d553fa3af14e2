"""Benchmark: full bundle validation against plain `json.load` of the same file.

Each measurement runs in a fresh Python process so its peak RSS is its own. Baseline: `json.load`.
Also shown: pydantic's `model_validate_json` alone (the contracts without integrity rules).

    python bench/validate.py                 # 100k sparks, ~300k links, ~250 MB
    python bench/validate.py --sparks 10000  # quicker
Aim (issue 2): full validation within 3x of json.load in time and 1.5x in peak memory.
CPU time (user + system of the measured step) is printed too: on a machine shared with other work
it varies less than the wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]
if kind == "json.load":
    t, cpu = time.perf_counter(), time.process_time()
    with open(path, "rb") as f:
        data = json.load(f)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    entities = sum(len(v) for v in data.values() if isinstance(v, list))
elif kind == "contracts only":
    from musingly_core.models import ImportBundle
    t, cpu = time.perf_counter(), time.process_time()
    with open(path, "rb") as f:
        bundle = ImportBundle.model_validate_json(f.read())
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    entities = sum(bundle.counts().values())
else:
    from musingly_core.bundle_file import validate_bundle_file
    t, cpu = time.perf_counter(), time.process_time()
    result = validate_bundle_file(path)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    assert result.valid, [str(i) for i in result.report.issues[:5]]
    entities = sum(result.report.counts.values())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_bytes": peak, "entities": entities}))
"""


def measure(kind: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sparks", type=int, default=100_000)
    parser.add_argument("--content-bytes", type=int, default=1500, help="Markdown per spark")
    parser.add_argument("--file", type=Path, help="reuse this bundle instead of generating one")
    args = parser.parse_args()

    from musingly_pipeline.bundles.synthetic import write_bundle

    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or write_bundle(Path(tmp) / "bundle.json", args.sparks, content_bytes=args.content_bytes)
        size = path.stat().st_size
        print(f"bundle: {path.name}, {size / 2**20:.0f} MiB, {args.sparks} sparks")
        results = {kind: measure(kind, path) for kind in ("json.load", "contracts only", "full validation")}

    base = results["json.load"]
    print(f"{'step':<16} {'seconds':>8} {'cpu s':>6} {'peak MiB':>9} {'entities/s':>11} {'time x':>7} "
          f"{'cpu x':>6} {'memory x':>9}")
    for kind, r in results.items():
        print(f"{kind:<16} {r['seconds']:8.2f} {r['cpu']:6.2f} {r['peak_bytes'] / 2**20:9.0f} "
              f"{r['entities'] / r['seconds']:11.0f} {r['seconds'] / base['seconds']:7.2f} "
              f"{r['cpu'] / base['cpu']:6.2f} {r['peak_bytes'] / base['peak_bytes']:9.2f}")
    full = results["full validation"]
    time_ratio = full["seconds"] / base["seconds"]
    memory_ratio = full["peak_bytes"] / base["peak_bytes"]
    print(f"full validation vs json.load: time {time_ratio:.2f}x (aim <= 3), "
          f"CPU time {full['cpu'] / base['cpu']:.2f}x, peak memory {memory_ratio:.2f}x (aim <= 1.5)")


if __name__ == "__main__":
    main()
