"""Dagster's instance storage (runs, event logs, schedules) in this project's PostgreSQL, with no
variable to set.

``dagster.yaml`` names :class:`ProjectPostgresStorage`. It is dagster-postgres' own storage; only
the URL is decided here, when the instance is loaded (never at import), by
``storage.database.dagster_storage_url``: ``MUSINGLY_DAGSTER_STORAGE_URL`` if set, else a ``dagster``
database (created on first use) on the server the content lives on: ``MUSINGLY_DATABASE_URL``, or
the embedded PostgreSQL. So plain ``dagster dev`` or ``dagster asset materialize`` in the project
folder works on a fresh clone, and a deployment still sets the URL.
"""

from __future__ import annotations

import dagster as dg
from dagster_postgres import DagsterPostgresStorage

from musingly_pipeline.storage.database import dagster_storage_url


class ProjectPostgresStorage(DagsterPostgresStorage):
    """dagster-postgres storage whose URL defaults to the project's database server."""

    @classmethod
    def config_type(cls):
        return {
            "postgres_url": dg.Field(
                dg.StringSource, is_required=False,
                description="A postgresql+psycopg2:// URL; default MUSINGLY_DAGSTER_STORAGE_URL, else a `dagster` "
                "database on the project's PostgreSQL server."),
        }

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(postgres_url=config_value.get("postgres_url") or dagster_storage_url(), inst_data=inst_data)
