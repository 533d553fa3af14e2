"""A small client of the Dagster webserver's GraphQL API: what the UI asks and launches."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

LOCATION = "musingly_pipeline.definitions"  # the code location workspace.yaml and `-m` load
REPOSITORY = "__repository__"

_METADATA = """
    label __typename
    ... on JsonMetadataEntry { jsonString }
    ... on IntMetadataEntry { intValue }
    ... on FloatMetadataEntry { floatValue }
    ... on TextMetadataEntry { text }
    ... on BoolMetadataEntry { boolValue }
    ... on PathMetadataEntry { path }
"""
_RUNS = """
query($filter: RunsFilter) { runsOrError(filter: $filter) { __typename
  ... on Runs { results { runId status jobName tags { key value } } } } }
"""
_EVENTS = """
query($id: ID!) { logsForRun(runId: $id, limit: 5000) { __typename
  ... on EventConnection { events { __typename
    ... on MaterializationEvent { assetKey { path } partition metadataEntries { %s } }
    ... on AssetCheckEvaluationEvent { evaluation { checkName success partition } }
    ... on ExecutionStepFailureEvent { stepKey failureMetadata { description } }
  } } } }
""" % _METADATA
_LAUNCH = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }
"""
_BACKFILL = """
mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) { __typename
  ... on LaunchBackfillSuccess { backfillId }
  ... on PythonError { message } } }
"""
_BACKFILL_STATUS = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status runs(limit: 100) { runId status } } } }
"""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def metadata_value(entry: dict) -> Any:
    for field in ("jsonString", "intValue", "floatValue", "text", "boolValue", "path"):
        if field in entry:
            return json.loads(entry[field]) if field == "jsonString" else entry[field]
    return None


class DagsterUI:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/graphql"

    def query(self, text: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(self.url, data=json.dumps({"query": text, "variables": variables or {}}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            document = json.loads(response.read())
        if document.get("errors"):
            raise AssertionError(document["errors"])
        return document["data"]

    def ready(self) -> bool:
        try:
            data = self.query("{ workspaceOrError { ... on Workspace { locationEntries { name "
                              "locationOrLoadError { __typename } } } } }")
        except (OSError, urllib.error.URLError):
            return False
        entries = data["workspaceOrError"]["locationEntries"]
        return any(e["name"] == LOCATION and e["locationOrLoadError"] and
                   e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries)

    def runs(self, job: str | None = None) -> list[dict]:
        data = self.query(_RUNS, {"filter": {"pipelineName": job} if job else {}})
        runs = data["runsOrError"]["results"]
        for run in runs:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return runs

    def partition_runs(self, partition: str, job: str = "import_bundle") -> list[dict]:
        return [r for r in self.runs(job) if r["tags"].get("dagster/partition") == partition]

    def events(self, run_id: str) -> list[dict]:
        return self.query(_EVENTS, {"id": run_id})["logsForRun"]["events"]

    def materialization(self, run_id: str, asset: str, partition: str | None = None) -> dict:
        found = [e for e in self.events(run_id) if e["__typename"] == "MaterializationEvent"
                 and e["assetKey"]["path"] == [asset] and (partition is None or e["partition"] == partition)]
        assert len(found) == 1, (asset, partition, found)
        return {m["label"]: metadata_value(m) for m in found[0]["metadataEntries"]}

    def checks(self, run_id: str) -> dict[tuple[str, str | None], bool]:
        return {(e["evaluation"]["checkName"], e["evaluation"]["partition"]): e["evaluation"]["success"]
                for e in self.events(run_id) if e["__typename"] == "AssetCheckEvaluationEvent"}

    def failures(self, run_id: str) -> list[str]:
        """What the run page shows first for each failed step: its failure's own description."""
        return [(e["failureMetadata"] or {}).get("description") or "" for e in self.events(run_id)
                if e["__typename"] == "ExecutionStepFailureEvent"]

    def launch(self, job: str, run_config: dict, tags: dict[str, str] | None = None) -> str:
        params = {"selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job},
                  "runConfigData": run_config,
                  "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}}
        result = self.query(_LAUNCH, {"params": params})["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def launch_backfill(self, asset: str, partitions: list[str]) -> str:
        params = {"assetSelection": [{"path": [asset]}], "partitionNames": partitions}
        result = self.query(_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return result["backfillId"]

    def backfill(self, backfill_id: str) -> dict:
        return self.query(_BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]

    def run_status(self, run_id: str) -> str:
        (run,) = [r for r in self.query(_RUNS, {"filter": {"runIds": [run_id]}})["runsOrError"]["results"]]
        return run["status"]


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 120, every: float = 0.5) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
