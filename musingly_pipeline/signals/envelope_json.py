"""Many envelopes' JSON at once, byte for byte what pydantic writes, about twice as fast, and cut into lines.

:func:`encode_lines` is how the file store serialises a batch: every envelope's line, from one call
for the whole list; :func:`encode_lines_plain` is the reference it is held to (each envelope's own
``to_json_bytes``), in ``musingly_pipeline_tests/signals/test_envelope_json.py``.

The store writes each envelope as pydantic's ``to_json`` of it (what ``to_json_bytes`` gives). For a
batch, :func:`dump_envelopes` gives the JSON array of the envelopes, the same bytes as
``TypeAdapter(list[Model]).dump_json(envelopes)``, from one orjson call over the models' own field
dicts (``__dict__``: a validated model keeps its fields there in declaration order, which is the order
pydantic writes them). The nested models (:class:`EntityRef`, :class:`TraceContext`) are handed to
orjson as their field dicts too.

The two encoders agree on everything a validated envelope holds: strings (the same escapes: ``\\"``,
``\\\\``, ``\\b \\t \\n \\f \\r`` and ``\\u00XX`` for the other control characters, everything else
as UTF-8), integers, floats (both print the shortest round-tripping form, e.g. ``1e16``, ``0.1``,
``-0.0``), ``null``, lists and tuples as arrays, dicts in insertion order, and UTC timestamps as
``2026-01-20T01:20:32Z`` (``.ffffff`` when there are microseconds). Whatever is not of that shape
returns ``None`` (the caller then uses pydantic), so the bytes never depend on which encoder ran:

* a value of a subclass (of str, int, dict, list, a nested model), a dataclass, or any other type
  orjson does not encode the way pydantic does (``OPT_PASSTHROUGH_SUBCLASS`` and
  ``OPT_PASSTHROUGH_DATACLASS`` send them to ``_nested``, which refuses them);
* an integer outside 64 bits, nesting deeper than orjson allows, a string with a lone surrogate
  (orjson raises; pydantic then serialises or raises as it always did);
* a model whose ``__dict__`` does not hold exactly its fields;
* a signal's ``raw`` (``dict[str, Any]``, so validation lets any Python value in) that is not plain
  JSON of the exact built-in types with finite floats (checked only for the envelopes that have one).

The payload is plain JSON by validation (``_check_json``). Envelopes made with ``model_construct``
skip validation; the store trusts them as it always did (their day comes from their timestamp), and
they are encoded the same way unless their payload holds a ``datetime`` with a UTC offset that is not
a whole number of minutes (pydantic drops the seconds of such an offset, orjson rounds them).
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from musingly_pipeline.signals.envelopes import ENVELOPE_TYPES, EntityRef, Envelope, EventKind, TraceContext

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; without it pydantic does all of it
    orjson = None

_NESTED = {model: len(model.model_fields) for model in (EntityRef, TraceContext)}
_FIELD_COUNTS = {kind: len(model.model_fields) for kind, model in ENVELOPE_TYPES.items()}
_DICT = operator.attrgetter("__dict__")
_RAW = operator.attrgetter("raw")
_OPTIONS = (orjson.OPT_UTC_Z | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS) if orjson else 0
_MAX_DEPTH = 64
_LIST_ADAPTERS = {kind: TypeAdapter(list[model]) for kind, model in ENVELOPE_TYPES.items()}
_LIST_MARKERS = {kind: f',{{"{next(iter(model.model_fields))}":'.encode() for kind, model in ENVELOPE_TYPES.items()}


def _nested(value: Any, _count=_NESTED.get) -> dict[str, Any]:
    """orjson's ``default``: a nested model of exactly the declared class, as its field dict; else refuse."""
    count = _count(type(value))
    if count is not None:
        fields = value.__dict__
        if len(fields) == count:
            return fields
    raise TypeError(f"{type(value).__name__} is left to pydantic")


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is JSON made of exactly dict (str keys), list, tuple, str, int, finite float, bool, None."""
    cls = type(value)
    if cls is str or cls is int or cls is bool or value is None:
        return True
    if cls is float:
        return math.isfinite(value)
    if depth >= _MAX_DEPTH:
        return False
    if cls is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    if cls is list or cls is tuple:
        return all(_plain(v, depth + 1) for v in value)
    return False


def dump_envelopes(kind: str, envelopes: list) -> bytes | None:
    """The JSON array of ``envelopes`` (all of the kind's own class), as pydantic writes it; None if
    the batch holds anything this encoder does not write exactly as pydantic does (see the module)."""
    if orjson is None:
        return None
    fields = list(map(_DICT, envelopes))
    if set(map(len, fields)) - {_FIELD_COUNTS[kind]}:
        return None
    if kind == "signal" and not all(map(_plain, filter(None, map(_RAW, envelopes)))):
        return None
    try:
        return orjson.dumps(fields, default=_nested, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return None


def encode_lines(kind: EventKind, envelopes: list[Envelope]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Every envelope's JSON: ``(data, starts, sizes)``.

    ``data[starts[k]:starts[k] + sizes[k]]`` is pydantic's ``to_json`` of envelope ``k`` (its line,
    without the newline). The envelopes are of the kind's own class (``parse_envelope`` sees to that). The
    whole list is serialised in one call (``[line,line,...]``, by orjson if :func:`dump_envelopes` can
    write the exact same bytes, else by pydantic; no per-call overhead) and cut at the
    commas between envelopes: each line starts with the first field (``{"entity_refs":`` for a
    signal), so ``,{"entity_refs":`` occurs at each of the n-1 boundaries; if it occurs exactly n-1
    times, it occurs nowhere else (an occurrence inside an envelope cannot overlap a boundary: an
    envelope ends with ``}``). Otherwise (a payload holding a nested object with that first key)
    each envelope is serialised on its own.
    """
    model = ENVELOPE_TYPES[kind]
    n = len(envelopes)
    marker = _LIST_MARKERS[kind]
    dumped = dump_envelopes(kind, envelopes)  # orjson, the same bytes; None: an unusual shape
    if dumped is None:
        dumped = _LIST_ADAPTERS[kind].dump_json(envelopes)
    raw = np.frombuffer(dumped, np.uint8)
    braces = np.flatnonzero(raw == marker[1])  # every "{" (never the first byte: that is "[")
    candidates = braces[raw[braces - 1] == marker[0]] - 1  # every ",{"
    candidates = candidates[candidates <= len(raw) - len(marker)]
    windows = np.lib.stride_tricks.sliding_window_view(raw, len(marker))[candidates]
    bounds = candidates[(windows == np.frombuffer(marker, np.uint8)).all(axis=1)]
    if len(bounds) == n - 1:
        starts = np.r_[1, bounds + 1]
        return dumped, starts, np.r_[bounds, len(dumped) - 1] - starts  # up to each "," and the final "]"
    lines = list(map(model.__pydantic_serializer__.to_json, envelopes))
    sizes = np.fromiter(map(len, lines), np.int64, n)
    return b"".join(lines), np.cumsum(sizes) - sizes, sizes


def encode_lines_plain(kind: EventKind, envelopes: list[Envelope]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """:func:`encode_lines`, one envelope at a time (pydantic's ``to_json`` of each): the reference."""
    lines = [e.to_json_bytes() for e in envelopes]
    sizes = np.fromiter(map(len, lines), np.int64, len(lines))
    return b"".join(lines), np.cumsum(sizes) - sizes, sizes
