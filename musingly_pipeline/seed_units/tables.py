"""Seed units in PostgreSQL: import one validated unit (or ``users.json``), export units back.

Import works inside a connection and transaction the caller owns (a savepoint per unit in
``musingly seed import``; a batch item's transaction in the import-batch framework): it never
commits and never prints. A unit is upserted by id, so re-importing a fixed unit updates it in place;
everything the unit file holds (lessons, flow runs, step runs, LLM requests, resources,
conversations, messages) is replaced by what the file says now. Child rows go in with COPY.

Missing ids are filled in on import: a unit without ``id`` gets a random UUID; a record inside a
unit without one gets a UUID derived from the unit's id and the record's place in the file
(``lessons[2].step_runs[0]``), so importing the same id-less records again updates them in place. A
lesson's ``flow_run_id``, a step run's ``flow_run_id`` and a message's ``conversation_id``, when
absent, take the id of the record they sit in. Filled-in ids are data from then on: export writes
them.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from musingly_core.report import error

from musingly_pipeline.seed_units.contracts import (
    CONVERSATION_GROUPS,
    Conversation,
    FlowRun,
    LearningConversations,
    Lesson,
    LLMRequest,
    Message,
    Resource,
    StepRun,
    Unit,
    User,
)
from musingly_pipeline.seed_units.errors import SeedImportFailed
from musingly_pipeline.seed_units.records import RecordShape, from_row, make_spelling, shape_of, to_row
from musingly_pipeline.seed_units.validation import KnownUsers, ParsedUnit, UsersValidation

# Namespace of the ids derived for records that have none: uuid5(namespace, "unit-id/path").
SEED_ID_NAMESPACE = uuid.UUID("6d990f24-23d7-5b03-8a1e-5eed0a7a0001")
EXPORT_CHUNK = 100

USER = shape_of(User)
UNIT = shape_of(Unit)
LESSON = shape_of(Lesson)
FLOW_RUN = shape_of(FlowRun)
STEP_RUN = shape_of(StepRun)
LLM_REQUEST = shape_of(LLMRequest)
RESOURCE = shape_of(Resource)
CONVERSATION = shape_of(Conversation)
MESSAGE = shape_of(Message)
CONVERSATIONS = shape_of(LearningConversations)


@dataclass(frozen=True)
class Table:
    """A seed table: its record shape and the columns that place a row (owner, position)."""

    name: str
    shape: RecordShape
    placement: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.placement + self.shape.column_names + ("spelling",)


# In insertion order (foreign keys point backwards in this list).
FLOW_RUNS = Table("flow_runs", FLOW_RUN, ("unit_id",))
LESSONS = Table("lessons", LESSON, ("unit_id", "position"))
LLM_REQUESTS = Table("llm_requests", LLM_REQUEST, ("lesson_id", "position"))
STEP_RUNS = Table("step_runs", STEP_RUN, ("lesson_id", "position"))
RESOURCES = Table("resources", RESOURCE, ("unit_id", "position"))
CONVERSATION_ROWS = Table("conversations", CONVERSATION, ("unit_id", "conversation_group", "position"))
MESSAGES = Table("conversation_messages", MESSAGE, ("position",))
CHILD_TABLES = (FLOW_RUNS, LESSONS, LLM_REQUESTS, STEP_RUNS, RESOURCES, CONVERSATION_ROWS, MESSAGES)
UNITS = Table("units", UNIT, ())
USERS = Table("users", USER, ("position",))


@dataclass(frozen=True)
class ImportedUnit:
    """What importing one unit did: its id, whether it was new, and the rows per table."""

    id: str
    title: str
    created: bool
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportedUnit:
    id: str
    title: str
    document: dict[str, Any]


def child_id(unit_id: str, path: str) -> str:
    return str(uuid.uuid5(SEED_ID_NAMESPACE, f"{unit_id}/{path}"))


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def known_users(conn: psycopg.Connection) -> KnownUsers:
    """The users in the database (what a unit's ``owner_key`` and ``user_id`` may name)."""
    with conn.cursor(row_factory=tuple_row) as cursor:  # whatever rows the caller's connection makes
        return KnownUsers.of(cursor.execute("SELECT id, key FROM users").fetchall())


def import_users(conn: psycopg.Connection, users: UsersValidation) -> int:
    """Upsert the users of a validated ``users.json`` by id; returns how many."""
    if users.document is None:
        raise ValueError("import_users needs a users.json that passed validation")
    columns = USERS.columns
    statement = sql.SQL(
        "INSERT INTO users ({cols}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET {updates}"
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        updates=sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in columns if c != "id"
        ),
    )
    rows = []
    for position, record in enumerate(users.document["users"]):
        values, spelling = to_row(USER, record)
        rows.append([position, *values, _json(spelling)])
    try:
        with conn.cursor() as cursor:
            cursor.executemany(statement, rows)
    except psycopg.errors.UniqueViolation as exc:
        raise SeedImportFailed([error(
            "SEED_ID_CONFLICT", "users",
            f"{_detail(exc)}: another user in the database has this key or email; change it in users.json",
        )]) from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        raise SeedImportFailed([error("SEED_DATABASE_REJECTED", "users", f"{_detail(exc)}")]) from exc
    return len(rows)


