"""Every validation rule, each with a bundle that breaks it, checked by code and location."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from musingly_core.bundle_file import validate_bundle_file
from musingly_core.report import Severity

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "examples" / "ml-curriculum.json"


@pytest.fixture
def bundle() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def run(tmp_path: Path, data, name: str = "bundle.json"):
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    elif isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_text(json.dumps(data), encoding="utf-8")
    return validate_bundle_file(path).report


def codes(report, severity=Severity.error):
    return [(i.code, i.path) for i in report.issues if i.severity is severity]


def test_example_bundles_are_valid_without_warnings(tmp_path):
    for path in sorted((EXAMPLE.parent).glob("*.json")):
        report = validate_bundle_file(path).report
        assert report.valid, (path, [str(i) for i in report.issues])
        assert not report.warnings, (path, [str(i) for i in report.warnings])


def test_guide_minimal_forms_validate(tmp_path, bundle):
    """name and metadata.source_version may be absent; every entity list may be empty or absent."""
    minimal = {
        "schema_version": "1.0.0",
        "version_label": "v2.1.1-hotfix",
        "metadata": {"generated_at": "2026-01-20T14:00:00+00:00", "source_system": "content-editor"},
        "domains": [],
    }
    report = run(tmp_path, minimal)
    assert report.valid
    assert report.counts["sparks"] == 0
    from musingly_core.bundle_file import read_bundle

    parsed = read_bundle(tmp_path / "bundle.json").bundle
    assert parsed.name == "v2.1.1-hotfix"


@pytest.mark.parametrize(
    ("mutate", "code", "path"),
    [
        (lambda b: b["sparks"][1].update(slug="Self Attention"), "SCHEMA_INVALID_VALUE", "sparks[1].slug"),
        (lambda b: b["sparks"][1].update(slug="self--attention"), "SCHEMA_INVALID_VALUE", "sparks[1].slug"),
        (lambda b: b["domains"][0].update(color="blue"), "SCHEMA_INVALID_VALUE", "domains[0].color"),
        (lambda b: b["domains"][0].update(color="#12345"), "SCHEMA_INVALID_VALUE", "domains[0].color"),
        (lambda b: b["trails"][0].update(difficulty_level="hard"), "SCHEMA_INVALID_VALUE", "trails[0].difficulty_level"),
        (lambda b: b["spark_links"][0].update(link_type="related-ish"), "SCHEMA_INVALID_VALUE", "spark_links[0].link_type"),
        (lambda b: b["spark_links"][0].update(weight=1.5), "SCHEMA_INVALID_VALUE", "spark_links[0].weight"),
        (lambda b: b["concept_links"][0].update(weight=-0.1), "SCHEMA_INVALID_VALUE", "concept_links[0].weight"),
        (lambda b: b["concepts"][0].update(order_index=-1), "SCHEMA_INVALID_VALUE", "concepts[0].order_index"),
        (lambda b: b["concepts"][0].update(order_index=1.5), "SCHEMA_WRONG_TYPE", "concepts[0].order_index"),
        (lambda b: b["concepts"][0].update(order_index="3"), "SCHEMA_WRONG_TYPE", "concepts[0].order_index"),
        (lambda b: b["domains"][0].update(is_published="yes"), "SCHEMA_WRONG_TYPE", "domains[0].is_published"),
        (lambda b: b["sparks"][2].update(title=42), "SCHEMA_WRONG_TYPE", "sparks[2].title"),
        (lambda b: b.update(sparks={"a": 1}), "SCHEMA_WRONG_TYPE", "sparks"),
        (lambda b: b["sparks"][0].pop("content_md"), "SCHEMA_MISSING_FIELD", "sparks[0].content_md"),
        (lambda b: b.pop("metadata"), "SCHEMA_MISSING_FIELD", "metadata"),
        (lambda b: b["sparks"][3].update(titel="typo"), "SCHEMA_UNKNOWN_FIELD", "sparks[3].titel"),
        (lambda b: b.update(spark_link=[]), "SCHEMA_UNKNOWN_FIELD", "spark_link"),
        (lambda b: b["metadata"].update(generated_at="yesterday"), "SCHEMA_INVALID_VALUE", "metadata.generated_at"),
        (lambda b: b.update(schema_version="2.0.0"), "SCHEMA_VERSION_UNSUPPORTED", "schema_version"),
    ],
)
def test_contract_rules(tmp_path, bundle, mutate, code, path):
    mutate(bundle)
    report = run(tmp_path, bundle)
    assert not report.valid
    assert (code, path) in codes(report)


def test_unknown_field_suggests_the_right_name(tmp_path, bundle):
    bundle["sparks"][3]["titel"] = bundle["sparks"][3].pop("title")
    report = run(tmp_path, bundle)
    messages = {i.path: i.message for i in report.errors}
    assert "did you mean `title`" in messages["sparks[3].titel"]
    assert messages["sparks[3].title"].startswith("required field `title` is missing")


def test_unsupported_schema_version_names_the_supported_ones(tmp_path, bundle):
    bundle["schema_version"] = "9.9.9"
    (issue,) = run(tmp_path, bundle).errors
    assert "'9.9.9'" in issue.message and "1.0.0" in issue.message


def test_bad_slug_message_suggests_a_fixed_slug(tmp_path, bundle):
    bundle["sparks"][1]["slug"] = "Self Attention"
    (issue,) = [i for i in run(tmp_path, bundle).errors if i.path == "sparks[1].slug"]
    assert "`self-attention`" in issue.message


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda b: b["trails"][0].update(domain_slug="machine-lerning"), "trails[0].domain_slug"),
        (lambda b: b["concepts"][1].update(trail_slug="nope"), "concepts[1].trail_slug"),
        (lambda b: b["concept_sparks"][1].update(spark_slug="multi-head-atention"), "concept_sparks[1].spark_slug"),
        (lambda b: b["concept_sparks"][0].update(concept_slug="attention"), "concept_sparks[0].concept_slug"),
        (lambda b: b["spark_beacons"][0].update(beacon_slug="transformer"), "spark_beacons[0].beacon_slug"),
        (lambda b: b["spark_beacons"][1].update(spark_slug="unknown-spark"), "spark_beacons[1].spark_slug"),
        (lambda b: b["spark_links"][0].update(source_slug="linear-algebra"), "spark_links[0].source_slug"),
        (lambda b: b["spark_links"][1].update(target_slug="multi-head"), "spark_links[1].target_slug"),
        (lambda b: b["concept_links"][0].update(target_slug="transformer-decoder"), "concept_links[0].target_slug"),
    ],
)
def test_every_reference_resolves(tmp_path, bundle, mutate, path):
    mutate(bundle)
    report = run(tmp_path, bundle)
    assert ("BUNDLE_UNKNOWN_REFERENCE", path) in codes(report)


def test_unknown_slug_suggests_the_closest(tmp_path, bundle):
    bundle["concept_sparks"][1]["spark_slug"] = "multi-head-atention"
    (issue,) = run(tmp_path, bundle).errors
    assert "did you mean `multi-head-attention`?" in issue.message


def test_the_guide_snippet_without_its_missing_concept_is_caught(tmp_path, bundle):
    """The guide's concept link points at `transformer-encoder`, which its snippets never define."""
    bundle["concepts"] = [c for c in bundle["concepts"] if c["slug"] != "transformer-encoder"]
    bundle["concept_sparks"] = [r for r in bundle["concept_sparks"] if r["concept_slug"] != "transformer-encoder"]
    assert ("BUNDLE_UNKNOWN_REFERENCE", "concept_links[0].target_slug") in codes(run(tmp_path, bundle))


