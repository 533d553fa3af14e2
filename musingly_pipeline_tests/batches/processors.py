"""Processors and endpoints the batch tests use; discoverable as ``musingly_pipeline_tests.batches.processors``.

``BATCH_TEST_HANG_ON=N`` makes CounterProcessor hang on item ``n == N`` and ``BATCH_TEST_CRASH=1``
makes it kill its own process on items with ``"crash": true``: only subprocess tests set them.
A ``gated_counter`` item with ``"gate": true`` waits until no session holds the advisory lock
``GATE_KEY``: a test holds it to keep a batch mid-run as long as it needs.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import psycopg
from psycopg import sql

from musingly_pipeline.batches import BaseEndpoint, BaseProcessor, BatchManager, BatchRefused, ProcessorRegistry

PACKAGE = __name__
GATE_KEY = 20_2026
# (batch type, item index) -> process_item calls; the replay tests read it (and clear it).
CALLS: Counter[tuple[str, int]] = Counter()

TABLES = """
CREATE TABLE IF NOT EXISTS customers (email text PRIMARY KEY, name text NOT NULL);
CREATE TABLE IF NOT EXISTS customer_events (email text NOT NULL, event text NOT NULL);
CREATE TABLE IF NOT EXISTS counted (n integer NOT NULL, batch_id uuid NOT NULL);
CREATE TABLE IF NOT EXISTS hook_marks (hook text NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (batch_id uuid NOT NULL, user_id text, status text NOT NULL,
    done integer NOT NULL, total integer NOT NULL, pid integer NOT NULL DEFAULT pg_backend_pid());
CREATE TABLE IF NOT EXISTS api_quotas (user_id text PRIMARY KEY, max_batches integer NOT NULL);
"""


class CustomerDataProcessor(BaseProcessor):
    """The seed's example: an upsert by email; ``"explode": true`` fails after a first write."""

    example_items = [{"email": "ann@example.com", "name": "Ann"}, {"email": "bob@example.com", "name": "Bob"}]

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


class GatedCounterProcessor(CounterProcessor):
    """CounterProcessor whose items with ``"gate": true`` first wait for the advisory lock GATE_KEY."""

    def process_item(self, item, ctx):
        if item.source_data.get("gate"):
            ctx.execute("SELECT pg_advisory_xact_lock(%s)", (GATE_KEY,))
        return super().process_item(item, ctx)


class GatedCounterEndpoint(BaseEndpoint):
    """A quota from ``api_quotas`` (batches a user may create; no row: no limit) and a notification
    row per completed run in ``notifications``."""

    def before_create_batch(self, request_data, ctx):
        quota = ctx.execute_one("SELECT max_batches FROM api_quotas WHERE user_id = %s", (ctx.user_id,))
        if quota is not None:
            used = ctx.execute_one("SELECT count(*) AS n FROM import_batches WHERE created_by = %s AND batch_type = %s",
                                   (ctx.user_id, ctx.batch_type))["n"]
            if used >= quota["max_batches"]:
                raise BatchRefused(f"quota exceeded: {ctx.user_id} may create {quota['max_batches']} batches",
                                   status=429)
        ctx.info("quota checked", user_id=ctx.user_id)
        return request_data

    def after_batch_complete(self, batch_id, summary, ctx):
        ctx.execute("INSERT INTO notifications (batch_id, user_id, status, done, total) VALUES (%s, %s, %s, %s, %s)",
                    (batch_id, ctx.user_id, summary.status, summary.done_items, summary.total_items))


class NotifyFailsProcessor(CounterProcessor):
    pass


class NotifyFailsEndpoint(BaseEndpoint):
    """Writes a notification, then raises: the write must not be kept, nor the batch harmed."""

    def after_batch_complete(self, batch_id, summary, ctx):
        ctx.execute("INSERT INTO notifications (batch_id, user_id, status, done, total) VALUES (%s, %s, %s, %s, %s)",
                    (batch_id, ctx.user_id, summary.status, summary.done_items, summary.total_items))
        ctx.warning("about to fail")
        raise ConnectionError("the chat service is down")


class CheckedProcessor(CounterProcessor):
    pass


class CheckedEndpoint(BaseEndpoint):
    """``metadata.mode`` picks what before_create_batch does: ``refuse`` (ValueError), ``crash``
    (KeyError after a write), ``wrong`` (returns a string), ``retype`` (changes batch_type),
    ``quiet`` (returns None); otherwise it stamps the caller into the metadata and returns the request."""

    def before_create_batch(self, request_data, ctx):
        mode = request_data["metadata"].get("mode")
        if mode == "refuse":
            raise ValueError("items of this kind are not taken on Sundays")
        if mode == "crash":
            ctx.execute("INSERT INTO hook_marks (hook) VALUES ('before_create_batch')")
            raise KeyError("customer_tier")
        if mode == "wrong":
            return "yes"
        if mode == "retype":
            return {**request_data, "batch_type": "counter"}
        if mode == "quiet":
            return None
        ctx.info("stamped", by=ctx.user_id)
        return {**request_data, "metadata": {**request_data["metadata"], "checked_by": ctx.user_id}}


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


class StartHookFailsEndpoint(GatedCounterEndpoint):
    """Would record a notification; a run whose on_batch_start fails never gets there."""


class CompleteHookFailsEndpoint(GatedCounterEndpoint):
    """Records a notification: the run whose on_batch_complete fails still gave every item an outcome."""


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