def import_unit(conn: psycopg.Connection, unit: ParsedUnit) -> ImportedUnit:
    """Write one validated unit inside the caller's transaction; raise :class:`SeedImportFailed`."""
    document = dict(unit.document)
    if document.get("id") is None:
        document["id"] = str(uuid.uuid4())
    unit_id: str = document["id"]
    rows = _unit_rows(unit_id, document)
    values, spelling = to_row(UNIT, document)
    spelling = _with_group_spelling(spelling, document)
    try:
        created = _upsert_unit(conn, values, spelling)
        with conn.cursor() as cursor:
            if not created:
                for table in (FLOW_RUNS, LESSONS, RESOURCES, CONVERSATION_ROWS):
                    cursor.execute(
                        sql.SQL("DELETE FROM {} WHERE unit_id = %s").format(sql.Identifier(table.name)), (unit_id,)
                    )
            for table in CHILD_TABLES:
                if rows[table.name]:
                    _copy(cursor, table, rows[table.name])
    except psycopg.errors.UniqueViolation as exc:
        raise SeedImportFailed([error(
            "SEED_ID_CONFLICT", "",
            f"{_detail(exc)} in {exc.diag.table_name}: the id already belongs to a record of another unit; "
            "give the record its own id (ids are unique across units)",
        )]) from exc
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError, UnicodeEncodeError) as exc:
        reason = _detail(exc) if isinstance(exc, psycopg.Error) else str(exc)
        raise SeedImportFailed([error(
            "SEED_DATABASE_REJECTED", "", f"PostgreSQL refused the unit: {reason}; fix the value it names",
        )]) from exc
    counts = {"lessons": len(rows["lessons"])}
    counts.update({t.name: len(rows[t.name]) for t in CHILD_TABLES if t.name != "lessons"})
    return ImportedUnit(id=unit_id, title=document["title"], created=created, counts=counts)


def _detail(exc: psycopg.Error) -> str:
    detail = exc.diag.message_detail or exc.diag.message_primary or str(exc)
    return detail.rstrip(".")


def _upsert_unit(conn: psycopg.Connection, values: list[Any], spelling: dict | None) -> bool:
    columns = UNITS.columns
    statement = sql.SQL(
        "INSERT INTO units ({cols}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET {updates} "
        "RETURNING (xmax = 0)"
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        updates=sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in columns if c != "id"
        ),
    )
    with conn.cursor(row_factory=tuple_row) as cursor:
        return bool(cursor.execute(statement, [*values, _json(spelling)]).fetchone()[0])


def _copy(cursor: psycopg.Cursor, table: Table, rows: list[list[Any]]) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, table.columns)),
    )
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _row(table: Table, placement: list[Any], record: dict[str, Any]) -> list[Any]:
    values, spelling = to_row(table.shape, record)
    return [*placement, *values, _json(spelling)]


