"""The load's fast path (COPY in a thread while checking and hashing here) against the plain one."""

from __future__ import annotations

import pytest
from musingly_core.bundle_file import read_bundle
from musingly_core.report import ValidationReport

from musingly_pipeline.bundles import BundleInvalid
from musingly_pipeline.bundles.content_hash import content_hash
from musingly_pipeline.bundles.importing import validate
from musingly_pipeline.bundles.merge import merge_bundles
from musingly_pipeline.bundles.parallel_load import load_and_hash, load_then_hash
from musingly_pipeline.bundles.projections import read_bundle_content
from musingly_pipeline.bundles.session import session
from musingly_pipeline.bundles.synthetic import write_bundle
from musingly_pipeline_tests.bundles.helpers import EXAMPLE, HOTFIX

WAYS = (load_and_hash, load_then_hash)


@pytest.fixture
def url(make_database) -> str:
    return make_database()


def _load(conn, way, bundle, base_id=None, merge_source=None, check=None):
    sid = conn.execute("SELECT create_snapshot_row(%s, %s, NULL, %s)",
                       (bundle.name, f"{way.__name__}-{bundle.version_label}", base_id)).fetchone()[0]
    counts, digest = way(conn, sid, bundle, base_id, merge_source, None, check)
    return sid, counts, digest


@pytest.mark.parametrize("sparks, seed", [(1, 0), (45, 1), (700, 2)])
def test_the_fast_and_the_plain_load_store_the_same_rows_and_hash(url, tmp_path, sparks, seed):
    bundle = read_bundle(write_bundle(tmp_path / "b.json", sparks, seed=seed)).bundle
    with session(url) as conn, conn.transaction(force_rollback=True):
        results = []
        for way in WAYS:
            check = lambda: validate(bundle, ValidationReport(file="b.json"))  # noqa: E731
            sid, counts, digest = _load(conn, way, bundle, check=check)
            results.append((counts, digest, read_bundle_content(conn, sid, bundle)))
    assert results[0] == results[1]
    counts, digest, stored = results[0]
    assert counts == bundle.counts() and content_hash(stored) == digest == content_hash(bundle)


def test_the_fast_and_the_plain_merge_agree(url):
    base, patch = read_bundle(EXAMPLE).bundle, read_bundle(HOTFIX).bundle
    merged = merge_bundles(base, patch)
    with session(url) as conn, conn.transaction(force_rollback=True):
        base_id, _, _ = _load(conn, load_then_hash, base)
        results = []
        for way in WAYS:
            sid, counts, digest = _load(conn, way, merged, base_id, (base, patch))
            results.append((counts, digest, read_bundle_content(conn, sid, merged)))
    assert results[0] == results[1] and content_hash(results[0][2]) == results[0][1] == content_hash(merged)


def test_both_refuse_a_bundle_that_breaks_a_rule_and_keep_nothing(url):
    bundle = read_bundle(EXAMPLE).bundle
    broken = bundle.model_copy(update={"sparks": [*bundle.sparks, bundle.sparks[0]]})  # a duplicate slug
    for way in WAYS:
        with session(url) as conn:
            with pytest.raises(BundleInvalid), conn.transaction():
                _load(conn, way, broken, check=lambda: validate(broken, ValidationReport(file="b.json")))
            assert conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0
