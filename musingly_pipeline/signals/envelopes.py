"""Signal and emission envelopes: the record format of metaspn-schemas, as frozen pydantic models.

One line of ``store/signals/YYYY-MM-DD.jsonl`` is one :class:`SignalEnvelope`; one line of
``store/emissions/YYYY-MM-DD.jsonl`` is one :class:`EmissionEnvelope`. The JSON is the same as
``metaspn_schemas.SignalEnvelope.to_dict()`` (same keys, UTC timestamps ending in ``Z``), so a line
written here is read by metaspn-store and the other way round. Fields are declared in alphabetical
order so a serialised line has sorted keys, like metaspn-store's ``json.dumps(sort_keys=True)``.

Stricter than metaspn-schemas where it protects the store: an id must be non-empty, a timestamp
must carry a UTC offset (a naive one is refused, not guessed), and a payload must be plain JSON.
"""

from __future__ import annotations

import functools
import json
import math
import operator
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from musingly_core.report import Issue, error, format_path

from musingly_pipeline.signals.errors import InvalidEnvelope

DEFAULT_SCHEMA_VERSION = "0.8"

EventKind = Literal["signal", "emission"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EntityRef(_Frozen):
    """A reference to an entity (a person, a project, a snapshot) that a signal is about."""

    label: str | None = None
    platform: str | None = None
    ref_type: str
    schema_version: str = DEFAULT_SCHEMA_VERSION
    value: str

    @property
    def key(self) -> str:
        """``ref_type:platform:value``, the grouping key metaspn-store uses for 'unique by entity'."""
        return f"{self.ref_type}:{self.platform}:{self.value}"


class TraceContext(_Frozen):
    caused_by: tuple[str, ...] = ()
    metadata: dict[str, str] = Field(default_factory=dict)
    privacy_mode: bool = False
    provenance: str | None = None
    redactions: tuple[str, ...] = ()
    schema_version: str = DEFAULT_SCHEMA_VERSION
    trace_id: str


def _check_json(value: Any, depth: int = 0) -> None:
    """Raise ValueError unless ``value`` is plain JSON (finite numbers, string keys)."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"payload holds {value!r}, which JSON cannot represent")
        return
    if depth > 64:
        raise ValueError("payload nests deeper than 64 levels")
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_json(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"payload has a non-string key {key!r}; JSON object keys are strings")
            _check_json(item, depth + 1)
        return
    raise ValueError(f"payload holds a {type(value).__name__}, which is not JSON; convert it first")


class _Envelope(_Frozen):
    @field_validator("timestamp", check_fields=False)
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_validator("payload", check_fields=False)
    @classmethod
    def _json_payload(cls, value: Any, info: ValidationInfo) -> Any:
        if not (info.context and info.context.get("stored")):  # a stored line was checked when written
            _check_json(value)
        return value

    @property
    def day(self) -> date:
        return self.timestamp.date()

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready dict, key for key what metaspn-schemas' ``to_dict()`` gives."""
        return self.model_dump(mode="json")

    def to_line(self) -> str:
        """One JSONL line without the newline."""
        return self.model_dump_json()

    def to_json_bytes(self) -> bytes:
        """The same line as UTF-8 bytes, straight from pydantic's serializer (the bytes the store writes)."""
        return self.__pydantic_serializer__.to_json(self)


class SignalEnvelope(_Envelope):
    """One observed event: what happened (``payload_type``, ``payload``), when, from which source."""

    entity_refs: tuple[EntityRef, ...] = ()
    payload: Any
    payload_type: str = Field(min_length=1)
    raw: dict[str, Any] | None = None
    schema_version: str = Field(default=DEFAULT_SCHEMA_VERSION, min_length=1)
    signal_id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    timestamp: AwareDatetime
    trace: TraceContext | None = None

    @property
    def event_id(self) -> str:
        return self.signal_id

    @property
    def event_type(self) -> str:
        return self.payload_type


class EmissionEnvelope(_Envelope):
    """One thing the system emitted in response to a signal (``caused_by`` names the signal id)."""

    caused_by: str
    emission_id: str = Field(min_length=1)
    emission_type: str = Field(min_length=1)
    entity_refs: tuple[EntityRef, ...] = ()
    payload: Any
    schema_version: str = Field(default=DEFAULT_SCHEMA_VERSION, min_length=1)
    timestamp: AwareDatetime
    trace: TraceContext | None = None

    @property
    def event_id(self) -> str:
        return self.emission_id

    @property
    def event_type(self) -> str:
        return self.emission_type

    @property
    def source(self) -> None:
        return None


Envelope = SignalEnvelope | EmissionEnvelope
ENVELOPE_TYPES: dict[str, type[SignalEnvelope] | type[EmissionEnvelope]] = {
    "signal": SignalEnvelope,
    "emission": EmissionEnvelope,
}
ID_FIELDS = {"signal": "signal_id", "emission": "emission_id"}
ID_GETTERS = {kind: operator.attrgetter(field) for kind, field in ID_FIELDS.items()}  # envelope -> its id, in C
# A line read back from the store, bytes or text, to its envelope: pydantic's validator, told that the
# payload was checked when the line was written (raises ValidationError; see parse_stored_line).
STORED_LINE_VALIDATORS = {
    kind: functools.partial(model.__pydantic_validator__.validate_json, context={"stored": True})
    for kind, model in ENVELOPE_TYPES.items()
}


def _issue_for(kind: EventKind, err: dict, where: str) -> Issue:
    loc = tuple(err.get("loc", ()))
    path = ".".join(p for p in (where, format_path(loc)) if p)
    field = loc[0] if loc else ""
    err_type = err.get("type", "")
    id_field = ID_FIELDS[kind]
    if field == id_field:
        return error("SIGNAL_MISSING_ID", path, f"{id_field} is required and must be a non-empty string")
    if field == "timestamp":
        if err_type == "timezone_aware":
            return error(
                "SIGNAL_NAIVE_TIMESTAMP", path,
                "timestamp has no UTC offset; write it as 2026-02-05T12:00:00Z (or with +HH:MM)",
            )
        return error(
            "SIGNAL_BAD_TIMESTAMP", path,
            f"timestamp is not an ISO 8601 date-time ({err.get('msg')}); write it as 2026-02-05T12:00:00Z",
        )
    if field == "payload":
        return error("SIGNAL_BAD_PAYLOAD", path, f"{err.get('msg')}")
    return error("SIGNAL_INVALID", path, f"{err.get('msg')}")


def parse_envelope(kind: EventKind, record: Any, where: str = "") -> Envelope:
    """Validate one record (a dict, an envelope, or a metaspn-schemas dataclass) into an envelope.

    An envelope of exactly this kind's class is returned as is; any other model (e.g. a subclass) is
    validated from its fields into one (a field the format has no place for is refused). Raises
    :class:`InvalidEnvelope` naming every problem; nothing is stored by this function.
    """
    model = ENVELOPE_TYPES[kind]
    if type(record) is model:
        return record
    if isinstance(record, BaseModel):  # e.g. a subclass: stored as the envelope it is (extra fields are refused)
        record = record.model_dump()
    elif hasattr(record, "to_dict") and not isinstance(record, Mapping):
        record = record.to_dict()
    if not isinstance(record, Mapping):
        raise InvalidEnvelope([error("SIGNAL_INVALID", where, f"a {kind} must be a JSON object")])
    try:
        return model.model_validate(record)
    except ValidationError as exc:
        raise InvalidEnvelope([_issue_for(kind, e, where) for e in exc.errors()]) from None


def parse_line(kind: EventKind, line: str | bytes, where: str = "") -> Envelope:
    """Validate one JSONL line; a line that is not JSON raises :class:`InvalidEnvelope` too."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise InvalidEnvelope([error("SIGNAL_UNREADABLE_LINE", where, f"not JSON: {exc}")]) from None
    return parse_envelope(kind, record, where)


def parse_stored_line(kind: EventKind, line: str | bytes, where: str = "") -> Envelope:
    """Validate one line read back from the store (JSON parsed by pydantic; payload already checked)."""
    try:
        return STORED_LINE_VALIDATORS[kind](line)
    except ValidationError as exc:
        errors = exc.errors()
        if errors and errors[0].get("type") == "json_invalid":
            raise InvalidEnvelope([error("SIGNAL_UNREADABLE_LINE", where, f"not JSON: {errors[0].get('msg')}")]) from None
        raise InvalidEnvelope([_issue_for(kind, e, where) for e in errors]) from None
