"""A distributed deployment on one machine, as docs/deployment.md starts it: a RabbitMQ virtual host
of its own, a dagster-daemon with `deploy/dagster.celery.yaml` and `deploy/workspace.celery.yaml`, and
`musingly worker` processes, each in its own folder with its own data folder, sharing nothing but
PostgreSQL and the broker. Used by the two-worker test and by bench/distributed.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BROKER_HOST = "127.0.0.1:5672"


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}; "
                           "the distributed tests need RabbitMQ on 127.0.0.1:5672 (rabbitmq-server -detached)")


@contextmanager
def broker_vhost():
    """A RabbitMQ virtual host of its own (no task of another run can reach these workers); its URL."""
    vhost = f"musingly_{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"pyamqp://guest:guest@{BROKER_HOST}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


class Deployment:
    """The processes of one distributed deployment, each started in a session of its own."""

    def __init__(self, root: Path, content_url: str, dagster_url: str, broker: str):
        self.root = root
        self.url = content_url
        self.home = root / "home"
        self.home.mkdir(parents=True)
        shutil.copy(ROOT / "deploy" / "dagster.celery.yaml", self.home / "dagster.yaml")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MUSINGLY_", "DAGSTER_"))}
        self.env.update(MUSINGLY_DEPLOYMENT="distributed", MUSINGLY_DATABASE_URL=content_url,
                        MUSINGLY_DAGSTER_STORAGE_URL=dagster_url, MUSINGLY_CELERY_BROKER=broker,
                        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        self.processes: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        log = (folder / "process.log").open("w")
        process = subprocess.Popen(argv, cwd=folder, env={**self.env, "MUSINGLY_DATA_DIR": str(folder / "data"), **env},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.root / name / "process.log").read_text(errors="replace")

    def start_daemon(self) -> None:
        self._start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "deploy" / "workspace.celery.yaml")],
                    DAGSTER_HOME=str(self.home))

    def start_worker(self, name: str) -> None:
        # PGAPPNAME names the worker's database sessions, so a test can see which worker does what.
        self._start(name, [str(BIN / "musingly"), "worker", "--name", name], PGAPPNAME=f"musingly-{name}")

    def wait_ready(self, names: list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names)
        while pending:
            for name in list(pending):
                process = self.processes[name]
                assert process.poll() is None, f"{name} stopped:\n{self.log(name)[-3000:]}"
                text = self.log(name)
                if (name == "daemon" and "SensorDaemon" in text) or (name != "daemon" and " ready." in text):
                    pending.discard(name)
            assert time.monotonic() < deadline, f"not ready: {sorted(pending)}"
            time.sleep(0.5)

    def push(self, path: Path, name: str) -> dict:
        import json

        done = subprocess.run([str(BIN / "musingly"), "inbox", "push", str(path), "--name", name, "--json"],
                              cwd=self.root, env={**self.env, "MUSINGLY_DATA_DIR": str(self.root / "producer")},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def kill(self, name: str) -> None:
        """SIGKILL the process and everything it started (a machine that dies)."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name, process in self.processes.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill(name)

    @contextmanager
    def instance(self):
        """The deployment's Dagster instance, read from this process."""
        saved = os.environ.get("MUSINGLY_DAGSTER_STORAGE_URL")
        os.environ["MUSINGLY_DAGSTER_STORAGE_URL"] = self.env["MUSINGLY_DAGSTER_STORAGE_URL"]
        try:
            with dg.DagsterInstance.from_config(str(self.home)) as instance:
                yield instance
        finally:
            if saved is None:
                os.environ.pop("MUSINGLY_DAGSTER_STORAGE_URL", None)
            else:
                os.environ["MUSINGLY_DAGSTER_STORAGE_URL"] = saved

    def runs(self) -> list:
        with self.instance() as instance:
            return list(instance.get_runs())

    def wait_runs(self, expected: int, timeout: float = 300) -> list:
        """Wait until at least ``expected`` runs exist and every run has finished."""
        deadline = time.monotonic() + timeout
        while True:
            for name, process in self.processes.items():
                assert process.poll() is None or name.startswith("w"), f"{name} stopped:\n{self.log(name)[-3000:]}"
            runs = self.runs()
            if len(runs) >= expected and all(r.is_finished for r in runs):
                return runs
            assert time.monotonic() < deadline, [(r.tags.get("dagster/partition"), r.status) for r in runs]
            time.sleep(1)

    def step_workers(self, run_id: str) -> dict[str, set[str]]:
        """step key -> the Celery workers that executed it (from the run's engine events)."""
        found: dict[str, set[str]] = {}
        with self.instance() as instance:
            for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
                event = record.dagster_event
                entries = event.engine_event_data.metadata if event and event.engine_event_data else {}
                worker = entries.get("Celery worker")
                if worker is not None:
                    found.setdefault(event.step_key, set()).add(str(worker.value).split("@")[0])
        return found
