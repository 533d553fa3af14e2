"""Processors the batch tests use; discoverable as ``musingly_pipeline_tests.batches.processors``.

``BATCH_TEST_HANG_ON=N`` makes CounterProcessor hang on item ``n == N`` and ``BATCH_TEST_CRASH=1``
makes it kill its own process on items with ``"crash": true``: only subprocess tests set them.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import psycopg
from psycopg import sql

from musingly_pipeline.batches import BaseProcessor, BatchManager, ProcessorRegistry

PACKAGE = __name__
# (batch type, item index) -> process_item calls; the replay tests read it (and clear it).
CALLS: Counter[tuple[str, int]] = Counter()

TABLES = """
CREATE TABLE IF NOT EXISTS customers (email text PRIMARY KEY, name text NOT NULL);
CREATE TABLE IF NOT EXISTS customer_events (email text NOT NULL, event text NOT NULL);
CREATE TABLE IF NOT EXISTS counted (n integer NOT NULL, batch_id uuid NOT NULL);
CREATE TABLE IF NOT EXISTS hook_marks (hook text NOT NULL);
"""


class CustomerDataProcessor(BaseProcessor):
    """The seed's example: an upsert by email; ``"explode": true`` fails after a first write."""

    def validate_item(self, item, ctx):
        data = item.source_data
        self.validated = getattr(self, "validated", 0) + 1
        return data.get("email") and "@" in data["email"]

    def process_item(self, item, ctx):
        data = item.source_data
        CALLS[self.resolved_batch_type(), item.item_index] += 1
        ctx.execute("INSERT INTO customer_events (email, event) VALUES (%s, 'seen')", (data["email"],))
        if data.get("explode"):
            raise ValueError(f"cannot import {data['email']}: explode is set")
        existing = ctx.execute_one("SELECT email FROM customers WHERE email = %s", (data["email"],))
        # name None violates NOT NULL: a database error inside the item's savepoint.
        ctx.execute(
            "INSERT INTO customers (email, name) VALUES (%s, %s) ON CONFLICT (email) DO UPDATE SET name = excluded.name",
            (data["email"], data.get("name")),
        )
        if existing:
            ctx.info("updated an existing customer", email=data["email"])
        return {"target_table": "customers", "target_id": data["email"]}


class CounterProcessor(BaseProcessor):
    """Plain inserts without a key: a row counted twice would show as two rows."""

    def process_item(self, item, ctx):
        n = item.source_data["n"]
        if os.environ.get("BATCH_TEST_HANG_ON") == str(n):
            ctx.connection.execute("SELECT 1")
            time.sleep(120)
        if os.environ.get("BATCH_TEST_CRASH") and item.source_data.get("crash"):
            os.kill(os.getpid(), signal.SIGKILL)
        ctx.execute("INSERT INTO counted (n, batch_id) VALUES (%s, %s)", (n, item.batch_id))
        return {"target_table": "counted", "target_id": n}


class StartHookFailsProcessor(BaseProcessor):
    def on_batch_start(self, ctx):
        ctx.execute("INSERT INTO hook_marks (hook) VALUES ('start')")
        raise RuntimeError("reference data is missing")

    def process_item(self, item, ctx):
        ctx.execute("INSERT INTO hook_marks (hook) VALUES ('item')")


class CompleteHookFailsProcessor(BaseProcessor):
    def process_item(self, item, ctx):
        ctx.execute("INSERT INTO hook_marks (hook) VALUES ('item')")

    def on_batch_complete(self, ctx, summary):
        ctx.execute("INSERT INTO hook_marks (hook) VALUES ('complete')")
        raise RuntimeError("notification failed")


class ToggleProcessor(BaseProcessor):
    """Fails items while ``toggle_switch`` says 'off': fix the data, then reprocess."""

    def process_item(self, item, ctx):
        state = ctx.execute_one("SELECT value FROM toggle_switch")
        if state is None or state["value"] != "on":
            raise RuntimeError("the switch is off; turn it on and reprocess")
        ctx.execute("INSERT INTO counted (n, batch_id) VALUES (%s, %s)", (item.source_data["n"], item.batch_id))


class GroupedCustomerProcessor(CustomerDataProcessor):
    """CustomerDataProcessor declared replay_safe: its items run in groups under one savepoint."""

    replay_safe = True


class RunningNumberProcessor(BaseProcessor):
    """Reads what earlier items wrote (rows and one row) and writes the next number.

    Every kept item sees exactly the rows of the items kept before it, so the numbers of a batch
    are 0, 1, 2, ... in item order with no gap and no repeat. ``"fail": "after_write"`` raises
    after inserting its number; ``"fail": "null"`` inserts a NULL (a NOT NULL violation).
    """

    replay_safe = True

    def process_item(self, item, ctx):
        CALLS[self.resolved_batch_type(), item.item_index] += 1
        seen = [r["n"] for r in ctx.execute("SELECT n FROM counted WHERE batch_id = %s ORDER BY n",
                                            (item.batch_id,))]
        if seen != list(range(len(seen))):
            raise AssertionError(f"item {item.item_index} sees {seen}")
        count = ctx.execute_one("SELECT count(*) AS c FROM counted WHERE batch_id = %s", (item.batch_id,))["c"]
        assert count == len(seen)
        ctx.execute("INSERT INTO counted (n, batch_id) VALUES (%s, %s)", (count, item.batch_id))
        fail = item.source_data.get("fail")
        if fail == "after_write":
            raise RuntimeError(f"item {item.item_index} fails after writing {count}")
        if fail == "null":
            ctx.execute("INSERT INTO counted (n, batch_id) VALUES (NULL, %s)", (item.batch_id,))
        ctx.info(f"wrote {count}")
        return {"target_table": "counted", "target_id": count}


