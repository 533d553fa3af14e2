"""Which PostgreSQL to use, and how to reach it.

One function, :func:`database_url`, decides for the CLI, the tests and Dagster:

* ``MUSINGLY_DATABASE_URL`` set: that server.
* unset: the embedded server, a real PostgreSQL whose binaries come from the ``pgserver`` wheel, with
  its data under ``data/.postgres/`` (or ``MUSINGLY_EMBEDDED_PGDATA``). It is started on first use and
  left running, like a local development server, so Dagster's processes can share it;
  :func:`stop_embedded_server` stops it (``musingly db stop``, and ``musingly dagster`` on exit when
  it started the server and nothing else uses it).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from musingly_pipeline.settings import DEPLOYMENT_ENV

DATABASE_URL_ENV = "MUSINGLY_DATABASE_URL"
EMBEDDED_PGDATA_ENV = "MUSINGLY_EMBEDDED_PGDATA"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PGDATA = PROJECT_ROOT / "data" / ".postgres"


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached; the message names the URL (without password) and the cause."""


@dataclass(frozen=True)
class DatabaseTarget:
    url: str
    embedded: bool

    @property
    def display(self) -> str:
        return redact(self.url)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to print."""
    return re.sub(r"(://[^:/@?]*:)[^@/?]*@", r"\1***@", url)


def embedded_pgdata() -> Path:
    """Where the embedded server keeps its data (``MUSINGLY_EMBEDDED_PGDATA`` or ``data/.postgres``)."""
    return Path(os.environ.get(EMBEDDED_PGDATA_ENV) or DEFAULT_PGDATA)


def embedded_url(pgdata: Path | None = None, database: str = "postgres") -> str:
    """Start (if needed) the embedded PostgreSQL server and return a URL for ``database``."""
    pgdata = Path(pgdata or embedded_pgdata())
    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); it has a fallback.
        warnings.simplefilter("ignore")
        try:
            import pgserver
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise DatabaseUnavailable(
                f"the embedded database needs the 'pgserver' package ({exc}); "
                f"pip install pgserver, or set {DATABASE_URL_ENV}"
            ) from exc
        try:
            server = pgserver.get_server(pgdata, cleanup_mode=None)
        except Exception as exc:
            raise DatabaseUnavailable(
                f"could not start the embedded PostgreSQL in {pgdata}: {exc}; "
                f"see {pgdata / 'log'} or set {DATABASE_URL_ENV}"
            ) from exc
    return server.get_uri(database)


def database_target(env: dict[str, str] | None = None) -> DatabaseTarget:
    """Decide which database to use: the URL from the environment, else the embedded server. A
    distributed deployment (``MUSINGLY_DEPLOYMENT=distributed``) never falls back to a private
    embedded server: without a URL it is a clear error."""
    env = os.environ if env is None else env
    url = env.get(DATABASE_URL_ENV, "").strip()
    if url:
        return DatabaseTarget(url=url, embedded=False)
    if env.get(DEPLOYMENT_ENV, "").strip().lower() == "distributed":
        raise DatabaseUnavailable(
            f"{DEPLOYMENT_ENV}=distributed and {DATABASE_URL_ENV} is not set: every process of a distributed "
            "deployment must use the one shared PostgreSQL, so none starts an embedded server; set "
            f"{DATABASE_URL_ENV} (docs/deployment.md)")
    return DatabaseTarget(url=embedded_url(), embedded=True)


def database_url() -> str:
    """The URL of the database every part of the project uses."""
    return database_target().url


def connect(url: str | None = None, *, autocommit: bool = False, **kwargs) -> psycopg.Connection:
    """Open a psycopg connection, turning a failure into :class:`DatabaseUnavailable`."""
    url = url or database_url()
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10, **kwargs)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"cannot connect to {redact(url)}: {reason}") from exc


def sqlalchemy_url(url: str) -> str:
    """The same database as a SQLAlchemy URL for Dagster's storage (``postgresql+psycopg2``).

    With SQLAlchemy 2.1 and psycopg 3 both installed, a plain ``postgresql://`` URL fails in
    dagster-postgres, so the driver is named explicitly.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgres", "postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {redact(url)}")
    return "postgresql+psycopg2" + url[len(parts.scheme):]


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return parts._replace(path="/" + dbname).geturl()


def create_database(server_url: str, dbname: str) -> str:
    """Create an empty database on the server of ``server_url`` and return its URL."""
    from psycopg import sql

    with connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return with_database(server_url, dbname)


def drop_database(server_url: str, dbname: str) -> None:
    """Drop a database, ending its sessions first (PostgreSQL 13+)."""
    from psycopg import sql

    with connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


DAGSTER_STORAGE_ENV = "MUSINGLY_DAGSTER_STORAGE_URL"
DAGSTER_DATABASE = "dagster"


def dagster_storage_url() -> str:
    """A ``postgresql+psycopg2`` URL for Dagster's instance storage.

    ``MUSINGLY_DAGSTER_STORAGE_URL`` if set; otherwise a ``dagster`` database (created if missing)
    on the same server as the content database, kept apart from the content tables.
    """
    explicit = os.environ.get(DAGSTER_STORAGE_ENV, "").strip()
    if explicit:
        return explicit
    url = database_url()
    with connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DAGSTER_DATABASE,)).fetchone()
    if not exists:
        try:
            create_database(url, DAGSTER_DATABASE)
        except psycopg.errors.DuplicateDatabase:
            pass  # created by a concurrent process
    return sqlalchemy_url(with_database(url, DAGSTER_DATABASE))


@dataclass(frozen=True)
class EmbeddedServer:
    """The embedded server's state: its postmaster pid (``None``: not running), the other live
    processes registered as using it, and the client connections other than the caller's."""

    pgdata: Path
    pid: int | None
    other_processes: tuple[int, ...] = ()
    other_connections: int = 0

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def in_use(self) -> bool:
        return bool(self.other_processes or self.other_connections)


def embedded_server(pgdata: Path | None = None) -> EmbeddedServer:
    """Look at the embedded server without starting it."""
    import psutil

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from pgserver.utils import PostmasterInfo

    pgdata = Path(pgdata or embedded_pgdata())
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):
        info = None
    if info is None or not info.is_running():
        return EmbeddedServer(pgdata, None)
    # pgserver registers each process that opened the server in this file (and removes it at exit).
    try:
        registered = json.loads((pgdata / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        registered = []
    others = tuple(sorted(pid for pid in registered if pid != os.getpid() and psutil.pid_exists(pid)))
    with psycopg.connect(info.get_uri(), autocommit=True, connect_timeout=10) as conn:
        connections = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid <> pg_backend_pid()").fetchone()[0]
    return EmbeddedServer(pgdata, info.pid, others, connections)


def stop_embedded_server(pgdata: Path | None = None, *, force: bool = False) -> EmbeddedServer:
    """Stop the embedded server (fast shutdown) unless another process or connection uses it
    (``force``: stop anyway, disconnecting them). Returns its state as found; ``running`` and
    ``in_use`` of the result tell whether it was left running."""
    state = embedded_server(pgdata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver

    if not state.running or (state.in_use and not force):
        return state
    # The server runs as the `pgserver` user when started by root (PostgreSQL refuses root). pgserver
    # opened the folders above the data folder to that user when it started the server; open them
    # again, as it does, in case something closed one since (pytest makes /tmp/pytest-of-root 0700).
    user = None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        from pgserver.utils import ensure_prefix_permissions

        user = "pgserver"
        ensure_prefix_permissions(state.pgdata)
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=state.pgdata, user=user)
    return state
