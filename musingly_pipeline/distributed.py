"""The code location of a distributed deployment: the same definitions, steps run by Celery workers.

A distributed deployment's workspace file loads this module instead of
``musingly_pipeline.definitions`` (``deploy/workspace.celery.yaml``); every job then runs its steps on
``dagster-celery`` workers (``musingly worker``), which share nothing but PostgreSQL and the broker.
The broker is ``MUSINGLY_CELERY_BROKER``, read when a run starts. See ``docs/deployment.md``.
"""

from dagster_celery import celery_executor

from musingly_pipeline.definitions import build_definitions
from musingly_pipeline.settings import CELERY_BROKER_ENV

# Celery settings the executor and the workers share (``musingly worker`` writes the same ones).
# A task is acknowledged only when its step has finished, and given back to the broker if the
# worker running it dies, so a killed worker's step runs again on another one.
CELERY_SETTINGS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
}
RESULT_BACKEND = "rpc://"

executor = celery_executor.configured(
    {"broker": {"env": CELERY_BROKER_ENV}, "backend": RESULT_BACKEND, "config_source": CELERY_SETTINGS},
    name="celery",
)

defs = build_definitions(executor)

__all__ = ["CELERY_SETTINGS", "RESULT_BACKEND", "defs"]


def worker_command(name: str, concurrency: int, loglevel: str = "INFO") -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one Celery worker of this deployment.

    Checks first what a worker needs, so a misconfigured one stops at start-up with the reason
    instead of failing the steps it takes: the shared database (``MUSINGLY_DATABASE_URL``, reachable),
    the broker, and a signal store that is not a folder of this machine's own. The worker is
    dagster-celery's own (``celery -A dagster_celery.app worker``, what ``dagster-celery worker start``
    runs), configured through a ``dagster_celery_config`` module written under ``<data>/.celery/``.
    """
    import os
    import sys
    from pathlib import Path

    from musingly_pipeline import settings
    from musingly_pipeline.storage.database import connect, database_target

    env = dict(os.environ)
    env[settings.DEPLOYMENT_ENV] = "distributed"
    os.environ[settings.DEPLOYMENT_ENV] = "distributed"
    target = database_target(env)  # raises DatabaseUnavailable without a URL
    connect(target.url).close()  # and when it cannot be reached
    broker = settings.celery_broker()
    store = settings.signal_store_location()
    if not store.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"{settings.SIGNAL_STORE_ENV}={store} is a folder: on a worker it would be that machine's "
                         "own; leave it unset (signals go to the database) or name a postgresql:// URL")
    folder = settings.data_dir() / ".celery"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"broker_url = {broker!r}", f"result_backend = {RESULT_BACKEND!r}",
             *(f"{key} = {value!r}" for key, value in CELERY_SETTINGS.items())]
    (folder / "dagster_celery_config.py").write_text("\n".join(lines) + "\n")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
    celery = Path(sys.executable).with_name("celery")
    argv = [str(celery) if celery.exists() else "celery", "-A", "dagster_celery.app", "worker",
            "-Q", "dagster", "-n", f"{name}@%h", "--prefetch-multiplier=1", f"--concurrency={concurrency}",
            "--loglevel", loglevel]
    return argv, env
