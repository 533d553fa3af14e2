"""The batch encoder (orjson over the models' field dicts) writes exactly pydantic's bytes, or steps aside;
the lines cut from it are those of the plain encoder (each envelope's own ``to_json_bytes``)."""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from musingly_pipeline.signals import EmissionEnvelope, EntityRef, FileSystemStore, SignalEnvelope
from musingly_pipeline.signals.envelope_json import dump_envelopes, encode_lines, encode_lines_plain
from musingly_pipeline.signals.envelopes import TraceContext
from musingly_pipeline_tests.signals.conftest import DAY, signal

LISTS = {"signal": TypeAdapter(list[SignalEnvelope]), "emission": TypeAdapter(list[EmissionEnvelope])}

# every code point but lone surrogates (which no encoder writes as UTF-8); the control characters,
# quotes, backslashes, U+2028/2029 and the batch marker are drawn often
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["", '"', "\\", "\x00\x1f\x7f", "\u2028\u2029", ',{"entity_refs":', "é✓😀", "\t\n\r\b\f", "</script>"])
FLOATS = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1e16, 1e15, 1e-7, 5e-324, 1.7976931348623157e308, 0.1, 2 / 3, 1e21, 123456789.125])
INTS = st.integers() | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -2**63, -2**63 - 1, 10**30])
SCALARS = st.none() | st.booleans() | INTS | FLOATS | TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
                    | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-5)),
                           timezone(timedelta(seconds=37)), ZoneInfo("Europe/Amsterdam")])
ODD = st.sampled_from([Decimal("1.10"), b"bytes", {1, 2}, float("nan"), float("inf"), enum.Enum("E", "A").A]) \
    | st.datetimes(timezones=st.none() | OFFSETS)
RAW = st.none() | st.dictionaries(TEXT, JSON, max_size=3) | st.dictionaries(TEXT, JSON | ODD, max_size=3)
REFS = st.lists(st.builds(EntityRef, ref_type=TEXT.filter(bool), value=TEXT, platform=st.none() | TEXT, label=st.none() | TEXT,
                          schema_version=TEXT), max_size=3).map(tuple)
TRACES = st.none() | st.builds(TraceContext, trace_id=TEXT, caused_by=st.lists(TEXT, max_size=2).map(tuple),
                               metadata=st.dictionaries(TEXT, TEXT, max_size=2), privacy_mode=st.booleans(),
                               provenance=st.none() | TEXT, redactions=st.lists(TEXT, max_size=2).map(tuple))
TIMESTAMPS = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS)
NONEMPTY = TEXT.filter(bool)
SIGNALS = st.builds(SignalEnvelope, signal_id=NONEMPTY, timestamp=TIMESTAMPS, source=NONEMPTY, payload_type=NONEMPTY,
                    payload=JSON, entity_refs=REFS, raw=RAW, trace=TRACES, schema_version=NONEMPTY)
EMISSIONS = st.builds(EmissionEnvelope, emission_id=NONEMPTY, timestamp=TIMESTAMPS, emission_type=NONEMPTY, caused_by=TEXT,
                      payload=JSON, entity_refs=REFS, trace=TRACES)


def _check(kind, envelopes):
    expected = LISTS[kind].dump_json(envelopes)
    fast = dump_envelopes(kind, envelopes)
    assert fast is None or fast == expected
    # and the lines the store cuts from either encoder's output are each envelope's own JSON
    for encode in (encode_lines, encode_lines_plain):
        data, starts, sizes = encode(kind, envelopes)
        assert [data[a:a + b] for a, b in zip(starts.tolist(), sizes.tolist())] == [e.to_json_bytes() for e in envelopes]
    return fast


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(SIGNALS, min_size=1, max_size=6))
def test_signals_encode_to_pydantics_bytes(envelopes):
    _check("signal", envelopes)


