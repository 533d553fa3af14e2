"""Reading stored lines back: the shared-fields-set path gives what pydantic alone gives."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musingly_pipeline.signals.stored_lines import validate_lines, validate_lines_plain
from musingly_pipeline_tests.signals.test_envelope_json import EMISSIONS, PLAIN_SIGNALS


def _agree(kind, envelopes):
    lines = [e.to_json_bytes() for e in envelopes]
    plain = validate_lines_plain(kind, list(lines))
    fast = validate_lines(kind, list(lines))
    assert fast == plain
    for f, p in zip(fast, plain):
        assert f.to_json_bytes() == p.to_json_bytes()
        assert f.model_fields_set == p.model_fields_set
        assert [r.model_fields_set for r in f.entity_refs] == [r.model_fields_set for r in p.entity_refs]
        # a copy gets its own mutable fields set, as pydantic's do
        copied = f.model_copy()
        assert copied == p and type(copy.copy(f.__pydantic_fields_set__)) is set
        assert f.model_copy(update={"payload": 1}).payload == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(PLAIN_SIGNALS, max_size=6))
def test_signals_read_back_as_pydantic_reads_them(envelopes):
    _agree("signal", envelopes)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(EMISSIONS, max_size=6))
def test_emissions_read_back_as_pydantic_reads_them(envelopes):
    _agree("emission", envelopes)


def test_the_lines_are_taken_and_a_bad_line_raises_as_pydantic_does():
    lines = [b'{"signal_id": "s"}']
    try:
        validate_lines("signal", lines)
    except ValueError as fast:
        try:
            validate_lines_plain("signal", [b'{"signal_id": "s"}'])
        except ValueError as plain:
            assert type(fast) is type(plain)
    else:
        raise AssertionError("an invalid line must raise")
