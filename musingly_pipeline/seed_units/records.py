"""How one seed record (a lesson, a flow run, ...) becomes one table row, and back, losslessly.

A row holds the record's fields as typed columns (text, bigint, double precision, boolean,
timestamptz, json) plus one ``spelling`` json column: what the typed columns cannot say about how
the file wrote the record, so export can write it again byte for byte:

* ``absent``: optional fields the record did not have (``null`` and absent both are SQL NULL);
* ``null``: nested parts (``flow_run``, ``step_runs``, ...) written as ``null``;
* ``time``: per timestamp, its style: separator, fraction digits and suffix (``T0Z``,
  ``T0+00:00``, ``T0`` for no offset, ``T3Z``), or ``=`` and the exact text when no style
  reproduces it;
* ``int``: number fields written as integers (``100`` rather than ``100.0``).

``spelling`` is SQL NULL when there is nothing to say. Free-form objects, learning objectives and
lesson packages go to ``json`` columns, which keep their text (key order, duplicate-free objects,
number spelling) as the import wrote it, unlike ``jsonb``.
"""

from __future__ import annotations

import json
import re
import types
import typing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel

from musingly_pipeline.seed_units.contracts import ColumnKind

UTC = timezone.utc
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ])\d{2}:\d{2}:\d{2}(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})?"
)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text, int, number, bool, time, json


@dataclass(frozen=True)
class RecordShape:
    """The fields of one record model, in the document's order, split into columns and nested parts."""

    model: type[BaseModel]
    fields: tuple[str, ...]
    columns: tuple[Column, ...]
    nested: frozenset[str]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _kind(annotation: Any) -> str | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, ColumnKind):
                return meta.name
        return _kind(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                found = _kind(arg)
                if found:
                    return found
    return None


def shape_of(model: type[BaseModel]) -> RecordShape:
    columns: list[Column] = []
    nested: set[str] = set()
    for name, info in model.model_fields.items():
        kind = next((m.name for m in info.metadata if isinstance(m, ColumnKind)), None) or _kind(info.annotation)
        if kind is None:
            nested.add(name)
        else:
            columns.append(Column(name, kind))
    return RecordShape(model, tuple(model.model_fields), tuple(columns), frozenset(nested))


def dump_json(value: Any) -> str:
    """Compact JSON text for a ``json`` column: key order and number spelling as parsed."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def timestamp_in(text: str) -> tuple[datetime, str]:
    """The instant (no offset means UTC) and the style that writes it back as ``text``."""
    parsed = datetime.fromisoformat(text)
    value = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    match = _TIMESTAMP.fullmatch(text)
    if match:
        style = f"{match[1]}{len(match[2] or '')}{match[3] or ''}"
        if timestamp_out(value, style) == text:
            return value, style
    return value, "=" + text


def timestamp_out(value: datetime, style: str) -> str:
    """``value`` written in ``style`` (see the module docstring)."""
    if style.startswith("="):
        return style[1:]
    separator, digits, suffix = style[0], int(style[1]), style[2:]
    if suffix in ("", "Z"):
        local = value.astimezone(UTC)
    else:
        sign = -1 if suffix[0] == "-" else 1
        offset = timedelta(hours=int(suffix[1:3]), minutes=int(suffix[4:6]))
        local = value.astimezone(timezone(sign * offset))
    text = (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}{separator}"
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    )
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    return text + suffix


def to_row(shape: RecordShape, record: dict[str, Any]) -> tuple[list[Any], dict[str, Any] | None]:
    """The column values (in ``shape.columns`` order) and the spelling of one parsed record."""
    values: list[Any] = []
    absent: list[str] = []
    nulls: list[str] = []
    times: dict[str, str] = {}
    ints: list[str] = []
    for column in shape.columns:
        name = column.name
        if name not in record:
            absent.append(name)
            values.append(None)
            continue
        value = record[name]
        if value is not None:
            kind = column.kind
            if kind == "time":
                value, times[name] = timestamp_in(value)
            elif kind == "json":
                value = dump_json(value)
            elif kind == "number":
                if isinstance(value, int):
                    ints.append(name)
                value = float(value)
        values.append(value)
    for name in shape.fields:
        if name in shape.nested:
            if name not in record:
                absent.append(name)
            elif record[name] is None:
                nulls.append(name)
    return values, make_spelling(absent, nulls, times, ints)


def make_spelling(absent, nulls, times, ints) -> dict[str, Any] | None:
    spelling: dict[str, Any] = {}
    if absent:
        spelling["absent"] = absent
    if nulls:
        spelling["null"] = nulls
    if times:
        spelling["time"] = times
    if ints:
        spelling["int"] = ints
    return spelling or None


def from_row(
    shape: RecordShape,
    row: dict[str, Any],
    spelling: dict[str, Any] | None,
    nested: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record as the file wrote it: fields in the document's order, absent ones left out.

    ``row`` maps column names to values as read from PostgreSQL (json columns already parsed);
    ``nested`` gives the nested parts (``lessons``, ``flow_run``, ...) already rebuilt.
    """
    spelling = spelling or {}
    absent = set(spelling.get("absent", ()))
    nulls = set(spelling.get("null", ()))
    times = spelling.get("time", {})
    ints = set(spelling.get("int", ()))
    kinds = {c.name: c.kind for c in shape.columns}
    nested = nested or {}
    out: dict[str, Any] = {}
    for name in shape.fields:
        if name in absent:
            continue
        if name in shape.nested:
            out[name] = None if name in nulls else nested.get(name)
            continue
        value = row[name]
        if value is not None:
            kind = kinds[name]
            if kind == "time":
                value = timestamp_out(value, times[name])
            elif kind == "number" and name in ints:
                value = int(value)
        out[name] = value
    return out
