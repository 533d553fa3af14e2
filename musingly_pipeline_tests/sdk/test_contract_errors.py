"""musingly_core.contract_errors: pydantic's errors as issues, the one translation bundles and seed units share."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from musingly_core.contract_errors import did_you_mean, model_at, schema_issue, show_value
from musingly_core.models import ImportBundle, SparkImport


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    label: str
    count: int | None = None


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    title: str
    items: list[Inner] = []
    best: Inner | None = None
    tagged: Annotated[Inner | None, Field(description="x")] = None
    size: Annotated[int, Field(ge=0)] = 0


def issues(model: type[BaseModel], data: dict) -> list[tuple[str, str, str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(i.code, i.path, i.message) for i in (schema_issue(e, model) for e in caught.value.errors())]


def test_each_kind_of_error_gets_its_code_place_and_fix():
    found = issues(Outer, {"items": [{"labl": "a"}], "best": {"label": 3}, "size": -1})
    assert found == [
        ("SCHEMA_MISSING_FIELD", "title", "required field `title` is missing; add it"),
        ("SCHEMA_MISSING_FIELD", "items[0].label", "required field `label` is missing; add it"),
        ("SCHEMA_UNKNOWN_FIELD", "items[0].labl",
         "unknown field `labl`; did you mean `label`? remove it or fix its spelling"),
        ("SCHEMA_WRONG_TYPE", "best.label", "expected a string, got 3; change the value's type"),
        ("SCHEMA_INVALID_VALUE", "size", "Input should be greater than or equal to 0; got -1"),
    ]


def test_an_unknown_field_far_from_every_name_gets_no_guess():
    [(code, path, message)] = issues(Outer, {"title": "t", "tagged": {"label": "a", "zzzz": 1}})
    assert (code, path) == ("SCHEMA_UNKNOWN_FIELD", "tagged.zzzz")
    assert message == "unknown field `zzzz`; remove it or fix its spelling"


def test_a_cleaned_location_replaces_the_errors_own():
    with pytest.raises(ValidationError) as caught:
        Outer.model_validate({"title": 5})
    issue = schema_issue(caught.value.errors()[0], Outer, loc=("renamed",))
    assert (issue.code, issue.path) == ("SCHEMA_WRONG_TYPE", "renamed")


def test_model_at_follows_lists_optionals_and_annotations():
    assert model_at(Outer, ()) is Outer
    assert model_at(Outer, ("items", 3)) is Inner
    assert model_at(Outer, ("best",)) is Inner
    assert model_at(Outer, ("tagged",)) is Inner
    assert model_at(Outer, ("title",)) is None
    assert model_at(Outer, ("nothing",)) is None
    assert model_at(ImportBundle, ("sparks", 0)) is SparkImport


def test_values_are_shown_short_and_guesses_only_when_close():
    assert show_value("abc") == "'abc'"
    assert show_value("x" * 100) == "'" + "x" * 58 + "…"
    assert len(show_value(list(range(100)), limit=20)) == 20
    assert did_you_mean("titel", ["title", "items"]) == "did you mean `title`? "
    assert did_you_mean("zzz", ["title", "items"]) == ""
