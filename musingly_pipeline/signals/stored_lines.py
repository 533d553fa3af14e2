"""Stored lines back into envelopes: one pydantic call a line, with the memory a read touches kept small.

Memory is most of a read's cost on a virtual machine, where a page the process has not used yet costs
about 10 µs. :func:`validate_lines` releases each line once validated, and swaps each envelope's
``__pydantic_fields_set__`` (and its entity refs'), when it holds every field, for one shared immutable
set (:class:`_AllFields`) as the envelope is made, so the next one reuses the memory (those sets were
more than half of a read-back signal's 2.6 KB). :func:`validate_lines_plain` is pydantic alone, the
reference the property test (``musingly_pipeline_tests/signals/test_stored_lines.py``) holds it to:
the same envelopes, the same fields sets, the same copies.

Both raise ``ValueError`` (pydantic's ``ValidationError``) on a line that is not a valid envelope;
the caller then reads the partition line by line (``parse_stored_line``).
"""

from __future__ import annotations

import operator

from musingly_pipeline.signals.envelopes import ENVELOPE_TYPES, STORED_LINE_VALIDATORS, EntityRef, Envelope, EventKind


class _AllFields(frozenset):
    """One model's every field name: the ``__pydantic_fields_set__`` shared by the envelopes a read makes.

    pydantic gives each instance its own set (728 bytes for 5 to 10 names, more than half of a
    stored signal's memory). An envelope read back has every field set, so one immutable set
    serves them all; ``copy`` (``model_copy``) gives a fresh mutable set, as pydantic does.
    """

    __slots__ = ()

    def __copy__(self) -> set[str]:
        return set(self)


_ALL_FIELDS = {model: _AllFields(model.model_fields) for model in (*ENVELOPE_TYPES.values(), EntityRef)}
_FIELDS_SET = "__pydantic_fields_set__"


def validate_lines(kind: EventKind, lines: list[bytes]) -> list[Envelope]:
    """Each line's envelope, validated by pydantic, taking the lines out of ``lines`` (emptied).

    Memory is time here (a page the process has not used yet costs about 10 µs on a virtual
    machine): each line is released once validated, and each full fields set is swapped for the
    shared one as its envelope is made, so the next envelope reuses that memory.
    """
    validate, setattr_, get_set = STORED_LINE_VALIDATORS[kind], object.__setattr__, operator.attrgetter(_FIELDS_SET)
    full, full_ref = _ALL_FIELDS[ENVELOPE_TYPES[kind]], _ALL_FIELDS[EntityRef]
    size, ref_size = len(full), len(full_ref)
    out = []
    append = out.append
    lines.reverse()
    take = lines.pop
    for _ in range(len(lines)):
        e = validate(take())
        if len(get_set(e)) == size:
            setattr_(e, _FIELDS_SET, full)
        for ref in e.entity_refs:
            if len(get_set(ref)) == ref_size:
                setattr_(ref, _FIELDS_SET, full_ref)
        append(e)
    return out


def validate_lines_plain(kind: EventKind, lines: list[bytes]) -> list[Envelope]:
    """Each line's envelope, validated by pydantic: the reference (``lines`` is left as it is)."""
    return list(map(STORED_LINE_VALIDATORS[kind], lines))
