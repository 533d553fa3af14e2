"""Shared fixtures: a real PostgreSQL and a temporary data folder.

The database is the embedded server by default (the same one the Quick start uses), or the server
at ``MUSINGLY_TEST_DATABASE_URL``. Each test session works in databases of its own, created here
and dropped at the end, so tests never touch a user's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from musingly_pipeline.settings import DATA_DIR_ENV, SIGNAL_STORE_ENV
from musingly_pipeline.storage.database import create_database, drop_database, embedded_url

TEST_DATABASE_ENV = "MUSINGLY_TEST_DATABASE_URL"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = PROJECT_ROOT / "data" / "examples"


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory) -> Iterator[Path]:
    """The session's data folder (``MUSINGLY_DATA_DIR``): inbox, staging cache and signal store of
    every test, the lifecycle signals of every promote included, never the project's ``data/``."""
    path = tmp_path_factory.mktemp("data")
    saved = {name: os.environ.pop(name, None) for name in (DATA_DIR_ENV, SIGNAL_STORE_ENV)}
    os.environ[DATA_DIR_ENV] = str(path)
    yield path
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


@pytest.fixture(scope="session")
def server_url() -> str:
    """A URL of a real PostgreSQL server on which tests may create databases."""
    return os.environ.get(TEST_DATABASE_ENV, "").strip() or embedded_url()


@pytest.fixture(scope="session")
def make_database(server_url: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty databases; all are dropped when the session ends."""
    created: list[str] = []

    def make() -> str:
        name = f"musingly_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        url = create_database(server_url, name)
        created.append(name)
        return url

    yield make
    for name in created:
        drop_database(server_url, name)


@pytest.fixture(scope="session")
def database_url(make_database: Callable[[], str]) -> str:
    """One fresh database shared by the session's tests."""
    return make_database()


@pytest.fixture
def example_bundle() -> Path:
    return EXAMPLES / "ml-curriculum.json"
