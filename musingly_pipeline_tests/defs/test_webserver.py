"""The Dagster UI loads this code location: start dagster-webserver and ask its GraphQL API."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from musingly_pipeline.storage.database import sqlalchemy_url

ROOT = Path(__file__).resolve().parents[2]
QUERY = """
{
  assetNodes {
    assetKey { path }
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_webserver_serves_the_asset_graph_and_checks(tmp_path, make_database):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = dict(os.environ, DAGSTER_HOME=str(home),
               MUSINGLY_DAGSTER_STORAGE_URL=sqlalchemy_url(make_database()))
    port = free_port()
    webserver = Path(sys.executable).with_name("dagster-webserver")
    process = subprocess.Popen(
        [str(webserver), "-m", "musingly_pipeline.definitions", "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        data = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode()[-3000:])
            try:
                data = graphql(port, QUERY)["data"]
                break
            except OSError:
                time.sleep(0.5)
        assert data is not None, "dagster-webserver did not answer within 90 s"
        nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
        assert {"raw_bundle", "validated_bundle", "draft_snapshot", "promoted_snapshot"} <= set(nodes)
        checks = {c["name"]: c["blocking"] for c in nodes["validated_bundle"]["assetChecksOrError"]["checks"]}
        assert checks == {"schema": True, "referential_integrity": True, "unique_slugs": True,
                          "acyclic_links": True, "content_warnings": False}
        promoted = nodes["promoted_snapshot"]["assetChecksOrError"]["checks"]
        assert [c["name"] for c in promoted] == ["exactly_one_current_snapshot"]
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stderr.close()