@pytest.mark.parametrize("kind", ["domains", "trails", "concepts", "sparks", "beacons"])
def test_slugs_are_unique_per_type(tmp_path, bundle, kind):
    bundle[kind].append(copy.deepcopy(bundle[kind][0]))
    report = run(tmp_path, bundle)
    assert ("BUNDLE_DUPLICATE_SLUG", f"{kind}[{len(bundle[kind]) - 1}].slug") in codes(report)
    assert f"{kind}[0]" in report.errors[0].message


def test_same_slug_in_different_types_is_fine(tmp_path, bundle):
    bundle["beacons"][0]["slug"] = "attention-mechanisms"  # also a concept slug
    bundle["spark_beacons"][0]["beacon_slug"] = "attention-mechanisms"
    assert run(tmp_path, bundle).valid


@pytest.mark.parametrize(("kind", "code"), [
    ("concept_sparks", "BUNDLE_DUPLICATE_JUNCTION"),
    ("spark_beacons", "BUNDLE_DUPLICATE_JUNCTION"),
    ("spark_links", "BUNDLE_DUPLICATE_LINK"),
    ("concept_links", "BUNDLE_DUPLICATE_LINK"),
])
def test_junctions_and_links_are_not_duplicated(tmp_path, bundle, kind, code):
    bundle[kind].append(copy.deepcopy(bundle[kind][0]))
    assert (code, f"{kind}[{len(bundle[kind]) - 1}]") in codes(run(tmp_path, bundle))