# what validated envelopes usually hold: the fast path must take all of it
PLAIN_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | FLOATS | TEXT,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
PLAIN_SIGNALS = st.builds(SignalEnvelope, signal_id=NONEMPTY, timestamp=TIMESTAMPS, source=NONEMPTY, payload_type=NONEMPTY,
                          payload=PLAIN_JSON, entity_refs=REFS, raw=st.none() | st.dictionaries(TEXT, PLAIN_JSON, max_size=3),
                          trace=TRACES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(PLAIN_SIGNALS, min_size=1, max_size=6))
def test_plain_signals_take_the_fast_path(envelopes):
    assert _check("signal", envelopes) is not None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(EMISSIONS, min_size=1, max_size=6))
def test_emissions_encode_to_pydantics_bytes(envelopes):
    _check("emission", envelopes)


def test_the_usual_shape_takes_the_fast_path():
    trace = TraceContext(trace_id="t", caused_by=("a",), metadata={"k": "v"}, provenance="p")
    batch = [signal(i, DAY + timedelta(microseconds=i * 370_001), payload={"score": i / 7, "text": f"é {i}", "n": [i, None, True]})
             for i in range(50)]
    batch.append(SignalEnvelope(signal_id="r", timestamp=DAY, source="s", payload_type="T", payload=[], trace=trace,
                                raw={"a": [1, 2.5, "x", None, {"b": False}], "c": (1,)}))
    assert _check("signal", batch) is not None
    emissions = [EmissionEnvelope(emission_id=f"e{i}", timestamp=DAY, emission_type="T", caused_by="s", payload={"i": i}) for i in range(3)]
    assert _check("emission", emissions) is not None


class Text(str):
    pass


class Mapping(dict):
    pass


class Number(int):
    pass


class Label(str, enum.Enum):
    A = "a"


@dataclass
class Point:
    x: int


class TaggedRef(EntityRef):
    pass


@pytest.mark.parametrize("make", [
    lambda: signal(1, payload={"k": Text("v")}),
    lambda: signal(1, payload=Mapping(k=1)),
    lambda: signal(1, payload=OrderedDict(k=1)),
    lambda: signal(1, payload=[Number(3)]),
    lambda: signal(1, payload={"big": 2**64}),
    lambda: signal(1, refs=(TaggedRef(ref_type="person", value="v", label="extra"),)),
    lambda: signal(1).model_copy(update={"raw": {"when": datetime(2026, 1, 1, tzinfo=timezone(timedelta(seconds=37)))}}),
    lambda: SignalEnvelope(signal_id="s", timestamp=DAY, source="s", payload_type="T", payload=1, raw={"d": Decimal("1.5")}),
    lambda: SignalEnvelope(signal_id="s", timestamp=DAY, source="s", payload_type="T", payload=1, raw={"x": float("nan")}),
    lambda: SignalEnvelope(signal_id="s", timestamp=DAY, source="s", payload_type="T", payload=1, raw={"x": Point(1)}),
    lambda: SignalEnvelope.model_construct(signal_id="s", timestamp=DAY, payload={"p": Point(2)}),
])
def test_an_unusual_shape_is_left_to_pydantic(make, tmp_path):
    envelope = make()
    assert _check("signal", [signal(0), envelope]) is None
    store = FileSystemStore(tmp_path)
    store.write_signals([signal(0), envelope])
    assert store.partition_path("signal", envelope.day).read_bytes().endswith(envelope.to_json_bytes() + b"\n")


@pytest.mark.parametrize("payload", [{"e": Label.A}, {"when": datetime(2026, 1, 1, 12, 0, 0, 5, tzinfo=UTC)}, {"n": math.pi}])
def test_values_both_encoders_write_alike_need_no_fallback(payload):
    # a str-valued enum passes validation; a datetime only gets into a payload through model_construct
    envelope = SignalEnvelope.model_construct(**{**dict(signal(1)), "payload": payload})
    assert _check("signal", [envelope]) is not None


def test_a_model_missing_a_field_is_left_to_pydantic():
    partial = SignalEnvelope.model_construct(signal_id="s", timestamp=DAY, payload=1)  # no source, no payload_type
    assert _check("signal", [signal(0), partial]) is None
