"""The edges of every column, through a real PostgreSQL: what validates imports and reads back exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from musingly_pipeline.seed_units.files import UNITS_DIR, USERS_FILE, encode
from musingly_pipeline.seed_units.folder import export_folder, import_folder
from musingly_pipeline.seed_units.synthetic import synthetic_unit, synthetic_users
from musingly_pipeline.bundles import SnapshotStore
from musingly_pipeline_tests.bundles.helpers import example_data, parse

ROOT = Path(__file__).resolve().parents[2]
INT4_MAX = 2**31 - 1


@pytest.fixture
def url(make_database) -> str:
    return make_database()


def musingly(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "musingly_pipeline.cli", *args], cwd=ROOT,
                          env={**os.environ, "MUSINGLY_DATABASE_URL": url},
                          capture_output=True, text=True, timeout=120)


def test_the_largest_order_index_imports_and_reads_back_exactly(url):
    data = example_data()
    data["concepts"][0]["order_index"] = INT4_MAX
    data["concept_sparks"][0]["order_index"] = INT4_MAX
    data["spark_links"][0]["weight"] = 5e-324  # the smallest positive double
    bundle = parse(data)
    result = SnapshotStore(url).import_bundle(bundle)
    back = SnapshotStore(url).export_bundle(result.snapshot_id)
    assert {c.slug: c.order_index for c in back.concepts}[data["concepts"][0]["slug"]] == INT4_MAX
    assert max(j.order_index for j in back.concept_sparks) == INT4_MAX
    assert min(link.weight for link in back.spark_links) == 5e-324
    for kind in ("concepts", "concept_sparks", "spark_links"):
        assert sorted(map(repr, getattr(back, kind))) == sorted(map(repr, getattr(bundle, kind)))


@pytest.mark.parametrize("value", [2**31, 2**32 + 7, 2**40, 2**63])
def test_an_order_index_past_the_column_is_refused_by_validate_and_import_alike(url, tmp_path, value):
    """2**31 used to be stored as -2147483648, 2**32 + 7 as 7, and 2**63 to end in a traceback."""
    data = example_data()
    data["concepts"][0]["order_index"] = value
    path = tmp_path / "big.json"
    path.write_text(json.dumps(data), encoding="utf-8")

    checked = musingly(url, "validate", str(path))
    assert checked.returncode == 1
    assert "SCHEMA_INVALID_VALUE at concepts[0].order_index" in checked.stdout
    assert str(INT4_MAX) in checked.stdout

    imported = musingly(url, "import", str(path))
    assert imported.returncode == 1, imported.stdout + imported.stderr
    assert "Traceback" not in imported.stderr and "concepts[0].order_index" in imported.stdout + imported.stderr
    assert SnapshotStore(url).list_snapshots() == [] and SnapshotStore(url).list_imports() == []


def test_seed_numbers_at_the_edges_round_trip_exactly(url, tmp_path):
    document = synthetic_unit(1, lessons=2, exercises=4, steps=2)
    flow_run = document["lessons"][0]["flow_run"]
    flow_run["total_cost"] = 2**53  # an integer in a double precision column, at its exact limit
    flow_run["progress_percentage"] = 1.7976931348623157e308
    flow_run["total_tokens"] = 2**63 - 1
    flow_run["execution_time_ms"] = -(2**63)
    source = tmp_path / "in"
    (source / UNITS_DIR).mkdir(parents=True)
    (source / USERS_FILE).write_bytes(encode(synthetic_users()))
    (source / UNITS_DIR / "edges.json").write_bytes(encode(document))
    result = import_folder(source, url)
    assert result.ok, result.issues()
    out = tmp_path / "out"
    exported = export_folder(out, url)
    [path] = exported.files
    assert path.read_bytes() == encode(document)


@pytest.mark.parametrize("value", [2**53 + 1, 2**1100])
def test_a_seed_number_a_double_cannot_hold_is_refused_before_the_database(url, tmp_path, value):
    """2**53 + 1 used to be stored as 2**53 (and exported so); 2**1100 failed inside the import."""
    document = synthetic_unit(1, lessons=1, exercises=2, steps=1)
    document["lessons"][0]["flow_run"]["total_cost"] = value
    source = tmp_path / "in"
    (source / UNITS_DIR).mkdir(parents=True)
    (source / USERS_FILE).write_bytes(encode(synthetic_users()))
    (source / UNITS_DIR / "big.json").write_bytes(encode(document))
    result = import_folder(source, url)
    [unit] = result.units
    assert not unit.imported
    assert [(i.code, i.path) for i in unit.errors] == [("SCHEMA_INVALID_VALUE", "lessons[0].flow_run.total_cost")]


@pytest.mark.parametrize(("kind", "field"), [("sparks", "content_md"), ("domains", "name"), (None, "version_label")])
def test_a_nul_character_is_refused_by_import_before_the_database(url, tmp_path, kind, field):
    """A NUL used to pass validate and then fail COPY (CharacterNotInRepertoire) with a traceback."""
    data = example_data()
    (data[kind][0] if kind else data)[field] = "with\u0000nul"
    path = tmp_path / "nul.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    where = f"{kind}[0].{field}" if kind else field
    for command in (("validate", str(path)), ("import", str(path))):
        done = musingly(url, *command)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert "SCHEMA_INVALID_VALUE" in done.stdout + done.stderr
        assert where in done.stdout + done.stderr
    assert SnapshotStore(url).list_snapshots() == [] and SnapshotStore(url).list_imports() == []
