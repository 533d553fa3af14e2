"""The pipelined chunk engine (batches/pipelined.py) gives what the plain one (batches/chunk.py) gives.

Generated batches of a ``replay_safe`` processor whose items write, read what earlier items wrote,
log, fail validation, raise, hit database errors (some caught), or leave pipeline mode through
``ctx.connection`` go through three engines: pipelined groups, plain groups and a savepoint per item.
Every item's outcome, the batch's counts, its audit log and the rows written must be the same.
"""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musingly_pipeline.batches import BaseProcessor, BatchManager, ProcessorRegistry


class ScriptedProcessor(BaseProcessor):
    """Does what an item's ``steps`` say, in order, on the table ``scripted``.

    ``write``/``returning`` insert ``n`` (returning reads back ``n + 1000``); ``read`` reads the
    count and sum of the rows written so far; ``direct`` inserts ``-n`` through ``ctx.connection``;
    ``null`` inserts a NULL and ``divide`` divides by zero (database errors); ``swallow`` inserts a
    NULL and catches the error; ``raise`` raises; ``info``/``warning`` log; ``invalid`` fails
    validation. The result holds what the item read.
    """

    replay_safe = True

    def validate_item(self, item, ctx):
        return "invalid" not in item.source_data["steps"]

    def process_item(self, item, ctx):
        n, seen = item.source_data["n"], []
        for step in item.source_data["steps"]:
            if step == "write":
                ctx.execute("INSERT INTO scripted (n) VALUES (%s)", (n,))
            elif step == "returning":
                seen.append(ctx.execute("INSERT INTO scripted (n) VALUES (%s) RETURNING n + 1000 AS m", (n,))[0]["m"])
            elif step == "read":
                row = ctx.execute_one("SELECT count(*) AS c, coalesce(sum(n), 0) AS s FROM scripted")
                seen.append([row["c"], row["s"]])
            elif step == "direct":
                ctx.connection.execute("INSERT INTO scripted (n) VALUES (%s)", (-n,))
            elif step == "null":
                ctx.execute("INSERT INTO scripted (n) VALUES (NULL)")
            elif step == "divide":
                ctx.execute("SELECT 1 / %s AS x", (0,))
            elif step == "swallow":
                try:
                    ctx.execute("INSERT INTO scripted (n) VALUES (NULL)")
                except psycopg.Error:
                    pass
            elif step == "raise":
                raise RuntimeError(f"item {item.item_index} raises as its steps say")
            elif step in ("info", "warning"):
                getattr(ctx, step)(f"{step} from item {item.item_index}", n=n)
        return {"target_table": "scripted", "target_id": n, "seen": seen}


REGISTRY = ProcessorRegistry()
REGISTRY.register(ScriptedProcessor)

STEPS = st.lists(st.sampled_from(["write"] * 4 + ["read"] * 2 + [
    "returning", "info", "warning", "null", "divide", "swallow", "raise", "invalid"]), max_size=4)
# "direct" (ctx.connection) ends pipeline mode for the rest of the run: drawn in a test of its own.
STEPS_WITH_DIRECT = st.lists(st.sampled_from(["write", "read", "null", "direct"]), max_size=3)
ITEMS = st.lists(st.fixed_dictionaries({"n": st.integers(0, 5), "steps": STEPS}), min_size=1, max_size=40)
ENGINES = {"pipelined": {"pipelined": True}, "grouped": {"pipelined": False},
           "per item": {"pipelined": False, "group_size": 1}}


@pytest.fixture(scope="module")
def databases(make_database):
    """One migrated database per engine, with the table ``scripted``."""
    urls = {name: make_database() for name in ENGINES}
    for url in urls.values():
        with BatchManager(url, REGISTRY).connect() as conn:
            conn.execute("CREATE TABLE scripted (n integer NOT NULL)")
    return urls


def run(url: str, items: list[dict], chunk_size: int, group_size: int, engine: dict) -> tuple:
    """Process ``items`` on a clean slate; return what a user sees of the batch, without ids and times."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE scripted, import_batch_item_keys")
    manager = BatchManager(url, REGISTRY, chunk_size=chunk_size, **{"group_size": group_size, **engine})
    summary = manager.process_batch(manager.create_batch("scripted", items))
    records = manager.get_batch_items(summary.batch_id)
    index = {i.id: i.item_index for i in records}
    outcomes = [(i.item_index, i.status, i.attempts, i.error_code, i.error_message, i.error_traceback,
                 i.target_table, i.target_id, i.result, index.get(i.duplicate_of)) for i in records]
    logs = [(index.get(line.item_id), line.level, line.message, line.details)
            for line in manager.get_batch_logs(summary.batch_id)]
    counts = (summary.status, summary.completed_items, summary.failed_items, summary.skipped_items,
              summary.pending_items, summary.error_message)
    with psycopg.connect(url) as conn:
        written = conn.execute("SELECT n FROM scripted ORDER BY n").fetchall()
    return anonymous((outcomes, counts, logs, written), str(summary.batch_id))


def anonymous(value, batch_id: str):
    """``value`` with the batch id, which messages name, written as ``<batch>``."""
    if isinstance(value, str):
        return value.replace(batch_id, "<batch>")
    if isinstance(value, (list, tuple)):
        return type(value)(anonymous(v, batch_id) for v in value)
    if isinstance(value, dict):
        return {k: anonymous(v, batch_id) for k, v in value.items()}
    return value


def check(databases, items, chunk_size, group_size):
    seen = {name: run(databases[name], items, chunk_size, group_size, engine) for name, engine in ENGINES.items()}
    reference = seen["per item"]
    for name in ("grouped", "pipelined"):
        for part, mine, theirs in zip(("outcomes", "counts", "logs", "rows"), seen[name], reference):
            assert mine == theirs, f"{name} differs from a savepoint per item in its {part}"


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(items=ITEMS, chunk_size=st.sampled_from([4, 9, 500]), group_size=st.sampled_from([2, 3, 5, 24]))
def test_pipelined_plain_grouped_and_per_item_engines_agree(databases, items, chunk_size, group_size):
    check(databases, items, chunk_size, group_size)


@settings(max_examples=10, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.fixed_dictionaries({"n": st.integers(0, 5), "steps": STEPS_WITH_DIRECT}),
                      min_size=1, max_size=30),
       group_size=st.sampled_from([2, 5, 24]))
def test_the_engines_agree_when_an_item_leaves_pipeline_mode(databases, items, group_size):
    check(databases, items, 500, group_size)
