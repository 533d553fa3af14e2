"""Which PostgreSQL to use, and how to reach it.

One function, :func:`database_url`, decides for the CLI, the tests and Dagster:

* ``MUSINGLY_DATABASE_URL`` set: that server.
* unset: the embedded server, a real PostgreSQL whose binaries come from the ``pgserver`` wheel, with
  its data under ``data/.postgres/`` (or ``MUSINGLY_EMBEDDED_PGDATA``). It is started on first use and
  left running, like a local development server, so Dagster's processes can share it.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

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


def embedded_url(pgdata: Path | None = None, database: str = "postgres") -> str:
    """Start (if needed) the embedded PostgreSQL server and return a URL for ``database``."""
    pgdata = Path(pgdata or os.environ.get(EMBEDDED_PGDATA_ENV) or DEFAULT_PGDATA)
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
    """Decide which database to use: the URL from the environment, else the embedded server."""
    env = os.environ if env is None else env
    url = env.get(DATABASE_URL_ENV, "").strip()
    if url:
        return DatabaseTarget(url=url, embedded=False)
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