@pytest.mark.parametrize(("kind", "slug"), [("spark_links", "multi-head-attention"),
                                             ("concept_links", "positional-encoding")])
def test_no_self_links(tmp_path, bundle, kind, slug):
    bundle[kind].append({"source_slug": slug, "target_slug": slug})
    assert ("BUNDLE_SELF_LINK", f"{kind}[{len(bundle[kind]) - 1}]") in codes(run(tmp_path, bundle))


def test_spark_cycle_is_reported_with_its_path(tmp_path, bundle):
    bundle["spark_links"].append({"source_slug": "multi-head-attention", "target_slug": "linear-algebra-basics"})
    report = run(tmp_path, bundle)
    (issue,) = report.errors
    assert issue.code == "BUNDLE_CYCLE"
    assert issue.path == "spark_links[2]"
    assert ("`linear-algebra-basics` -> `self-attention-explained` -> `multi-head-attention` "
            "-> `linear-algebra-basics`") in issue.message


def test_concept_cycle_is_reported(tmp_path, bundle):
    bundle["concept_links"].append({"source_slug": "transformer-encoder", "target_slug": "attention-mechanisms"})
    assert ("BUNDLE_CYCLE", "concept_links[1]") in codes(run(tmp_path, bundle))


def test_warnings_do_not_invalidate(tmp_path, bundle):
    bundle["sparks"].append({"title": "Loose", "slug": "loose-spark", "content_md": "x"})
    bundle["concepts"].append({"trail_slug": "transformer-mastery", "title": "Empty", "slug": "empty-concept"})
    bundle["domains"][0]["is_published"] = False
    bundle["trails"][0]["is_published"] = True
    report = run(tmp_path, bundle)
    assert report.valid
    assert sorted(codes(report, Severity.warning)) == [
        ("BUNDLE_EMPTY_CONCEPT", "concepts[3]"),
        ("BUNDLE_ORPHAN_SPARK", "sparks[4]"),
        ("BUNDLE_PUBLISHED_IN_UNPUBLISHED", "trails[0].is_published"),
    ]


# --- bad files -------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    report = validate_bundle_file(tmp_path / "nope.json").report
    assert codes(report) == [("FILE_NOT_FOUND", "")]
    assert "nope.json" in report.errors[0].message


def test_directory_is_unreadable(tmp_path):
    assert codes(validate_bundle_file(tmp_path).report) == [("FILE_UNREADABLE", "")]


def test_unreadable_file(tmp_path):
    import os

    path = tmp_path / "locked.json"
    path.write_text("{}")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything; a dangling symlink is unreadable for everyone
        path.chmod(0o644)
        path = tmp_path / "dangling.json"
        path.symlink_to(tmp_path / "gone" / "x.json")
    report = validate_bundle_file(path).report
    assert codes(report)[0][0] in ("FILE_UNREADABLE", "FILE_NOT_FOUND")


