"""Fixtures for the serving tests: the real MiniLM teacher (loaded once), a tiny phrase bank
and tiny checkpoints (one fitted to the bank's pairs, one with a lattice core)."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from serving_tiny import tiny_bank, tiny_checkpoint

from celltext.serving.factory import load_predictor

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def teacher():
    from celltext.teacher import load_teacher

    return load_teacher("minilm")


@pytest.fixture(scope="session")
def bank(teacher):
    return tiny_bank(teacher)


@pytest.fixture(scope="session")
def fitted_ckpt(teacher, tmp_path_factory):
    """mlp core + ret decoder that answer the tiny pairs correctly."""
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "fitted", teacher=teacher, steps=100)


@pytest.fixture(scope="session")
def lattice_ckpt(tmp_path_factory):
    """Untrained hybrid core (3x3x2 lattice) + hybrid decoder."""
    return tiny_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "lattice", "hybrid_cct_mamba", "hybrid_cct_mamba"
    )


@pytest.fixture
def predictor(fitted_ckpt, teacher, bank):
    """A fresh predictor per test (tests patch its stages)."""
    return load_predictor(str(fitted_ckpt), teacher=teacher, bank=bank)


@pytest.fixture
def retrieval(teacher, bank):
    return load_predictor("retrieval", teacher=teacher, bank=bank)


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
