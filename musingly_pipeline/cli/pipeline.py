"""`musingly pipeline`: the main job, end to end, through Dagster on the project's instance."""

from __future__ import annotations

import os
import sys

from musingly_pipeline.cli.common import CommandError, add_command
from musingly_pipeline.cli.dagster_cmd import dagster_environment
from musingly_pipeline import settings
from musingly_pipeline.storage.database import PROJECT_ROOT

# The complete example: v2.2.0 contains the guide's v2.1.0 content, so importing it onto either
# is never a shrink, and a second run finds the same content hash and reuses the snapshot.
MAIN_BUNDLE = "platform-foundations.json"
# The runs' full event logs stay in the instance (`musingly dagster -- dev`); the terminal gets warnings.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def register(commands) -> None:
    p = add_command(
        commands, "pipeline", "Run the main job end to end on the configured database.",
        f"Imports data/examples/{MAIN_BUNDLE} through the Dagster `import_bundle` job (stage,\n"
        "validate with blocking checks, draft snapshot) and promotes it, recording runs in the\n"
        "Dagster instance in PostgreSQL (dagster.yaml). Safe to run again: the same content reuses\n"
        "its snapshot.",
        "musingly pipeline", _pipeline,
    )
    p.add_argument("--no-promote", action="store_true", help="leave the imported snapshot as a draft")


def _pipeline(args) -> int:
    os.environ.update(dagster_environment())
    os.chdir(PROJECT_ROOT)  # dagster.yaml's artifact folders are relative to the project
    import dagster as dg

    from musingly_pipeline.definitions import defs
    from musingly_pipeline.defs.bundles.partitions import bundle_partitions

    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(bundle_partitions.name, [MAIN_BUNDLE])
        job = defs.resolve_job_def("import_bundle")
        result = job.execute_in_process(
            partition_key=MAIN_BUNDLE, instance=instance, raise_on_error=False,
            run_config={"ops": {"promoted_snapshot": {"config": {"promote": not args.no_promote}}}, **QUIET},
        )
        checks = _checks(result, "import_bundle")
        (draft,) = [e.materialization.metadata for e in result.get_asset_materialization_events()
                    if e.asset_key.to_user_string() == "draft_snapshot"]
        state = "promoted to current" if not args.no_promote else "ready draft"
        print(f"bundle {MAIN_BUNDLE}: snapshot {draft['snapshot_id'].value} ({draft['version_label'].value}) {state}"
              f"{', reused' if draft['reused_existing_snapshot'].value else ''}; "
              f"checks passed: {sum(checks.values())}/{len(checks)}; run {result.run_id}")
        print("  " + ", ".join(f"{v.value} {k[len('rows_'):]}" for k, v in draft.items() if k.startswith("rows_")))

        seeds = defs.resolve_job_def("import_seed_units").execute_in_process(instance=instance, raise_on_error=False,
                                                                           run_config=QUIET)
        _report(seeds, "import_seed_units", "seed_units")

        ingest = defs.resolve_job_def("ingest_signals")
        for day in _signal_days():
            run = ingest.execute_in_process(partition_key=day, instance=instance, raise_on_error=False,
                                            run_config=QUIET)
            _report(run, "ingest_signals", "signal_partitions", label=f"signals {day}")
    sys.stdout.flush()
    return 0


def _checks(result, job: str) -> dict[str, bool]:
    """Check outcomes of a run; a failed run is a CommandError naming the failed checks."""
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    failed = sorted(name for name, passed in checks.items() if not passed)
    if not result.success:
        raise CommandError(f"{job} run {result.run_id} failed"
                           + (f"; failed checks: {', '.join(failed)}" if failed else "")
                           + "; see `musingly dagster -- dev` for the run's logs")
    return checks


def _signal_days() -> list[str]:
    """The UTC days that have incoming signal files (`YYYY-MM-DD*.jsonl`)."""
    incoming = settings.signal_incoming_dir()
    return sorted({p.name[:10] for p in incoming.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*.jsonl")})


def _report(result, job: str, asset: str, label: str | None = None) -> None:
    checks = _checks(result, job)
    (event,) = result.asset_materializations_for_node(asset)
    numbers = {k: v.value for k, v in event.metadata.items()
               if isinstance(v.value, (int, float)) and not isinstance(v.value, bool)}
    print(f"{label or asset}: " + ", ".join(f"{k} {v}" for k, v in numbers.items())
          + f"; checks passed: {sum(checks.values())}/{len(checks)}; run {result.run_id}")
