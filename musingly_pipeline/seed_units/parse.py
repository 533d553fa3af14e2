"""Parse a seed file's JSON strictly, and find where in the tree a finding is.

Seed files are parsed with :mod:`json` into a tree kept as written (key order, absent versus
``null``, integer versus float spelling): import stores that tree, so export can write it back
byte for byte. The parser reports some findings without a place (a duplicate key, a number that
overflows, a lone surrogate); :func:`locate` then walks the tree once to say where:
``lessons[2].package.quiz[1]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from musingly_core.contract_errors import show_value
from musingly_core.duplicate_keys import DuplicateKeys, duplicate_key_issue
from musingly_core.report import Issue, error, format_path

_BOM = b"\xef\xbb\xbf"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_INFINITIES = (float("inf"), float("-inf"))
# A \uD800-\uDFFF escape: maybe half of a surrogate pair, maybe a lone one that UTF-8 cannot encode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _unencodable(value: Any) -> bool:
    if not isinstance(value, str) or value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_json(data: bytes | str) -> tuple[Any, list[Issue]]:
    """Parse JSON text strictly: UTF-8, no duplicate keys, no NaN/Infinity, numbers a double holds,
    no lone surrogate escapes (``\\ud800``: text PostgreSQL cannot store)."""
    if isinstance(data, bytes):
        if data.startswith(_BOM):
            data = data[len(_BOM):]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            return None, [error("FILE_NOT_UTF8", "", f"byte {exc.start} (line {line}) is not UTF-8; save the file as UTF-8")]
    else:
        text = data
    if not text.strip():
        return None, [error("FILE_EMPTY", "", "the file is empty; it must hold one JSON object")]
    duplicates = DuplicateKeys()
    overflowed: list[str] = []

    def parse_float(literal: str) -> float:
        value = float(literal)
        if value in _INFINITIES:
            overflowed.append(literal)
        return value

    try:
        document = json.loads(
            text, object_pairs_hook=duplicates.hook, parse_constant=_reject_constant, parse_float=parse_float,
        )
    except ValueError as exc:
        return None, [error("JSON_INVALID", "", f"not valid JSON: {exc}; fix the JSON syntax there")]
    issues = [duplicate_key_issue(path, key) for path, key in duplicates.located(document)]
    if overflowed:  # the walk finds them in document order, as the parser met them
        infinite = locate(document, lambda v: isinstance(v, float) and v in _INFINITIES)
        issues.extend(
            error("SCHEMA_INVALID_VALUE", path,
                  f"the number {literal} is out of range: a number must fit a double (at most about 1.8e308); "
                  "write a smaller number")
            for literal, (path, _) in zip(overflowed, infinite))
    if _SURROGATE_ESCAPE.search(text):
        issues.extend(
            error("SCHEMA_INVALID_VALUE", path,
                  f"{show_value(value)} holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair), "
                  "which UTF-8 and PostgreSQL text cannot hold; write the whole character or remove it")
            for path, value in locate(document, _unencodable, keys=True))
    return (None, issues) if issues else (document, [])


def unit_document(data: bytes | str) -> tuple[dict[str, Any] | None, list[Issue]]:
    """The JSON object of a unit file, or the issues that say it is not one (it does not parse, or
    holds something else than an object): a file that no fix of a unit rule can make importable."""
    document, issues = parse_json(data)
    if issues:
        return None, issues
    if not isinstance(document, dict):
        return None, [error(
            "SEED_NOT_OBJECT", "",
            f"the file holds a JSON {json_kind(document)}, but a unit file is one JSON object "
            '({"id": ..., "title": ..., "lessons": [...]})',
        )]
    return document, []



def json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return "number, boolean or null"


def locate(tree: Any, match: Callable[[Any], bool], *, keys: bool = False) -> Iterator[tuple[str, Any]]:
    """``(path, value)`` of every value (and object key, with ``keys``) for which ``match`` holds,
    in document order; a matching key's path is the path of its value."""
    stack: list[tuple[tuple, Any]] = [((), tree)]
    while stack:
        loc, value = stack.pop()
        if match(value):
            yield format_path(loc), value
        if isinstance(value, dict):
            children = list(value.items())
            if keys:
                for key, _ in children:
                    if match(key):
                        yield format_path((*loc, key)), key
            stack.extend(((*loc, key), child) for key, child in reversed(children))
        elif isinstance(value, list):
            stack.extend(((*loc, index), child) for index, child in reversed(list(enumerate(value))))
