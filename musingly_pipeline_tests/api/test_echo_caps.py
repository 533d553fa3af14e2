"""What batch listings repeat of an item is capped: its source data, its error and traceback.

A failed item's full source data (a whole file's text) used to be served back by
`GET /api/batches/{id}` and `musingly batch show --json`, and an exception message of any size
was stored whole in the item's traceback and in the log.
"""

from __future__ import annotations

import json

import psycopg

from musingly_pipeline.batches.chunk import MAX_ERROR_MESSAGE, MAX_TRACEBACK
from musingly_pipeline.cli import main
from musingly_pipeline.batches.records import ECHO_VALUE_CHARS

BIG = 1_000_000


def test_a_large_failed_item_is_summarised_not_repeated(live, monkeypatch, capsys):
    huge_email = "a@" + "x" * BIG
    batch_id = live.manager.create_batch("customer_data", [
        {"email": huge_email, "explode": True, "name": "Ann", "note": "y" * 5000},
        {"email": "bob@example.com", "name": "Bob"},
    ])
    live.manager.process_batch(batch_id)

    with live.client() as client:
        detail = client.get(f"/api/batches/{batch_id}")
    assert detail.status_code == 200
    assert len(detail.content) < 3 * ECHO_VALUE_CHARS + 2 * MAX_ERROR_MESSAGE
    [item] = detail.json()["failed_items"]
    shown = item["source_data"]
    assert shown["name"] == "Ann" and shown["explode"] is True  # small values are shown as they are
    assert "x" * ECHO_VALUE_CHARS not in shown["email"] and str(BIG + 2) in shown["email"]
    assert "omitted" in shown["note"]
    assert len(item["error_message"]) <= MAX_ERROR_MESSAGE + 100

    monkeypatch.setenv("MUSINGLY_DATABASE_URL", live.manager.database_url)
    capsys.readouterr()
    assert main(["batch", "show", str(batch_id), "--json"]) == 0
    out = capsys.readouterr().out
    assert len(out) < 10 * ECHO_VALUE_CHARS + 4 * MAX_TRACEBACK
    shown = json.loads(out)["items"][0]
    assert shown["source_data"]["name"] == "Ann" and "omitted" in shown["source_data"]["email"]
    assert len(shown["error_traceback"]) <= MAX_TRACEBACK + 100

    # the stored item keeps its data whole (a reprocess needs it); its error and log are capped
    with psycopg.connect(live.manager.database_url) as conn:
        data, trace = conn.execute(
            "SELECT source_data, error_traceback FROM import_batch_items WHERE batch_id = %s AND item_index = 0",
            (batch_id,)).fetchone()
        logged = conn.execute("SELECT max(length(details::text)) FROM import_batch_logs WHERE batch_id = %s",
                              (batch_id,)).fetchone()[0]
    assert data["email"] == huge_email
    assert len(trace) <= MAX_TRACEBACK + 100 and trace.rstrip().endswith("explode is set")
    assert logged <= MAX_TRACEBACK + 1000
