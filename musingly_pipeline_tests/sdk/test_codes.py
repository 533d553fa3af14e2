"""Issue codes: the SDK's bundle codes on their own, the pipeline's registered beside them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from musingly_core.report import CODES, Category, Issue, Severity, error, register_codes
from musingly_pipeline.errors import PIPELINE_CODES, PipelineCategory


def test_musingly_core_alone_knows_only_the_bundle_codes():
    """Imported without musingly_pipeline, the SDK's registry holds the bundle's codes only."""
    result = subprocess.run(
        [sys.executable, "-c", "import json, sys, musingly_core.report as r; "
         "print(json.dumps(sorted(r.CODES))); print('musingly_pipeline' in sys.modules)"],
        capture_output=True, text=True, timeout=60, check=True)
    codes, pipeline_loaded = result.stdout.splitlines()
    assert pipeline_loaded == "False"
    assert not {c for c in json.loads(codes) if c.startswith(("SEED_", "BATCH_", "ITEM_", "SIGNAL_"))}
    assert {"BUNDLE_CYCLE", "SCHEMA_WRONG_TYPE", "FILE_NOT_FOUND"} <= set(json.loads(codes))


def test_the_pipelines_codes_are_registered_when_the_pipeline_is_imported():
    assert PIPELINE_CODES.items() <= CODES.items()
    issue = error("BATCH_NOT_FOUND", "", "batch 7 does not exist")
    assert issue.category is PipelineCategory.batches and issue.category.value == "batches"
    assert Issue("SEED_DUPLICATE_ID", Severity.error, "lessons[1].id", "x").category is Category.uniqueness


def test_registering_is_idempotent_and_refuses_a_second_meaning():
    register_codes({"BUNDLE_CYCLE": Category.graph})
    with pytest.raises(ValueError, match="BUNDLE_CYCLE"):
        register_codes({"BUNDLE_CYCLE": PipelineCategory.signals})
    assert CODES["BUNDLE_CYCLE"] is Category.graph
    with pytest.raises(ValueError, match="unknown issue code 'NO_SUCH_CODE'"):
        error("NO_SUCH_CODE", "", "x")
