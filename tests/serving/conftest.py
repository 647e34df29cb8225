"""Fixtures for the HTTP tests: a live uvicorn server (the teacher, tiny bank and tiny
checkpoints are in ``tests/conftest.py``)."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def live_server():
    """Factory: serve an app with uvicorn on a free 127.0.0.1 port; returns its base URL."""
    import uvicorn

    servers = []

    def start(app) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        servers.append((srv, thread))
        deadline = time.time() + 60
        while not srv.started and time.time() < deadline:
            time.sleep(0.05)
        assert srv.started, "server did not start"
        return f"http://127.0.0.1:{port}"

    yield start
    for srv, thread in servers:
        srv.should_exit = True
        thread.join(timeout=10)