def _with_group_spelling(spelling: dict | None, document: dict[str, Any]) -> dict | None:
    """Add whether ``learning_conversations.coach``/``.assistant`` were absent or null."""
    groups = document.get("learning_conversations")
    if not isinstance(groups, dict):
        return spelling
    _, inner = to_row(CONVERSATIONS, groups)
    if inner is None:
        return spelling
    spelling = dict(spelling or {})
    for key in ("absent", "null"):
        if key in inner:
            spelling[key] = [*spelling.get(key, ()), *(f"learning_conversations.{n}" for n in inner[key])]
    return make_spelling(spelling.get("absent"), spelling.get("null"), spelling.get("time"), spelling.get("int"))


def _unit_rows(unit_id: str, document: dict[str, Any]) -> dict[str, list[list[Any]]]:
    rows: dict[str, list[list[Any]]] = {t.name: [] for t in CHILD_TABLES}
    for i, source in enumerate(document.get("lessons") or ()):
        at = f"lessons[{i}]"
        lesson = dict(source)
        if lesson.get("id") is None:
            lesson["id"] = child_id(unit_id, at)
        flow_run = lesson.get("flow_run")
        if isinstance(flow_run, dict):
            flow_run = dict(flow_run)
            if flow_run.get("id") is None:
                flow_run["id"] = lesson.get("flow_run_id") or child_id(unit_id, f"{at}.flow_run")
            if "flow_run_id" not in lesson:
                lesson["flow_run_id"] = flow_run["id"]
            rows["flow_runs"].append(_row(FLOW_RUNS, [unit_id], flow_run))
        rows["lessons"].append(_row(LESSONS, [unit_id, i], lesson))
        for j, request in enumerate(lesson.get("llm_requests") or ()):
            if request.get("id") is None:
                request = {**request, "id": child_id(unit_id, f"{at}.llm_requests[{j}]")}
            rows["llm_requests"].append(_row(LLM_REQUESTS, [lesson["id"], j], request))
        for j, step in enumerate(lesson.get("step_runs") or ()):
            step = dict(step)
            if step.get("id") is None:
                step["id"] = child_id(unit_id, f"{at}.step_runs[{j}]")
            if "flow_run_id" not in step and lesson.get("flow_run_id") is not None:
                step["flow_run_id"] = lesson["flow_run_id"]
            rows["step_runs"].append(_row(STEP_RUNS, [lesson["id"], j], step))
    for j, resource in enumerate(document.get("resources") or ()):
        if resource.get("id") is None:
            resource = {**resource, "id": child_id(unit_id, f"resources[{j}]")}
        rows["resources"].append(_row(RESOURCES, [unit_id, j], resource))
    groups = document.get("learning_conversations") or {}
    for group in CONVERSATION_GROUPS:
        for k, conversation in enumerate(groups.get(group) or ()):
            at = f"learning_conversations.{group}[{k}]"
            if conversation.get("id") is None:
                conversation = {**conversation, "id": child_id(unit_id, at)}
            rows["conversations"].append(_row(CONVERSATION_ROWS, [unit_id, group, k], conversation))
            for m, message in enumerate(conversation.get("messages") or ()):
                if "conversation_id" not in message:
                    message = {**message, "conversation_id": conversation["id"]}
                rows["conversation_messages"].append(_row(MESSAGES, [m], message))
    return rows


