"""Benchmark: the import batch framework against a plain loop of upserts in one transaction.

Both sides upsert the same small rows into the same kind of table, in the same run, on the same
database (a fresh one, dropped at the end). The framework's batch has N items of which 1% fail in
the database (a NOT NULL violation, rolled back to its savepoint); the plain loop gets only the
good rows, since one failure would abort its transaction. The framework's time includes
create_batch (COPY of the items) and process_batch (savepoints, statuses, keys, logs). It runs
three times per round: with a replay_safe processor (items in groups under one savepoint, sent in
psycopg's pipeline mode: the aim's figure), the same groups without pipeline mode
(``BatchManager(pipelined=False)``, the plain engine) and the processor not replay_safe (a
savepoint per item, the default). The machine's other load moves the ratios: run it several times.

    python bench/batches.py            # 10,000 items
    python bench/batches.py --quick    # 1,000 items
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musingly_pipeline.batches import BaseProcessor, BatchManager, ProcessorRegistry  # noqa: E402
from musingly_pipeline.storage.database import (  # noqa: E402
    connect, create_database, database_url, drop_database)

UPSERT = "INSERT INTO {table} (k, v) VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
TABLE = "CREATE TABLE {table} (k integer PRIMARY KEY, v text NOT NULL)"


class BenchRowProcessor(BaseProcessor):
    """One small upsert per item; ``v: null`` fails in the database. Acts only through ctx."""

    replay_safe = True

    def process_item(self, item, ctx):
        data = item.source_data
        ctx.execute(UPSERT.format(table="framework_rows"), (data["k"], data["v"]))
        return None


class BenchRowPerItemProcessor(BenchRowProcessor):
    """The same, with a savepoint per item (the default for processors)."""

    replay_safe = False


def items(n: int) -> list[dict]:
    return [{"k": k, "v": None if k % 100 == 7 else f"value {k}"} for k in range(n)]


def plain_loop(url: str, rows: list[dict]) -> float:
    good = [r for r in rows if r["v"] is not None]
    with connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS plain_rows")
        conn.execute(TABLE.format(table="plain_rows"))
        conn.commit()
        started = time.perf_counter()
        with conn.transaction():
            for row in good:
                conn.execute(UPSERT.format(table="plain_rows"), (row["k"], row["v"]))
        return time.perf_counter() - started


def framework(url: str, rows: list[dict], processor: type[BaseProcessor] = BenchRowProcessor, *,
              pipelined: bool = True) -> tuple[float, float, object]:
    registry = ProcessorRegistry()
    registry.register(processor)
    manager = BatchManager(url, registry, pipelined=pipelined)
    with manager.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS framework_rows")
        conn.execute(TABLE.format(table="framework_rows"))
        # Each round imports the same content: forget earlier rounds' applied keys.
        conn.execute("TRUNCATE import_batch_item_keys")
    started = time.perf_counter()
    batch_id = manager.create_batch(processor.resolved_batch_type(), rows)
    created = time.perf_counter()
    summary = manager.process_batch(batch_id)
    done = time.perf_counter()
    return created - started, done - started, summary


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
    try:
        plain, create, total, grouped, per_item = [], [], [], [], []
        for _ in range(args.rounds):
            plain.append(plain_loop(url, rows))
            c, t, summary = framework(url, rows)
            create.append(c)
            total.append(t)
            grouped.append(framework(url, rows, pipelined=False)[1])
            per_item.append(framework(url, rows, BenchRowPerItemProcessor)[1])
        p, c, t = statistics.median(plain), statistics.median(create), statistics.median(total)
        g, s = statistics.median(grouped), statistics.median(per_item)
        good = sum(1 for r in rows if r["v"] is not None)
        print(f"items: {n} ({n - good} failing), rounds: {args.rounds} (medians)")
        print(f"plain loop, one transaction: {p:.3f} s  {good / p:,.0f} rows/s")
        print(f"framework, create + process: {t:.3f} s  {n / t:,.0f} items/s  (create_batch {c:.3f} s)"
              "  [replay_safe: groups of items]")
        print(f"framework, groups without pipeline mode: {g:.3f} s  {n / g:,.0f} items/s  [pipelined=False]")
        print(f"framework, a savepoint per item: {s:.3f} s  {n / s:,.0f} items/s  [the default]")
        print(f"  last batch: {summary.completed_items} completed, {summary.failed_items} failed, "
              f"status {summary.status}")
        print(f"ratio framework / plain: {t / p:.2f}x (aim: at most 2x)")
        print(f"ratio framework (groups without pipeline mode) / plain: {g / p:.2f}x")
        print(f"ratio framework (a savepoint per item) / plain: {s / p:.2f}x")
    finally:
        drop_database(server, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
