"""Find values in a parsed JSON tree by location, for issues that name where they are.

The parsers report some findings without a place (a duplicate key, a number that overflows, a lone
surrogate); the slow path then walks the tree once to say where: ``lessons[2].package.quiz[1]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from musingly_core.report import format_path


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
