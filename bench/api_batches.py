"""Benchmark: a 10,000-item batch sent to the REST API with ``process: true``, against the CLI.

Both sides process the same items with the same processor (one small upsert per item, 1% failing
in the database, a savepoint per item: the framework's default) on the same fresh database, in
the same run:

- API: a ``musingly api`` subprocess (worker pool); the time until its ``202 Accepted`` arrives,
  then the batch's processing time (the summary's ``started_at`` to ``completed_at``) and the wall
  time from the request until the batch shows done (polled every 0.25 s).
- CLI (the baseline): the same items created with ``BatchManager.create_batch``, then a ``musingly
  batch process ID`` subprocess; its processing time (the summary's, as above) and its wall time
  (with the command's start-up).

The ratio is the batch's throughput in the API's background over the CLI's. The machine's other
load moves the figures: run it several times.

    python bench/api_batches.py            # 10,000 items, 3 rounds
    python bench/api_batches.py --quick    # 1,000 items
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from musingly_pipeline.batches import BaseProcessor, BatchManager, ProcessorRegistry  # noqa: E402
from musingly_pipeline.storage.database import create_database, database_url, drop_database  # noqa: E402

TOKEN = "bench-token"
UPSERT = "INSERT INTO bench_rows (k, v) VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = excluded.v"


class BenchRowProcessor(BaseProcessor):
    """One small upsert per item (batch type ``bench_row``); ``v: null`` fails in the database."""

    def process_item(self, item, ctx):
        ctx.execute(UPSERT, (item.source_data["k"], item.source_data["v"]))


def items(n: int) -> list[dict]:
    return [{"k": k, "v": None if k % 100 == 7 else f"value {k}"} for k in range(n)]


def environment(url: str) -> dict[str, str]:
    return {**os.environ, "MUSINGLY_DATABASE_URL": url, "MUSINGLY_API_TOKEN": TOKEN,
            "MUSINGLY_PROCESSOR_PACKAGES": "api_batches", "PYTHONPATH": os.pathsep.join([str(BENCH), str(ROOT)])}


def musingly(*args: str) -> list[str]:
    return [sys.executable, "-m", "musingly_pipeline.cli", *args]


def fresh(manager: BatchManager) -> None:
    """Empty table and no applied keys: every round imports the same content anew."""
    with manager.connect() as conn:
        conn.execute("TRUNCATE bench_rows, import_batch_item_keys")


def wait_done(manager: BatchManager, batch_id) -> None:
    # Polled four times a second: each poll counts the batch's items, which would slow the run.
    while True:
        summary = manager.get_batch_summary(batch_id)
        if summary.status in ("completed", "failed") and not manager.is_batch_running(batch_id):
            return
        time.sleep(0.25)


def through_api(manager: BatchManager, port: int, rows: list[dict]) -> tuple[float, float, float]:
    """(seconds to the 202, processing seconds, seconds from the request until done)."""
    fresh(manager)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=120) as client:
        started = time.perf_counter()
        answer = client.post("/api/batches", json={"batch_type": "bench_row", "items": rows, "process": True})
        answered = time.perf_counter() - started
        assert answer.status_code == 202, answer.text
        batch_id = answer.json()["batch_id"]
        wait_done(manager, batch_id)
        done = time.perf_counter() - started
    return answered, manager.get_batch_summary(batch_id).duration_seconds, done


def through_cli(manager: BatchManager, url: str, rows: list[dict]) -> tuple[float, float]:
    """(processing seconds, seconds of the `musingly batch process` command)."""
    fresh(manager)
    batch_id = manager.create_batch("bench_row", rows)
    started = time.perf_counter()
    subprocess.run(musingly("batch", "process", str(batch_id)), env=environment(url), check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    summary = manager.get_batch_summary(batch_id)
    assert summary.status == "failed" and summary.failed_items == sum(r["v"] is None for r in rows), summary
    return summary.duration_seconds, wall


def start_api(url: str) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = subprocess.Popen(musingly("api", "--port", str(port)), env=environment(url),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return api, port
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or api.poll() is not None:
            raise SystemExit("musingly api did not start")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 items")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds (default 3)")
    args = parser.parse_args()
    n = 1_000 if args.quick else args.items
    rows = items(n)

    server = os.environ.get("MUSINGLY_DATABASE_URL") or database_url()
    name = f"musingly_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = create_database(server, name)
    registry = ProcessorRegistry()
    registry.register(BenchRowProcessor)
    manager = BatchManager(url, registry)
    with manager.connect() as conn:
        conn.execute("CREATE TABLE bench_rows (k integer PRIMARY KEY, v text NOT NULL)")
    api, port = start_api(url)
    try:
        answers, api_processing, api_done, cli_processing, cli_wall = [], [], [], [], []
        for _ in range(args.rounds):
            answered, processing, done = through_api(manager, port, rows)
            answers.append(answered)
            api_processing.append(processing)
            api_done.append(done)
            processing, wall = through_cli(manager, url, rows)
            cli_processing.append(processing)
            cli_wall.append(wall)
    finally:
        api.terminate()
        api.wait(timeout=60)
        drop_database(server, name)
    answer, ap, ad = statistics.median(answers), statistics.median(api_processing), statistics.median(api_done)
    cp, cw = statistics.median(cli_processing), statistics.median(cli_wall)
    print(f"items: {n} (1% failing, a savepoint per item), rounds: {args.rounds} (medians)")
    print(f"API process:true, time to the 202: {answer:.3f} s (rounds: {', '.join(f'{a:.3f}' for a in answers)})")
    print(f"API background processing: {ap:.3f} s  {n / ap:,.0f} items/s  (request to done: {ad:.3f} s)")
    print(f"CLI `musingly batch process`: {cp:.3f} s  {n / cp:,.0f} items/s  (command: {cw:.3f} s)")
    print(f"ratio API background / CLI throughput: {cp / ap:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
