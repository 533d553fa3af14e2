"""The Dagster chain against the CLI import of the same file (issue 14: "work once, not twice").

In one run, each on a fresh content database, rounds interleaved, the median of each:

* cli: ``musingly import FILE`` as a user runs it (a subprocess; wall time, interpreter start-up
  included);
* dagster: the ``import_bundle`` job's assets for the file's partition (raw_bundle, validated_bundle,
  draft_snapshot and their checks), run in process on a Dagster instance whose storage is
  PostgreSQL (as in ``musingly pipeline``); timed around the run;
* domain: ``SnapshotStore.import_file`` called in process, what both faces call.

Prints each figure and the ratios dagster/cli (aim: at most 1.15) and dagster/domain (what Dagster's
own bookkeeping costs). Usage: python bench/dagster_chain.py [--sparks 50000] [--rounds 3]
Uses MUSINGLY_DATABASE_URL's server or the embedded one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musingly_pipeline.storage.database import (  # noqa: E402
    create_database,
    database_url,
    drop_database,
    sqlalchemy_url,
)
from musingly_pipeline.bundles.synthetic import write_bundle  # noqa: E402


def fresh(server: str, made: list[str]) -> str:
    name = f"bench_chain_{uuid.uuid4().hex[:8]}"
    made.append(name)
    return create_database(server, name)


def cli_import(url: str, path: Path, data: Path) -> float:
    env = dict(os.environ, MUSINGLY_DATABASE_URL=url, MUSINGLY_DATA_DIR=str(data))
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("musingly")), "import", str(path)], env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - started


def dagster_chain(url: str, path: Path, data: Path, instance) -> float:
    import dagster as dg

    from musingly_pipeline.definitions import defs
    from musingly_pipeline.defs.bundles.partitions import bundle_partitions

    inbox = data / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, inbox / path.name)
    instance.add_dynamic_partitions(bundle_partitions.name, [path.name])
    job = defs.resolve_job_def("import_bundle")
    os.environ.update(MUSINGLY_DATABASE_URL=url, MUSINGLY_DATA_DIR=str(data))
    started = time.perf_counter()
    result = job.execute_in_process(partition_key=path.name, instance=instance, raise_on_error=False,
                                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    seconds = time.perf_counter() - started
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert dg.AssetKey("draft_snapshot") in {e.asset_key for e in result.get_asset_materialization_events()}
    return seconds


def domain_import(url: str, path: Path, data: Path) -> float:
    from musingly_pipeline.signals import FileSystemStore
    from musingly_pipeline.bundles import SnapshotStore

    started = time.perf_counter()
    SnapshotStore(url, signals=FileSystemStore(data / "signals")).import_file(path)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparks", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import dagster as dg

    server = database_url()
    made: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
        tmp = Path(tmp)
        os.environ["MUSINGLY_DATA_DIR"] = str(tmp / "data")  # lifecycle signals, staging cache
        path = tmp / "bundle.json"
        write_bundle(path, args.sparks)
        size = path.stat().st_size
        home = tmp / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text().replace(
            "data/.dagster", str(tmp / "dagster")))
        os.environ["MUSINGLY_DAGSTER_STORAGE_URL"] = sqlalchemy_url(fresh(server, made))
        os.environ["DAGSTER_HOME"] = str(home)
        times: dict[str, list[float]] = {"cli": [], "dagster": [], "domain": []}
        try:
            with dg.DagsterInstance.get() as instance:
                dagster_chain(fresh(server, made), path, tmp / "warm", instance)  # imports, first run
                for round_ in range(args.rounds):
                    for name in ("cli", "dagster", "domain") if round_ % 2 == 0 else ("domain", "dagster", "cli"):
                        url = fresh(server, made)
                        data = tmp / f"data-{name}-{round_}"
                        if name == "cli":
                            times[name].append(cli_import(url, path, data))
                        elif name == "dagster":
                            times[name].append(dagster_chain(url, path, data, instance))
                        else:
                            times[name].append(domain_import(url, path, data))
                        print(f"  round {round_ + 1} {name:8} {times[name][-1]:6.2f}s", flush=True)
        finally:
            for name in made:
                drop_database(server, name)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{args.sparks} sparks, {size / 2**20:.0f} MiB, median of {args.rounds} rounds, fresh database each")
    for name, label in (("cli", "musingly import FILE (subprocess)"), ("dagster", "import_bundle job (in process)"),
                        ("domain", "import_bundle_file (in process)")):
        print(f"  {label:36} {median[name]:6.2f}s  ({', '.join(f'{t:.2f}' for t in times[name])})")
    print(f"  dagster / cli    {median['dagster'] / median['cli']:.2f}x  (aim: at most 1.15x)")
    print(f"  dagster / domain {median['dagster'] / median['domain']:.2f}x  (Dagster's own bookkeeping)")


if __name__ == "__main__":
    main()
