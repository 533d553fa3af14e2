"""What a PostgreSQL column can hold, as constraints the contracts share.

What validation accepts is stored exactly, so each contract field is bounded by its column: an
integer by its column's integer type (``integer``: 32 bits, ``bigint``: 64 bits), a number stored as
``double precision`` to finite values and to the integers a double holds exactly, and text to what a
``text`` column stores (no NUL character). A value outside is refused by validation, with its
location, instead of failing the import or being stored changed.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1
# A double holds every integer of at most 53 bits exactly; past 2**53 an integer written in a number
# field would come back as a neighbour (2**53 + 1 as 2**53).
DOUBLE_EXACT_INT = 2**53

Int4 = Annotated[int, Field(ge=INT4_MIN, le=INT4_MAX)]
Int8 = Annotated[int, Field(ge=INT8_MIN, le=INT8_MAX)]


def double_exact(value: int | float) -> int | float:
    """Refuse a number a ``double precision`` column cannot give back as written: NaN and the
    infinities (JSON has no spelling for them; ``1e400`` parses as infinity), and integers past 2**53."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise PydanticCustomError(
                "finite_number", "a number stored as double precision must be finite (at most about 1.8e308)")
    elif not -DOUBLE_EXACT_INT <= value <= DOUBLE_EXACT_INT:
        raise PydanticCustomError(
            "double_exact_int",
            "an integer stored as double precision must be at most 2**53 = 9007199254740992 either way to "
            "come back as written; write a smaller integer, or a float if the last digits do not matter")
    return value


# An integer or a float (which one is kept), stored as double precision. Not a union of two
# constrained types: pydantic's float accepts an integer, so an integer past 2**53 would pass as a float.
DoubleNumber = Annotated[int | float, AfterValidator(double_exact)]



def no_nul(value: str) -> str:
    """Refuse text holding NUL (``\\u0000``): a PostgreSQL ``text`` value cannot contain it."""
    if "\x00" in value:
        raise PydanticCustomError(
            "nul_character",
            "contains a NUL character (\\u0000), which PostgreSQL text cannot store; remove it",
        )
    return value


NoNul = AfterValidator(no_nul)
