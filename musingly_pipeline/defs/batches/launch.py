"""Launch the process_batch job from outside the code location: what the REST API uses when
``MUSINGLY_DAGSTER_URL`` is set.

The URL names the Dagster webserver of a deployment that loads ``musingly_pipeline.definitions``
(``http://host:3000``, with a path prefix if it is served under one). Runs are submitted through
the webserver's GraphQL API with ``dagster_graphql.DagsterGraphQLClient``, Dagster's public
client, so they go through the deployment's run coordinator (this project's ``dagster.yaml``
queues them: ``dagster-daemon`` must run) and run launcher, like a run started from the UI. Each
run is tagged ``musingly/batch_id``.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from musingly_pipeline.api.manager import DAGSTER_URL_ENV
from musingly_pipeline.batches import BatchError
from musingly_pipeline.defs.batches.jobs import process_run_config

PROCESS_JOB = "process_batch"
BATCH_TAG = "musingly/batch_id"
# Seconds to wait for the webserver to take a run (the answer to the API's caller waits for it).
SUBMIT_TIMEOUT = 30


class DagsterLauncher:
    """Submits ``process_batch`` runs to the Dagster webserver at ``url``."""

    def __init__(self, url: str):
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{DAGSTER_URL_ENV} must be the Dagster webserver's URL, such as "
                             f"http://127.0.0.1:3000, not {url!r}")
        self.url = url.strip()
        self._host, self._port = parts.hostname, parts.port
        self._https = parts.scheme == "https"
        self._prefix = parts.path.rstrip("/")

    def launch(self, batch_id: uuid.UUID) -> str:
        """Submit a run processing ``batch_id``; return its run id, or raise PROCESSING_UNAVAILABLE."""
        try:
            client = DagsterGraphQLClient(self._host, port_number=self._port, use_https=self._https,
                                          path_prefix=self._prefix, timeout=SUBMIT_TIMEOUT)
            return client.submit_job_execution(PROCESS_JOB, run_config=process_run_config(batch_id),
                                               tags={BATCH_TAG: str(batch_id)})
        except DagsterGraphQLClientError as exc:
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise BatchError(
                "PROCESSING_UNAVAILABLE",
                f"the Dagster webserver at {self.url} did not take a {PROCESS_JOB} run: {reason}; check that it "
                f"runs and loads musingly_pipeline.definitions (or unset {DAGSTER_URL_ENV} to process in the API)",
            ) from exc
