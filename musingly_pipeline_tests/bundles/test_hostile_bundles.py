"""The audit's mutation kinds as a property over the example bundles, against a real PostgreSQL.

On every generated bundle ``validate`` and ``import`` agree (both accept, or both refuse with the
same codes at the same places, the import leaving nothing), and an imported bundle reads back equal
to what was validated. The cases the audit found wrong are explicit examples; a bounded number of
generated ones keeps the test to seconds, and ``tools/fault_audit.py`` runs the same property at
the audit's scale.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings

from musingly_pipeline.storage.migrations import migrate
from musingly_pipeline_tests.bundles.bundle_mutations import check_agreement, example_with, mutated_bundle


@pytest.fixture(scope="module")
def url(make_database) -> str:
    url = make_database()
    migrate(url)
    return url


def _set(kind: str, field: str, value):
    def change(doc: dict) -> None:
        (doc[kind][0] if kind else doc)[field] = value
    return change


AUDIT_CASES = [
    example_with(_set("concepts", "order_index", 2**31 - 1)),  # the largest int4: imports exactly
    example_with(_set("concept_sparks", "order_index", 2**31)),  # was stored as -2147483648
    example_with(_set("concepts", "order_index", 2**32 + 7)),  # was stored as 7
    example_with(_set("concepts", "order_index", 2**63)),  # was an OverflowError traceback
    example_with(_set("sparks", "content_md", "NUL \x00 in COPY")),  # was CharacterNotInRepertoire
    example_with(_set(None, "version_label", "v\x00")),  # was a DataError
    example_with(_set("domains", "description", "\x00")),
    example_with(_set("spark_links", "weight", 5e-324)),
    example_with(_set("spark_links", "weight", -0.0)),
    example_with(_set("sparks", "content_md", "e\u0301 \U0010ffff \u2028 \\.\n\t'\"")),
]


def _with_repeated_key() -> tuple[str, str]:
    """The first spark's `slug` written twice (the last one used to win silently)."""
    name, text = example_with(lambda doc: None)
    first = json.loads(text)["sparks"][0]["slug"]
    return name, text.replace(f'"slug": "{first}"', f'"slug": "lost", "slug": "{first}"', 1)


def _apply(examples):
    def decorate(test):
        for case in reversed(examples):
            test = example(bundle=case)(test)
        return test
    return decorate


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(bundle=mutated_bundle())
@_apply([*AUDIT_CASES, _with_repeated_key()])
def test_validate_and_import_agree_and_what_imports_reads_back_as_validated(url, bundle):
    _, text = bundle
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mutated.json"
        path.write_text(text, encoding="utf-8")
        check_agreement(url, path)
