"""The Dagster face as an operator meets it: `musingly dagster -- dev` (webserver and daemon) as a
subprocess on fresh databases, bundles dropped into its inbox while a snapshot is current, jobs and a
backfill launched through the webserver's GraphQL API as the UI launches them, then Ctrl-C.

One module-scoped deployment; the tests run in file order, each a step of an operator's session.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from musingly_pipeline.signals import open_store
from musingly_pipeline.signals.lifecycle import current_snapshot_at
from musingly_pipeline.bundles import SnapshotStore
from musingly_pipeline.storage.database import sqlalchemy_url
from musingly_pipeline_tests.operations.graphql import FINISHED, DagsterUI, wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "data" / "examples"
# A writer may pause this long without its half-written file being imported. Longer than a sensor
# tick (5 s): under the old rule (same size on two ticks) a 6 s pause was taken as finished.
SETTLE_SECONDS = 8
WRITER_PAUSE = 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deployment:
    def __init__(self, tmp: Path, content_url: str, dagster_url: str):
        self.tmp = tmp
        self.data = tmp / "data"
        self.inbox = self.data / "inbox"
        (self.inbox / "incremental").mkdir(parents=True)
        shutil.copytree(ROOT / "data" / "signals" / "incoming", self.data / "signals" / "incoming")
        home = tmp / "home"
        home.mkdir()
        # The shipped instance file, with its two local folders moved into this test's folder.
        shipped = (ROOT / "dagster.yaml").read_text()
        assert "data/.dagster/storage" in shipped and "data/.dagster/logs" in shipped
        (home / "dagster.yaml").write_text(shipped.replace("data/.dagster", str(tmp / "dagster")))
        self.url = content_url
        self.port = free_port()
        self.env = dict(os.environ, MUSINGLY_DATABASE_URL=content_url, MUSINGLY_DAGSTER_STORAGE_URL=dagster_url,
                        MUSINGLY_DATA_DIR=str(self.data), MUSINGLY_INBOX_SETTLE_SECONDS=str(SETTLE_SECONDS),
                        DAGSTER_HOME=str(home))
        self.ui = DagsterUI(self.port)
        self.log = open(tmp / "dagster-dev.log", "w")
        musingly = Path(sys.executable).with_name("musingly")
        self.process = subprocess.Popen([str(musingly), "dagster", "--", "dev", "-h", "127.0.0.1", "-p", str(self.port)],
                                        env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.seen: dict[int, psutil.Process] = {}

    def watch(self) -> None:
        """Remember every process the deployment has started (to check that Ctrl-C ends them all)."""
        try:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.seen.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass

    def tail(self) -> str:
        self.log.flush()
        return (self.tmp / "dagster-dev.log").read_text()[-4000:]

    def drop(self, source: Path, name: str | None = None, data: dict | None = None) -> float:
        target = self.inbox / (name or source.name)
        tmp = target.with_name(target.name + ".part")  # the documented safe way: write, then rename
        if data is None:
            shutil.copy(source, tmp)
        else:
            tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(target)
        return time.monotonic()

    def finished_runs(self, partition: str, count: int = 1, timeout: float = 180) -> list[dict]:
        def done():
            self.watch()
            assert self.process.poll() is None, self.tail()
            runs = self.ui.partition_runs(partition)
            return runs if len(runs) >= count and all(r["status"] in FINISHED for r in runs) else None
        return wait_for(f"{count} finished run(s) of {partition}", done, timeout=timeout)

    def stop(self, sig=signal.SIGINT) -> int:
        self.watch()
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=120)
        finally:
            self.log.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, make_database):
    tmp = tmp_path_factory.mktemp("operations")
    deployment = Deployment(tmp, make_database(), sqlalchemy_url(make_database()))
    try:
        wait_for("the webserver and its code location", lambda: deployment.process.poll() is None and deployment.ui.ready(),
                 timeout=180)
        deployment.watch()
        yield deployment
    finally:
        if deployment.process.poll() is None:
            deployment.process.kill()
        for proc in deployment.seen.values():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass


def _variant(label: str, **spark_changes) -> dict:
    data = json.loads((EXAMPLES / "platform-foundations.json").read_text())
    data["version_label"] = label
    for index, changes in spark_changes.items():
        data["sparks"][int(index[1:])].update(changes)
    return data


def test_a_dropped_bundle_becomes_a_ready_draft_and_is_promoted_from_the_launchpad(deployment, capsys):
    dropped = deployment.drop(EXAMPLES / "platform-foundations.json")
    (run,) = deployment.finished_runs("platform-foundations.json")
    ready = time.monotonic() - dropped
    assert run["status"] == "SUCCESS", deployment.ui.failures(run["runId"])
    [snapshot] = SnapshotStore(deployment.url).list_snapshots()
    assert (snapshot.status, snapshot.version_label) == ("ready", "v2.2.0")
    with capsys.disabled():
        print(f"\n  drop-to-ready of platform-foundations.json with the daemon: {ready:.1f}s "
              f"(settle {SETTLE_SECONDS}s, sensor every 5s)")

    promote = deployment.ui.launch("promote_snapshot", {"ops": {"promote_op": {"config": {"latest": True}}}})
    wait_for("promote_snapshot", lambda: deployment.ui.run_status(promote) in FINISHED)
    assert deployment.ui.run_status(promote) == "SUCCESS"
    assert SnapshotStore(deployment.url).current_snapshot().id == snapshot.id
    with open_store(deployment.data / "signals") as store:  # the deployment's configured signal store
        assert current_snapshot_at(store, SnapshotStore(deployment.url).current_snapshot().promoted_at).snapshot_id == str(snapshot.id)


def test_several_files_dropped_while_a_snapshot_is_current(deployment):
    current = SnapshotStore(deployment.url).current_snapshot()
    changed = _variant("v2.2.1", s0={"summary": "A sharper summary"}, s1={"title": "A new title"})
    deployment.drop(EXAMPLES / "platform-foundations.json", "platform-foundations-v2.2.1.json", changed)
    broken = json.loads((EXAMPLES / "ml-curriculum.json").read_text())
    broken["sparks"][1]["slug"] = "Not A Slug"
    deployment.drop(EXAMPLES / "ml-curriculum.json", "broken.json", broken)
    deployment.drop(EXAMPLES / "incremental" / "hotfix-v2.1.1.json", "incremental/hotfix-v2.1.1.json")
    # the same content again, under the same name: a new modification time, nothing new to import
    redropped = deployment.drop(EXAMPLES / "platform-foundations.json")
    # a producer that pauses mid-file for longer than a sensor tick, but less than the settle time
    slow = _variant("v2.3.0", s2={"summary": "written slowly"})
    text = json.dumps(slow, indent=2)

    def write_slowly():
        with open(deployment.inbox / "slow.json", "w") as f:
            f.write(text[: len(text) // 2])
            f.flush()
            time.sleep(WRITER_PAUSE)
            f.write(text[len(text) // 2:])

    writer = threading.Thread(target=write_slowly)
    writer.start()

    (run,) = deployment.finished_runs("platform-foundations-v2.2.1.json")
    assert run["status"] == "SUCCESS", deployment.ui.failures(run["runId"])
    diff = deployment.ui.materialization(run["runId"], "draft_snapshot")["diff_against_current"]
    assert diff["from"]["id"] == str(current.id)
    assert diff["summary"]["sparks"] == {"added": 0, "removed": 0, "changed": 2}
    assert diff["changed_fields"]["sparks"] == {changed["sparks"][0]["slug"]: ["summary"],
                                               changed["sparks"][1]["slug"]: ["title"]}

    (bad,) = deployment.finished_runs("broken.json")
    assert bad["status"] == "FAILURE"
    checks = deployment.ui.checks(bad["runId"])
    assert checks[("schema", "broken.json")] is False
    assert [name for (name, _), passed in checks.items() if not passed] == ["schema"]
    (message,) = deployment.ui.failures(bad["runId"])
    assert message.startswith("IMPORT_BUNDLE_INVALID: broken.json is invalid: blocking check schema failed") and "sparks[1].slug" in message

    (merged,) = deployment.finished_runs("incremental/hotfix-v2.1.1.json")
    assert merged["status"] == "SUCCESS", deployment.ui.failures(merged["runId"])
    draft = deployment.ui.materialization(merged["runId"], "draft_snapshot")
    assert draft["merged"] is True and draft["rows_sparks"] == current.entity_counts["sparks"]

    writer.join()
    (slow_run,) = deployment.finished_runs("slow.json", timeout=240)
    assert slow_run["status"] == "SUCCESS", deployment.ui.failures(slow_run["runId"])
    assert deployment.ui.materialization(slow_run["runId"], "draft_snapshot")["version_label"] == "v2.3.0"

    # two more sensor ticks after the re-drop settled: still one run of that file, and one of slow.json
    wait_for("the re-dropped file to settle", lambda: time.monotonic() - redropped > SETTLE_SECONDS + 12, timeout=60)
    assert len(deployment.ui.partition_runs("platform-foundations.json")) == 1
    assert len(deployment.ui.partition_runs("slow.json")) == 1
    labels = sorted(s.version_label for s in SnapshotStore(deployment.url).list_snapshots())
    assert labels == ["v2.1.1-hotfix", "v2.2.0", "v2.2.1", "v2.3.0"]  # nothing from broken.json
    assert SnapshotStore(deployment.url).list_imports(status="failed") == []


def test_a_shrinking_bundle_is_refused_with_its_message_first_and_allowed_from_the_launchpad(deployment):
    deployment.drop(EXAMPLES / "ml-curriculum.json")
    (run,) = deployment.finished_runs("ml-curriculum.json")
    assert run["status"] == "FAILURE"
    (message,) = deployment.ui.failures(run["runId"])
    assert message.startswith("IMPORT_SHRINK_REFUSED: this bundle has 4 spark(s) but the current snapshot v2.2.0 has 23")
    rerun = deployment.ui.launch("import_bundle", {"ops": {"bundle_import": {"config": {"allow_shrink": True}}}},
                                 tags={"dagster/partition": "ml-curriculum.json"})
    wait_for("the re-launched import", lambda: deployment.ui.run_status(rerun) in FINISHED)
    assert deployment.ui.run_status(rerun) == "SUCCESS", deployment.ui.failures(rerun)
    assert deployment.ui.materialization(rerun, "draft_snapshot")["rows_sparks"] == 4


def test_a_signal_backfill_over_a_date_range_reports_each_day(deployment):
    days = ["2026-02-03", "2026-02-04", "2026-02-05", "2026-02-06"]
    backfill = deployment.ui.launch_backfill("signal_partitions", days)
    status = wait_for("the backfill", lambda: (b := deployment.ui.backfill(backfill))["status"] != "REQUESTED"
                      and b["runs"] and all(r["status"] in FINISHED for r in b["runs"]) and b, timeout=180)
    assert status["status"] == "COMPLETED_SUCCESS", status
    (run,) = status["runs"]  # a single-run backfill policy: one run for the range
    per_day = {day: deployment.ui.materialization(run["runId"], "signal_partitions", day) for day in days}
    assert per_day["2026-02-03"]["status"] == "nothing to ingest: no incoming file for this day"
    assert per_day["2026-02-03"]["signals_written"] == 0
    written = {day: per_day[day]["signals_written"] for day in days[1:]}
    assert written == {"2026-02-04": 12, "2026-02-05": 16, "2026-02-06": 20}
    checks = deployment.ui.checks(run["runId"])
    for day in days:
        assert checks[("no_duplicate_ids", day)] and checks[("no_unreadable_lines", day)]


def test_every_run_ended_and_ctrl_c_stops_everything(deployment):
    runs = deployment.ui.runs()
    assert runs and all(r["status"] in FINISHED for r in runs), [(r["jobName"], r["status"]) for r in runs]
    deployment.watch()
    started = dict(deployment.seen)
    assert len(started) >= 3  # dagster dev, its webserver and daemon, and code servers
    code = deployment.stop(signal.SIGINT)
    assert code in (0, 130), deployment.tail()
    try:
        wait_for("every process to exit", lambda: not any(_alive(p) for p in started.values()), timeout=30)
    except AssertionError:
        alive = [(p.pid, _cmdline(p)) for p in started.values() if _alive(p)]
        raise AssertionError(f"still running after Ctrl-C: {alive}") from None


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())[:200]
    except psutil.Error:
        return "?"
