"""A real uvicorn server on a free local port, serving the API over a fresh database."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from musingly_pipeline.api import APIManager
from musingly_pipeline.batches import BatchManager, BatchSummary
from musingly_pipeline_tests.batches.processors import make_manager

TOKEN = "test-token-7f3a"


@dataclass
class LiveServer:
    url: str
    manager: BatchManager

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def wait(self, batch_id, timeout: float = 120) -> BatchSummary:
        """The batch's summary once no run works on it and it is no longer pending or processing."""
        return wait_until_done(self.manager, batch_id, timeout)


def wait_until_done(manager: BatchManager, batch_id, timeout: float = 120) -> BatchSummary:
    deadline = time.monotonic() + timeout
    while True:
        summary = manager.get_batch_summary(batch_id)
        if summary.status in ("completed", "failed") and not manager.is_batch_running(batch_id):
            return summary
        assert time.monotonic() < deadline, f"batch {batch_id} did not finish: {summary}"
        time.sleep(0.05)


def serve(app) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def live(make_database) -> Iterator[LiveServer]:
    manager = make_manager(make_database())
    for url in serve(APIManager(manager, token=TOKEN, max_body_bytes=64 * 1024).app):
        yield LiveServer(url, manager)
