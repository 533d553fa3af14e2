"""The PostgreSQL backend: the same interface as the file store, for deployments where several machines write.

Tables (``0001_baseline.sql``, its signals section): ``signal_events`` (one row per envelope, partitioned by UTC
day, partitions created on demand by ``signal_events_partition(day)``), ``signal_event_ids`` (the
global id registry that makes writes idempotent across partitions and writers) and
``signal_documents`` (checkpoints and snapshots).

A batch is one transaction: COPY into a temporary table, claim the new ids in ``signal_event_ids``
(``ON CONFLICT DO NOTHING``, which also serialises two writers racing for one id), insert only the
claimed rows. With ``on_duplicate="raise"`` the transaction rolls back, so nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from musingly_pipeline.signals.envelopes import ENVELOPE_TYPES, Envelope, EventKind
from musingly_pipeline.signals.query import RESOLVED_ENTITY_PAYLOAD_TYPES, EventQuery
from musingly_pipeline.signals.errors import DuplicateEventError
from musingly_pipeline.signals.store import DuplicatePolicy, EventStore, PartitionRead, WriteResult
from musingly_pipeline.storage.database import connect, redact

_INCOMING = """
CREATE TEMPORARY TABLE signal_incoming (
    pos int, kind text, event_id text, day date, ts timestamptz, source text, event_type text, record jsonb
) ON COMMIT DROP
"""


class PostgresStore(EventStore):
    """Signals and emissions in PostgreSQL; ``url`` must point at a migrated database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn = None

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)!r})"

    @property
    def conn(self):
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url, autocommit=True)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def days(self, kind: EventKind = "signal") -> list[date]:
        rows = self.conn.execute("SELECT DISTINCT day FROM signal_event_ids WHERE kind = %s ORDER BY day", (kind,))
        return [r[0] for r in rows]

    # -- writes --------------------------------------------------------------------------------------
    def _append(self, kind: EventKind, envelopes: Sequence[Envelope], on_duplicate: DuplicatePolicy) -> list[WriteResult]:
        conn = self.conn
        days = sorted({e.timestamp.date() for e in envelopes})
        with conn.transaction():  # partitions first, committed on their own, so writers do not queue on DDL
            for day in days:
                conn.execute("SELECT signal_events_partition(%s)", (day,))
        with conn.transaction():
            with conn.cursor() as cur:
                cur.execute(_INCOMING)
                with cur.copy("COPY signal_incoming (pos, kind, event_id, day, ts, source, event_type, record) FROM STDIN") as copy:
                    for pos, e in enumerate(envelopes):
                        copy.write_row((pos, kind, e.event_id, e.timestamp.date(), e.timestamp, e.source, e.event_type, e.to_line()))
                claimed = cur.execute(
                    """
                    INSERT INTO signal_event_ids (kind, event_id, day)
                    SELECT DISTINCT ON (event_id) kind, event_id, day FROM signal_incoming ORDER BY event_id, pos
                    ON CONFLICT DO NOTHING
                    RETURNING event_id
                    """
                ).fetchall()
                new_ids = {r[0] for r in claimed}
                if on_duplicate == "raise" and len(new_ids) < len(envelopes):
                    dup = next(e.event_id for e in envelopes if e.event_id not in new_ids)
                    raise DuplicateEventError(
                        f"{len(envelopes) - len(new_ids)} {kind} id(s) already stored, e.g. {dup!r}; nothing of this "
                        "batch was written (use on_duplicate='return_existing' to skip them)"
                    )
                cur.execute(
                    """
                    INSERT INTO signal_events (kind, day, event_id, ts, source, event_type, record)
                    SELECT i.kind, i.day, i.event_id, i.ts, i.source, i.event_type, i.record
                    FROM signal_incoming i
                    WHERE i.event_id = ANY(%s)
                      AND i.pos = (SELECT min(pos) FROM signal_incoming j WHERE j.event_id = i.event_id)
                    ORDER BY i.pos
                    """,
                    (list(new_ids),),
                )
                existing = dict(cur.execute(
                    "SELECT event_id, day FROM signal_event_ids WHERE kind = %s AND event_id = ANY(%s)",
                    (kind, [e.event_id for e in envelopes if e.event_id not in new_ids]),
                ).fetchall())
        results = []
        first: set[str] = set()
        for e in envelopes:
            written = e.event_id in new_ids and e.event_id not in first
            first.add(e.event_id)
            day = e.timestamp.date() if written else existing.get(e.event_id, e.timestamp.date())
            results.append(WriteResult(e.event_id, day, written, f"signal_events/{kind}/{day.isoformat()}"))
        return results

    # -- reads ---------------------------------------------------------------------------------------
    def _scan(self, query: EventQuery, limit: int | None = None) -> Iterator[Envelope]:
        where = ["kind = %s", "day BETWEEN %s AND %s", "ts BETWEEN %s AND %s"]
        params: list[Any] = [query.kind, query.first_day, query.last_day, query.start, query.end]
        if query.sources is not None:
            where.append("source = ANY(%s)")
            params.append(sorted(query.sources))
        if query.source_prefix is not None:
            where.append("(source = %s OR starts_with(source, %s))")
            params += [query.source_prefix, query.source_prefix + "."]
        if query.types is not None:
            where.append("event_type = ANY(%s)")
            params.append(sorted(query.types))
        if query.entity_ref is not None:
            where.append("record -> 'entity_refs' @> %s")
            params.append(Jsonb([query.entity_ref.model_dump(mode="json")]))
        if query.payload_equals:
            where.append("jsonb_typeof(record -> 'payload') = 'object' AND record -> 'payload' @> %s")
            params.append(Jsonb(dict(query.payload_equals)))
        if query.resolved is not None:
            where.append("(jsonb_array_length(record -> 'entity_refs') > 0 OR event_type = ANY(%s)) = %s")
            params += [sorted(RESOLVED_ENTITY_PAYLOAD_TYPES), query.resolved]
        order = "ts DESC, event_id DESC" if query.newest_first else "ts, seq"
        statement = sql.SQL("SELECT record::text FROM signal_events WHERE {} ORDER BY {}").format(
            sql.SQL(" AND ").join(sql.SQL(w) for w in where), sql.SQL(order))
        if limit is not None:
            statement += sql.SQL(" LIMIT %s")
            params.append(limit)
        model = ENVELOPE_TYPES[query.kind]
        with self.conn.cursor() as cur:
            cur.execute(statement, params)
            while rows := cur.fetchmany(2000):
                for (text,) in rows:
                    yield model.model_validate_json(text)

    def read_partition(self, kind: EventKind, day: date, query: EventQuery | None = None, *, warn: bool = True) -> PartitionRead:
        result = PartitionRead(f"signal_events/{kind}/{day.isoformat()}")
        model = ENVELOPE_TYPES[kind]
        rows = self.conn.execute(
            "SELECT record::text FROM signal_events WHERE kind = %s AND day = %s ORDER BY seq", (kind, day)
        ).fetchall()
        result.envelopes = [model.model_validate_json(r[0]) for r in rows]
        result.lines = len(rows)
        return result

    # -- documents -----------------------------------------------------------------------------------
    def _put_document(self, folder: str, name: str, document: dict[str, Any]) -> str:
        self.conn.execute(
            """
            INSERT INTO signal_documents (folder, name, body) VALUES (%s, %s, %s)
            ON CONFLICT (folder, name) DO UPDATE SET body = EXCLUDED.body, written_at = now()
            """,
            (folder, name, Jsonb(document)),
        )
        return f"signal_documents/{folder}/{name}"

    def _get_document(self, folder: str, name: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT body::text FROM signal_documents WHERE folder = %s AND name = %s", (folder, name)).fetchone()
        return json.loads(row[0]) if row else None

    def _list_documents(self, folder: str, prefix: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT name FROM signal_documents WHERE folder = %s AND starts_with(name, %s) ORDER BY name", (folder, prefix)
        )
        return [r[0] for r in rows]