@pytest.mark.parametrize("content", [b"", b"   \n"])
def test_empty_file(tmp_path, content):
    assert codes(run(tmp_path, content)) == [("FILE_EMPTY", "")]


def test_not_utf8_names_line_and_column(tmp_path, bundle):
    text = json.dumps(bundle, indent=2).encode()
    data = text.replace(b"Linear Algebra Basics", b"Linear Alg\xe9bra Basics", 1)
    (issue,) = run(tmp_path, data).errors
    assert issue.code == "FILE_NOT_UTF8"
    line = text[: text.index(b"Linear Algebra Basics")].count(b"\n") + 1
    assert f"line {line}," in issue.message


def test_truncated_json_names_line_and_column(tmp_path, bundle):
    text = json.dumps(bundle, indent=2)
    (issue,) = run(tmp_path, text[: len(text) // 2]).errors
    assert issue.code == "JSON_INVALID"
    assert "line" in issue.message and "column" in issue.message and "truncated" in issue.message


def test_syntax_error_names_line(tmp_path):
    (issue,) = run(tmp_path, '{\n  "schema_version": "1.0.0",\n  "version_label": v1\n}').errors
    assert issue.code == "JSON_INVALID" and "line 3" in issue.message


@pytest.mark.parametrize(("content", "kind"), [("[1, 2]", "array"), ('"bundle"', "string"), ("42", "number")])
def test_top_level_must_be_an_object(tmp_path, content, kind):
    (issue,) = run(tmp_path, content).errors
    assert issue.code == "BUNDLE_NOT_OBJECT" and f"JSON {kind}" in issue.message


def test_byte_order_mark_is_accepted(tmp_path, bundle):
    assert run(tmp_path, b"\xef\xbb\xbf" + json.dumps(bundle).encode()).valid


def test_fifty_megabyte_content_is_accepted(tmp_path, bundle):
    bundle["sparks"][0]["content_md"] = "# Big\n" + "x" * (50 * 2**20)
    report = run(tmp_path, bundle)
    assert report.valid


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    from musingly_core import bundle_file

    monkeypatch.setattr(bundle_file, "MAX_BUNDLE_BYTES", 10)
    (issue,) = run(tmp_path, '{"schema_version": "1.0.0"}').errors
    assert issue.code == "FILE_TOO_LARGE" and "--merge" in issue.message


def test_many_errors_are_all_reported(tmp_path, bundle):
    for spark in bundle["sparks"]:
        spark["slug"] = spark["slug"].upper()
    assert len(run(tmp_path, bundle).errors) == len(bundle["sparks"])


def test_literal_field_types_follow_the_public_enums():
    from typing import get_args

    from musingly_core.models import Difficulty, DifficultyLevel, Link, LinkType

    assert get_args(Difficulty) == tuple(d.value for d in DifficultyLevel)
    assert get_args(Link) == tuple(k.value for k in LinkType)


def test_an_unknown_link_type_names_the_allowed_values(tmp_path, bundle):
    bundle["spark_links"][0]["link_type"] = "requires"
    report = run(tmp_path, bundle)
    [issue] = [i for i in report.issues if i.severity is Severity.error]
    assert issue.path == "spark_links[0].link_type"
    assert "'prerequisite', 'recommended' or 'extends'" in issue.message


@pytest.mark.parametrize("sparks", [10, 6_000])  # under and over the size whose digest is made in a thread
def test_read_bundle_reports_the_files_sha256(tmp_path, sparks):
    import hashlib

    from musingly_core.bundle_file import _HASH_ASIDE_BYTES, read_bundle
    from musingly_pipeline.bundles.synthetic import write_bundle

    path = write_bundle(tmp_path / "b.json", sparks, content_bytes=1500)
    data = path.read_bytes()
    assert (len(data) >= _HASH_ASIDE_BYTES) == (sparks > 10)
    result = read_bundle(path)
    assert result.valid and len(result.bundle.sparks) == sparks
    assert (result.size, result.sha256) == (len(data), hashlib.sha256(data).hexdigest())
