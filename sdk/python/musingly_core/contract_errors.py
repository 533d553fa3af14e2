"""Pydantic's validation errors as issues: the one translation every contract's errors go through.

A bundle (:mod:`musingly_core.bundle_file`) and the pipeline's seed units read the errors of their
contracts with :func:`schema_issue`: an unknown field (with a did-you-mean from the model at that
place), a missing field, a wrong type or any other invalid value, each with its ``SCHEMA_*`` code and
a message that says the fix. A caller turns its own kinds of error into issues before calling it (a
bundle's ``schema_version``, a seed unit's timestamps).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from musingly_core.report import Issue, error, format_path

# pydantic's error types that mean "the value has the wrong JSON type", and what the field expects.
TYPE_ERRORS = frozenset({
    "string_type", "int_type", "int_from_float", "float_type", "bool_type", "list_type",
    "dict_type", "model_type", "datetime_type", "none_required", "model_attributes_type",
})
EXPECTED = {
    "string_type": "a string", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_type": "a number", "bool_type": "true or false", "list_type": "an array",
    "dict_type": "an object", "model_type": "an object", "datetime_type": "an ISO 8601 datetime string",
    "model_attributes_type": "an object",
}


def schema_issue(err: ErrorDetails, root: type[BaseModel], loc: tuple | None = None) -> Issue:
    """One of pydantic's errors (``exc.errors()``) as an issue located like ``sparks[3].slug``.

    ``root`` is the model that was validated (it names the fields an unknown one may be a misspelling
    of); ``loc`` replaces the error's own location when the caller cleaned it (dropped a union
    member's tag, say).
    """
    loc = tuple(err["loc"]) if loc is None else tuple(loc)
    path = format_path(loc)
    kind, got = err["type"], err.get("input")
    if kind == "extra_forbidden":
        name = str(loc[-1])
        model = model_at(root, loc[:-1])
        hint = did_you_mean(name, model.model_fields) if model is not None else ""
        return error("SCHEMA_UNKNOWN_FIELD", path, f"unknown field `{name}`; {hint}remove it or fix its spelling")
    if kind == "missing":
        return error("SCHEMA_MISSING_FIELD", path, f"required field `{loc[-1]}` is missing; add it")
    if kind in TYPE_ERRORS:
        expected = EXPECTED.get(kind, kind.replace("_type", ""))
        return error("SCHEMA_WRONG_TYPE", path, f"expected {expected}, got {show_value(got)}; change the value's type")
    return error("SCHEMA_INVALID_VALUE", path, f"{err['msg']}; got {show_value(got)}")


def did_you_mean(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """``"did you mean `close`? "`` for the candidate closest to ``name``, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=cutoff)
    return f"did you mean `{close[0]}`? " if close else ""


def show_value(value: object, limit: int = 60) -> str:
    """A value as a message quotes it: its ``repr``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model found at ``loc`` inside ``root`` (``('sparks', 3)`` -> ``SparkImport``), or ``None``
    where the place holds no model (a free-form object, a scalar, a field that does not exist)."""
    model = root
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        found = _inner_model(info.annotation)
        if found is None:
            return None
        model = found
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Annotated, typing.Union, types.UnionType, list, dict):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None
