"""Scale-out: N bundles handed in at once, until all are ready drafts, with 1 and with 2 Celery workers.

In one run, for each worker count: fresh databases and a RabbitMQ virtual host of its own, the
daemon (`deploy/dagster.celery.yaml`) and the workers started as docs/deployment.md starts them
(`musingly_pipeline_tests/operations/distributed.py`), then N distinct synthetic bundles pushed at
once with `musingly inbox push`; timed from the first push until the N drafts are ready. Prints
both times and the ratio (1 worker / 2 workers).

Usage: python bench/distributed.py [--bundles 4] [--sparks 20000]
Needs RabbitMQ on 127.0.0.1:5672 and uses MUSINGLY_TEST_DATABASE_URL's server, else the embedded one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musingly_pipeline.bundles import SnapshotStore  # noqa: E402
from musingly_pipeline.storage.database import create_database, drop_database, embedded_url, sqlalchemy_url  # noqa: E402
from musingly_pipeline.bundles.synthetic import write_bundle  # noqa: E402
from musingly_pipeline_tests.operations.distributed import Deployment, broker_vhost  # noqa: E402


def one(workers: int, files: list[Path], server: str, root: Path) -> float:
    names = [f"bench_dist_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    content, dagster = (create_database(server, n) for n in names)
    try:
        with broker_vhost() as broker:
            deployment = Deployment(root / f"{workers}-workers", content, sqlalchemy_url(dagster), broker)
            try:
                for i in range(workers):
                    deployment.start_worker(f"w{i + 1}")
                deployment.start_daemon()
                deployment.wait_ready([f"w{i + 1}" for i in range(workers)] + ["daemon"])
                SnapshotStore(content).list_snapshots()  # migrated before the clock starts
                started = time.monotonic()
                for i, path in enumerate(files):
                    deployment.push(path, f"bundle-{i}.json")
                while len([s for s in SnapshotStore(content).list_snapshots() if s.status == "ready"]) < len(files):
                    failed = [r for r in deployment.runs() if r.is_finished and r.status.value != "SUCCESS"]
                    assert not failed, failed
                    time.sleep(0.5)
                return time.monotonic() - started
            finally:
                deployment.stop()
    finally:
        for name in names:
            drop_database(server, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=4)
    parser.add_argument("--sparks", type=int, default=20_000)
    args = parser.parse_args()
    server = os.environ.get("MUSINGLY_TEST_DATABASE_URL", "").strip() or embedded_url()
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        root = Path(tmp)
        files = [write_bundle(root / f"b{i}.json", args.sparks, seed=i, version_label=f"bench-{i}")
                 for i in range(args.bundles)]
        size = sum(f.stat().st_size for f in files) / 2**20
        print(f"{args.bundles} bundles of {args.sparks} sparks ({size:.0f} MiB in all), load {os.getloadavg()[0]:.1f}")
        times = {}
        for workers in (1, 2):
            times[workers] = one(workers, files, server, root)
            print(f"  {workers} worker(s): all ready in {times[workers]:.1f}s", flush=True)
    print(f"  1 worker / 2 workers: {times[1] / times[2]:.2f}x")


if __name__ == "__main__":
    main()