class SwallowsErrorsProcessor(BaseProcessor):
    """Catches the database error of ``"divide": 0`` and returns as if all went well."""

    def process_item(self, item, ctx):
        try:
            ctx.execute("SELECT 1 / %s", (item.source_data["divide"],))
        except Exception:
            pass
        return {"target_id": item.source_data["divide"]}


class GroupedSwallowsErrorsProcessor(SwallowsErrorsProcessor):
    replay_safe = True


class SwallowsWriteErrorsProcessor(BaseProcessor):
    """Catches the error of an INSERT (``"n": null``), which pipeline mode sends without waiting."""

    def process_item(self, item, ctx):
        CALLS[self.resolved_batch_type(), item.item_index] += 1
        try:
            ctx.execute("INSERT INTO counted (n, batch_id) VALUES (%s, %s)", (item.source_data["n"], item.batch_id))
        except psycopg.Error:
            pass
        return {"target_id": item.source_data["n"]}


class GroupedSwallowsWriteErrorsProcessor(SwallowsWriteErrorsProcessor):
    replay_safe = True


class ConnectionMidwayProcessor(BaseProcessor):
    """Writes through ctx; items with ``"direct": true`` also use ctx.connection (leaving pipeline mode)."""

    replay_safe = True

    def process_item(self, item, ctx):
        n = item.source_data.get("n")
        ctx.execute("INSERT INTO counted (n, batch_id) VALUES (%s, %s)", (n, item.batch_id))
        if item.source_data.get("direct"):
            ctx.connection.execute("INSERT INTO hook_marks (hook) VALUES (%s)", (f"direct {n}",))
        return {"target_id": n}


class CatchesInASavepointProcessor(BaseProcessor):
    """Catches the NOT NULL violation of ``"n": null`` the right way (a nested transaction on
    ctx.connection) and counts -1 instead; ``"returning": true`` reads its row back."""

    replay_safe = True

    def process_item(self, item, ctx):
        n = item.source_data.get("n")
        try:
            with ctx.connection.transaction():
                ctx.execute("INSERT INTO counted (n, batch_id) VALUES (%s, %s)", (n, item.batch_id))
        except psycopg.errors.NotNullViolation:
            ctx.warning("n is missing: counted as -1")
            ctx.execute("INSERT INTO counted (n, batch_id) VALUES (-1, %s)", (item.batch_id,))
        return {"target_id": n}


class ReturningProcessor(BaseProcessor):
    """Reads rows back: INSERT ... RETURNING, and a composed query."""

    replay_safe = True

    def process_item(self, item, ctx):
        n = item.source_data["n"]
        [row] = ctx.execute("INSERT INTO counted (n, batch_id) VALUES (%s, %s) RETURNING n * 10 AS tenfold",
                            (n, item.batch_id))
        total = ctx.execute_one(sql.SQL("SELECT sum(n) AS s FROM {} WHERE batch_id = %s").format(
            sql.Identifier("counted")), (item.batch_id,))
        return {"target_id": row["tenfold"], "sum": total["s"]}


class EveryOtherFailsProcessor(BaseProcessor):
    """Odd ``n`` insert a NULL, which the database refuses."""

    replay_safe = True

    def process_item(self, item, ctx):
        n = item.source_data["n"]
        ctx.execute("INSERT INTO counted (n, batch_id) VALUES (%s, %s)", (None if n % 2 else n, item.batch_id))


class NulMessageProcessor(BaseProcessor):
    def process_item(self, item, ctx):
        ctx.warning("about to fail with a NUL \x00 in the message")
        raise ValueError("bad byte \x00 and a lone surrogate \udcff in here")


class AlwaysRunProcessor(BaseProcessor):
    """Runs identical items again (skip_already_applied off): one row per item."""

    skip_already_applied = False

    def process_item(self, item, ctx):
        ctx.execute("INSERT INTO counted (n, batch_id) VALUES (%s, %s)", (item.source_data["n"], item.batch_id))


def make_registry() -> ProcessorRegistry:
    registry = ProcessorRegistry()
    registry.discover(PACKAGE)
    return registry


def make_manager(url: str, **kwargs) -> BatchManager:
    manager = BatchManager(url, make_registry(), **kwargs)
    with manager.connect() as conn:
        conn.execute(TABLES)
        conn.execute("CREATE TABLE IF NOT EXISTS toggle_switch (value text NOT NULL)")
    return manager
