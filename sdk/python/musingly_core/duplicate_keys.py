"""Duplicate keys in a JSON object: a generator's mistake that parsers hide by keeping the last value.

Two ways to find them:

* :class:`DuplicateKeys`, an ``object_pairs_hook`` for ``json.loads``: exact, and
  :meth:`DuplicateKeys.located` says where (``sparks[3].slug``). It costs a Python-level parse.
* :func:`count_keys`, for a bundle, which pydantic parses straight from bytes without telling
  about duplicates: every object of a bundle is a contract model and every key one of its fields
  (unknown fields are refused), so the keys in the file number exactly the fields set on the
  parsed models unless a key repeats. Counting keys is a byte scan (numpy); with the count of
  fields set it adds about 5% to the parse of a 100k-spark bundle (bench/validate.py);
  only a file whose count differs is parsed again with the hook, to say where.

numpy is not a dependency of musingly-core: where it is missing (a generator's venv),
:func:`count_keys` counts with ``bytes.count`` and a regular expression instead, about four times
slower (0.7 s instead of 0.2 s on a 180 MiB bundle). Both counts are exact for a bundle whose
contracts passed, so they decide alike, and the issues are the same either way.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from pydantic import BaseModel

from musingly_core.report import Issue, error, format_path

_QUOTE, _COLON = ord('"'), ord(":")
_WHITESPACE = b" \t\r\n"
_WORD_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
# The fallback's quotes with whitespace before a colon (rare: most writers put none). The pattern
# starts with the quote: re then skips to each quote at C speed (a class or lookbehind in front
# made it ten times slower).
_SPACED_COLON = re.compile(rb'"[ \t\r\n]+:')
_WORD_BYTES = frozenset(_WORD_CHARS)
_CHUNK = 1 << 24  # bytes scanned at a time: bounds the temporary arrays


class _Object(dict):
    """A parsed object that had repeated keys: the last value of each is kept, as usual, and
    ``shadowed`` holds the earlier ones (they may hold repeated keys too)."""

    repeated: tuple[str, ...] = ()
    shadowed: tuple[tuple[str, Any], ...] = ()


class DuplicateKeys:
    """``json.loads(text, object_pairs_hook=found.hook)``, then ``found.located(tree)``."""

    def __init__(self) -> None:
        self.found = False

    def hook(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) == len(pairs):
            return result
        self.found = True
        marked = _Object(result)
        last = {key: index for index, (key, _) in enumerate(pairs)}
        marked.shadowed = tuple(pair for index, pair in enumerate(pairs) if last[pair[0]] != index)
        marked.repeated = tuple(dict.fromkeys(key for key, _ in marked.shadowed))
        return marked

    def located(self, tree: Any) -> list[tuple[str, str]]:
        """``(path of the key, key)`` of every repeated key, in document order."""
        if not self.found:
            return []
        found: list[tuple[str, str]] = []
        stack: list[tuple[tuple, Any]] = [((), tree)]
        while stack:
            loc, value = stack.pop()
            if isinstance(value, dict):
                children = list(value.items())
                if isinstance(value, _Object):
                    found.extend((format_path((*loc, key)), key) for key in value.repeated)
                    children = [*value.shadowed, *children]
                stack.extend(((*loc, key), child) for key, child in reversed(children))
            elif isinstance(value, list):
                stack.extend(((*loc, index), child) for index, child in reversed(list(enumerate(value))))
        return found


def duplicate_key_issue(path: str, key: str) -> Issue:
    return error(
        "JSON_DUPLICATE_KEY", path,
        f"the key `{key}` appears more than once in this object, and only its last value would be kept; "
        "keep one of them",
    )


def find_duplicate_keys(text: bytes | str) -> list[tuple[str, str]]:
    """Every repeated key of a JSON text that parses (``[]`` if it does not parse)."""
    found = DuplicateKeys()
    try:
        tree = json.loads(text, object_pairs_hook=found.hook)
    except ValueError:
        return []
    return found.located(tree)


@functools.cache
def _numpy():
    """(numpy, a table of the bytes a contract field's name ends with), or (None, None) without numpy
    (musingly-core alone). Imported at first use: commands that never count keys start without it."""
    try:
        import numpy as np
    except ImportError:
        return None, None
    word = np.zeros(256, bool)
    word[np.frombuffer(_WORD_CHARS, np.uint8)] = True
    return np, word


def count_keys(data: bytes) -> int:
    """How many object keys ending in a letter, digit or underscore a JSON text holds.

    Every contract field is such a key, and an unknown field is refused before this count matters.
    Such a key is a quote after a letter, digit or underscore, then maybe whitespace, then a colon.
    No string can give that pattern: inside a string a quote is escaped (after a backslash), and a
    string's opening quote comes after ``[``, ``{``, ``,``, ``:`` or whitespace.
    """
    np, word = _numpy()
    if np is None:
        return _count_keys_without_numpy(data)
    buffer = np.frombuffer(data, np.uint8)
    keys = 0
    for start in range(0, len(buffer), _CHUNK):
        # the shortest such key, `{"a":`, puts its colon at index 4
        colons = np.flatnonzero(buffer[start:start + _CHUNK] == _COLON) + start
        colons = colons[colons >= 3]
        before = buffer[colons - 1]
        quoted = colons[before == _QUOTE]
        keys += int(np.count_nonzero(word[buffer[quoted - 2]]))
        for position in colons[np.isin(before, np.frombuffer(_WHITESPACE, np.uint8))].tolist():
            keys += _key_before(data, position)
    return keys


def _count_keys_without_numpy(data: bytes) -> int:
    """:func:`count_keys` in C-level byte searches. Every quote directly before a colon closes a key,
    except an escaped one inside a string (``\\":``); a key that ends in another character than a
    letter, digit or underscore is an unknown field, refused before the count is used. Keys spaced
    from their colon are few and found by the regular expression."""
    spaced = sum(1 for m in _SPACED_COLON.finditer(data) if m.start() and data[m.start() - 1] in _WORD_BYTES)
    return data.count(b'":') - data.count(b'\\":') + spaced


def _key_before(data: bytes, colon: int) -> int:
    """1 if whitespace, and before it such a key's closing quote, come before the colon at ``colon``."""
    end = colon - 1
    while data[end] in _WHITESPACE:
        end -= 1
    return int(end >= 2 and data[end] == _QUOTE and data[end - 1] in _WORD_BYTES)


def fields_set(models: Iterable[BaseModel]) -> int:
    """How many fields the models were given (keys of the objects they were parsed from, once each)."""
    # `__pydantic_fields_set__` is the attribute behind `model_fields_set`, read without the
    # property's call: half the time over a 100k-spark bundle's 700k models.
    return sum(map(len, map(_FIELDS_SET, models)))


_FIELDS_SET = attrgetter("__pydantic_fields_set__")
