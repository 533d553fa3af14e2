"""Where the pipeline keeps its working files, and the few knobs an operator sets by environment.

Read when called, never at import, so a test or a deployment can point a process elsewhere. Every
face (the CLI, the Dagster resources, the API) asks here, so they all agree.

* ``MUSINGLY_DATA_DIR``: the data folder (default ``data/`` in the project). It holds ``inbox/``
  (drop bundles here; ``inbox/incremental/`` for partial bundles to merge), ``.staging/`` (local
  cache of staged bundles, by sha256) and ``signals/`` (the signal store and ``signals/incoming/``).
* ``MUSINGLY_SIGNAL_STORE``: where signals go, a folder or a ``postgresql://`` URL (default
  ``<data>/signals``). Lifecycle signals of every snapshot change are written there.
* ``MUSINGLY_INBOX_SETTLE_SECONDS``: how long a dropped file must stay unchanged (size and
  modification time) before it is imported (default 10).
* ``MUSINGLY_DEPLOYMENT``: ``local`` (default: one machine, the embedded PostgreSQL if no URL is
  set) or ``distributed`` (Dagster with Celery workers, ``docs/deployment.md``): every process then
  needs ``MUSINGLY_DATABASE_URL`` (none starts a private embedded server), and signals go to that
  database by default.
* ``MUSINGLY_CELERY_BROKER``: the Celery broker of a distributed deployment (RabbitMQ or Redis URL).

The database has its own settings (``storage.database``): ``MUSINGLY_DATABASE_URL`` and
``MUSINGLY_EMBEDDED_PGDATA``.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR_ENV = "MUSINGLY_DATA_DIR"
SIGNAL_STORE_ENV = "MUSINGLY_SIGNAL_STORE"
INBOX_SETTLE_ENV = "MUSINGLY_INBOX_SETTLE_SECONDS"
DEPLOYMENT_ENV = "MUSINGLY_DEPLOYMENT"
CELERY_BROKER_ENV = "MUSINGLY_CELERY_BROKER"
DEFAULT_SETTLE_SECONDS = 10.0
# Inbox subfolder whose files are partial bundles, merged onto the current snapshot.
INCREMENTAL_FOLDER = "incremental"


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def project_path(value: str | Path) -> Path:
    """``value`` as a path; a relative one is taken from the project folder."""
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


def data_dir() -> Path:
    return project_path(_env(DATA_DIR_ENV) or "data")


def inbox_dir() -> Path:
    return data_dir() / "inbox"


def examples_dir() -> Path:
    """The example bundles shipped with the project (never moved by ``MUSINGLY_DATA_DIR``)."""
    return PROJECT_ROOT / "data" / "examples"


def staging_cache_dir() -> Path:
    return data_dir() / ".staging"


def signal_store_location() -> str:
    """A folder path or a ``postgresql://`` URL. A distributed deployment's default is its database:
    a folder would be each machine's own."""
    explicit = _env(SIGNAL_STORE_ENV)
    if explicit:
        return explicit
    if distributed():
        from musingly_pipeline.storage.database import database_url

        return database_url()
    return str(data_dir() / "signals")


def distributed() -> bool:
    """Whether this process belongs to a distributed deployment (``MUSINGLY_DEPLOYMENT``)."""
    mode = _env(DEPLOYMENT_ENV).lower() or "local"
    if mode not in ("local", "distributed"):
        raise ValueError(f"{DEPLOYMENT_ENV}={mode!r}: use local or distributed")
    return mode == "distributed"


def celery_broker() -> str:
    """The Celery broker URL of a distributed deployment; a clear error when unset."""
    broker = _env(CELERY_BROKER_ENV)
    if not broker:
        raise ValueError(f"{CELERY_BROKER_ENV} is not set: name the broker the webserver, daemon and workers "
                         "share, e.g. pyamqp://guest:guest@127.0.0.1:5672// or redis://127.0.0.1:6379/0")
    return broker


def signal_incoming_dir() -> Path:
    return data_dir() / "signals" / "incoming"


def inbox_settle_seconds() -> float:
    text = _env(INBOX_SETTLE_ENV)
    if not text:
        return DEFAULT_SETTLE_SECONDS
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{INBOX_SETTLE_ENV}={text!r} is not a number of seconds") from None
    if value < 0:
        raise ValueError(f"{INBOX_SETTLE_ENV}={text!r} must not be negative")
    return value