def unit_titles(conn: psycopg.Connection, unit_ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """``(id, title)`` of the given units (all when ``None``), ordered by title then id."""
    if unit_ids is None:
        return conn.execute("SELECT id, title FROM units ORDER BY title, id").fetchall()
    return conn.execute(
        "SELECT id, title FROM units WHERE id = ANY(%s) ORDER BY title, id", (list(unit_ids),)
    ).fetchall()


def _select(table: Table, where: sql.Composable, order: sql.Composable, alias: str = "t") -> sql.Composed:
    return sql.SQL("SELECT {cols} FROM {table} {alias} {where} ORDER BY {order}").format(
        cols=sql.SQL(", ").join(sql.Identifier(alias, c) for c in table.columns),
        table=sql.Identifier(table.name), alias=sql.Identifier(alias), where=where, order=order,
    )


def export_units(conn: psycopg.Connection, unit_ids: Sequence[str], chunk: int = EXPORT_CHUNK) -> Iterator[ExportedUnit]:
    """The unit documents, in the order of ``unit_ids``, read ``chunk`` units at a time."""
    for start in range(0, len(unit_ids), chunk):
        ids = list(unit_ids[start:start + chunk])
        yield from _export_chunk(conn, ids)


def _export_chunk(conn: psycopg.Connection, ids: list[str]) -> Iterator[ExportedUnit]:
    by_unit = sql.SQL("WHERE t.unit_id = ANY(%s)")
    by_lesson = sql.SQL("JOIN lessons l ON l.id = t.lesson_id WHERE l.unit_id = ANY(%s)")
    with conn.cursor(row_factory=dict_row) as cursor:
        def fetch(query: sql.Composed) -> list[dict[str, Any]]:
            return cursor.execute(query, (ids,)).fetchall()

        units = {r["id"]: r for r in fetch(_select(UNITS, sql.SQL("WHERE t.id = ANY(%s)"), sql.SQL("t.id")))}
        flow_runs = {r["id"]: r for r in fetch(_select(FLOW_RUNS, by_unit, sql.SQL("t.id")))}
        lessons = _group(fetch(_select(LESSONS, by_unit, sql.SQL("t.unit_id, t.position"))), "unit_id")
        requests = _group(fetch(_select(LLM_REQUESTS, by_lesson, sql.SQL("t.lesson_id, t.position"))), "lesson_id")
        steps = _group(fetch(_select(STEP_RUNS, by_lesson, sql.SQL("t.lesson_id, t.position"))), "lesson_id")
        resources = _group(fetch(_select(RESOURCES, by_unit, sql.SQL("t.unit_id, t.position"))), "unit_id")
        conversations = _group(
            fetch(_select(CONVERSATION_ROWS, by_unit, sql.SQL("t.unit_id, t.conversation_group, t.position"))),
            "unit_id",
        )
        messages = _group(fetch(_select(
            MESSAGES, sql.SQL("JOIN conversations c ON c.id = t.conversation_id WHERE c.unit_id = ANY(%s)"),
            sql.SQL("t.conversation_id, t.position"),
        )), "conversation_id")

    for unit_id in ids:
        unit = units.get(unit_id)
        if unit is None:
            continue
        lesson_documents = []
        for lesson in lessons.get(unit_id, ()):
            flow_run = flow_runs.get(lesson["flow_run_id"])
            lesson_documents.append(from_row(LESSON, lesson, lesson["spelling"], {
                "flow_run": None if flow_run is None else from_row(FLOW_RUN, flow_run, flow_run["spelling"]),
                "step_runs": [from_row(STEP_RUN, r, r["spelling"]) for r in steps.get(lesson["id"], ())],
                "llm_requests": [from_row(LLM_REQUEST, r, r["spelling"]) for r in requests.get(lesson["id"], ())],
            }))
        spelling = unit["spelling"] or {}
        grouped: dict[str, list] = {g: [] for g in CONVERSATION_GROUPS}
        for conversation in conversations.get(unit_id, ()):
            grouped[conversation["conversation_group"]].append(from_row(
                CONVERSATION, conversation, conversation["spelling"],
                {"messages": [from_row(MESSAGE, m, m["spelling"]) for m in messages.get(conversation["id"], ())]},
            ))
        absent, nulls = set(spelling.get("absent", ())), set(spelling.get("null", ()))
        groups: dict[str, Any] = {}
        for group in CONVERSATION_GROUPS:
            name = f"learning_conversations.{group}"
            if name not in absent:
                groups[group] = None if name in nulls else grouped[group]
        document = from_row(UNIT, unit, spelling, {
            "lessons": lesson_documents,
            "resources": [from_row(RESOURCE, r, r["spelling"]) for r in resources.get(unit_id, ())],
            "learning_conversations": groups,
        })
        yield ExportedUnit(id=unit_id, title=unit["title"], document=document)


def _group(rows: list[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    grouped: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row[key]].append(row)
    return grouped


def export_users(conn: psycopg.Connection) -> dict[str, Any]:
    """``users.json``: every user, in the order of the last imported ``users.json``."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(_select(USERS, sql.SQL(""), sql.SQL("t.position, t.id"))).fetchall()
    return {"users": [from_row(USER, r, r["spelling"]) for r in rows]}
