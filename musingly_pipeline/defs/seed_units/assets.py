"""The ``seed_units`` asset: the units and users of a seed folder, imported into PostgreSQL.

The asset and its checks call :class:`~musingly_pipeline.seed_units.SeedUnitStore`, as ``musingly seed`` does.
"""

from pathlib import Path

import dagster as dg

from musingly_core.report import Severity

from musingly_pipeline.defs.resources import PostgresResource
from musingly_pipeline.seed_units import SeedUnitStore
from musingly_pipeline.storage.database import PROJECT_ROOT
from musingly_pipeline.defs.metadata import markdown_table


class SeedDataResource(dg.ConfigurableResource):
    """Where the seed folder is (relative paths are from the project folder)."""

    directory: str = "data/seed_data"

    def folder(self) -> Path:
        path = Path(self.directory)
        return path if path.is_absolute() else PROJECT_ROOT / path


@dg.asset(group_name="seed_units", kinds={"postgres"})
def seed_units(seed_data: SeedDataResource, postgres: PostgresResource) -> dg.MaterializeResult:
    """One row per unit in ``units`` (with its lessons, packages, flow history, resources and
    conversations in their tables), imported from the seed folder; a broken unit fails alone."""
    result = SeedUnitStore(postgres.get_url()).import_folder(seed_data.folder())
    imported = [u for u in result.units if u.imported]
    return dg.MaterializeResult(metadata={
        "directory": str(result.directory),
        "units_imported": len(imported),
        "units_failed": len(result.units) - len(imported),
        "units_new": sum(1 for u in imported if u.created),
        "users_imported": result.users.counts.get("users", 0) if result.users and result.users.imported else 0,
        "lessons": sum(u.counts.get("lessons", 0) for u in imported),
        "issues": dg.MetadataValue.md(markdown_table(result.issues())),
    })


@dg.asset_check(asset=seed_units, blocking=True, description="Every seed file passes package validation.")
def seed_units_package_validation(seed_data: SeedDataResource, postgres: PostgresResource) -> dg.AssetCheckResult:
    issues = SeedUnitStore(postgres.get_url()).validate_folder(seed_data.folder())
    errors = [i for i in issues if i.severity is Severity.error]
    return dg.AssetCheckResult(
        passed=not errors,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"errors": len(errors), "issues": dg.MetadataValue.md(markdown_table(errors))},
    )


@dg.asset_check(
    asset=seed_units,
    description="Exporting what was imported reproduces every seed file byte for byte "
                "(files not in the exporter's canonical form differ by design: a warning).",
)
def seed_units_round_trip(seed_data: SeedDataResource, postgres: PostgresResource) -> dg.AssetCheckResult:
    result = SeedUnitStore(postgres.get_url()).round_trip(seed_data.folder())
    rows = "\n".join(f"- {d.describe()}" for d in result.differences[:50])
    return dg.AssetCheckResult(
        passed=result.exact,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "files_compared": result.compared,
            "files_different": len(result.differences),
            "differences": dg.MetadataValue.md(rows or "None: every file round-trips exactly."),
        },
    )
