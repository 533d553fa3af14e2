"""The seed_units asset and its checks, materialized with real Dagster and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from musingly_pipeline.defs.resources import PostgresResource
from musingly_pipeline.defs.seed_units import SeedDataResource, asset_checks, assets
from musingly_pipeline.seed_units.files import UNITS_DIR, encode
from musingly_pipeline.seed_units.synthetic import synthetic_unit

SEED_DATA = Path(__file__).resolve().parents[2] / "data" / "seed_data"


def run(directory: Path, url: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*assets, *asset_checks],
        resources={"seed_data": SeedDataResource(directory=str(directory)), "postgres": PostgresResource(url=url)},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_example_seed_data_imports_and_round_trips(make_database):
    result = run(SEED_DATA, make_database())
    assert result.success
    [materialization] = result.asset_materializations_for_node("seed_units")
    metadata = materialization.metadata
    assert metadata["units_imported"].value == len(list((SEED_DATA / UNITS_DIR).glob("*.json")))
    assert metadata["units_failed"].value == 0
    found = checks(result)
    assert found["seed_units_package_validation"].passed
    assert found["seed_units_round_trip"].passed
    assert found["seed_units_round_trip"].metadata["files_different"].value == 0


def test_a_broken_unit_fails_the_blocking_check(make_database, tmp_path):
    shutil.copytree(SEED_DATA, tmp_path / "seed")
    broken = synthetic_unit(5, lessons=1, exercises=2)
    broken["lessons"][0]["package"]["quiz_metadata"]["total_items"] = 9
    (tmp_path / "seed" / UNITS_DIR / "broken.json").write_bytes(encode(broken))
    result = run(tmp_path / "seed", make_database())
    [materialization] = result.asset_materializations_for_node("seed_units")
    assert materialization.metadata["units_failed"].value == 1
    assert materialization.metadata["units_imported"].value == 2
    validation = checks(result)["seed_units_package_validation"]
    assert not validation.passed and validation.severity == dg.AssetCheckSeverity.ERROR
    assert "SEED_QUIZ_TOTAL_MISMATCH" in validation.metadata["issues"].value
    assert "units/broken.json: lessons[0].package.quiz_metadata.total_items" in validation.metadata["issues"].value
