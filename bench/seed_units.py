"""Benchmark: import and export of generated seed units (units per second each way, peak memory).

Each unit has 5 lessons of 20 exercises, a flow run, 3 step runs and 3 LLM requests per lesson, a
resource and two conversations. Every phase runs in its own process, so peak RSS is that phase's.
Baselines, measured in the same run: reading and ``json.loads`` of the same files (for import) and
``json.dumps`` + writing them (for export); the ratio says what validation and PostgreSQL cost on
top of plain JSON.

    python bench/seed_units.py               # 1,000 units
    python bench/seed_units.py --units 100   # smaller
    python bench/seed_units.py --quick       # 50 units

Uses ``MUSINGLY_DATABASE_URL``'s server (or the embedded one) and a temporary database on it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase(name: str, directory: Path, url: str, out: Path) -> dict:
    from musingly_pipeline.seed_units import SeedUnitStore
    from musingly_pipeline.seed_units.files import encode, unit_paths

    start = time.perf_counter()
    if name == "import":
        result = SeedUnitStore(url).import_folder(directory)
        assert result.ok, result.issues()[:5]
    elif name == "export":
        SeedUnitStore(url).export_folder(out, users=True)
    elif name == "baseline-load":
        for path in unit_paths(directory):
            json.loads(path.read_bytes())
    elif name == "baseline-dump":
        documents = [json.loads(p.read_bytes()) for p in unit_paths(directory)]
        start = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        for n, document in enumerate(documents):
            (out / f"{n}.json").write_bytes(encode(document))
    return {"seconds": time.perf_counter() - start, "peak_mib": _peak_mib()}


def run_phase(name: str, directory: Path, url: str, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--dir", str(directory), "--url", url, "--out", str(out)],
        check=True, capture_output=True, text=True, env=env,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="50 units")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, Path(args.dir), args.url, Path(args.out))))
        return 0

    from musingly_pipeline.seed_units.files import UNITS_DIR, USERS_FILE, encode
    from musingly_pipeline.seed_units.synthetic import synthetic_unit, synthetic_users
    from musingly_pipeline.storage.database import create_database, database_url, drop_database
    from musingly_pipeline.storage.migrations import migrate

    units = 50 if args.quick else args.units
    server = database_url()
    name = f"musingly_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(server, name)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch) / "seed"
            (source / UNITS_DIR).mkdir(parents=True)
            (source / USERS_FILE).write_bytes(encode(synthetic_users()))
            size = 0
            for n in range(units):
                data = encode(synthetic_unit(n, lessons=5, exercises=20, steps=3))
                size += len(data)
                (source / UNITS_DIR / f"unit-{n:05d}.json").write_bytes(data)
            migrate(url)
            print(f"{units} units, {size / 2**20:.1f} MiB of JSON ({size / units / 1024:.0f} KiB per unit)")
            figures = {}
            for phase_name in ("baseline-load", "import", "export", "baseline-dump"):
                figures[phase_name] = run_phase(phase_name, source, url, Path(scratch) / phase_name)
            for label, ours, base in (("import", "import", "baseline-load"), ("export", "export", "baseline-dump")):
                f, b = figures[ours], figures[base]
                print(f"{label:<7} {units / f['seconds']:8.1f} units/s  {f['seconds']:7.2f} s  peak {f['peak_mib']:7.1f} MiB"
                      f"   baseline ({base}) {units / b['seconds']:8.1f} units/s, peak {b['peak_mib']:.1f} MiB;"
                      f"  ratio {f['seconds'] / b['seconds']:.1f}x the time")
            exported = Path(scratch) / "export"
            # Export names files by title; compare contents as sets of bytes.
            left = sorted(p.read_bytes() for p in (source / UNITS_DIR).iterdir())
            right = sorted(p.read_bytes() for p in (exported / UNITS_DIR).iterdir())
            same = left == right and (source / USERS_FILE).read_bytes() == (exported / USERS_FILE).read_bytes()
            print(f"round trip exact: {same}")
    finally:
        drop_database(server, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
