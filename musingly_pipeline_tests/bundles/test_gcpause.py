"""The collector pause must always end, including on errors and when nested."""

from __future__ import annotations

import gc

import pytest

from musingly_core.bundle_file import validate_bundle_file
from musingly_core.gcpause import gc_paused


def test_pause_ends_after_nesting_and_errors():
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not re-enable what the outer paused
    assert gc.isenabled()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_validation_leaves_the_collector_on(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": "1.0.0", "sparks": [{"slug": "Not A Slug"}]}', encoding="utf-8")
    assert not validate_bundle_file(bad).valid
    assert gc.isenabled()
