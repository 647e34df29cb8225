"""Forwarded headers and the feedback rate limit (hardening issue, item 3).

``celltext serve`` is run for real: its uvicorn options are captured and served by uvicorn
on a free port, so uvicorn's own proxy-header handling is what the test sees.
"""

from __future__ import annotations

import re
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from celltext.serving import app as app_module
from celltext.serving.routers.feedback import _MAX_CLIENTS, RateLimiter

GOOD = {"question": "What is RAM?", "answer": "Memory.", "rating": "up"}


@pytest.fixture
def serve(predictor, tmp_path, monkeypatch):
    """Start ``celltext serve`` with ``env`` and return its base URL."""
    from celltext.cli import app as cli

    real_create_app = app_module.create_app
    monkeypatch.setattr(app_module, "create_app", lambda s: real_create_app(s, predictor=predictor))
    servers = []

    def start(**env: str) -> str:
        seen: dict = {}
        monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
        env = {"CELLTEXT_FEEDBACK_DB": str(tmp_path / "fb.sqlite3"), "CELLTEXT_WARMUP": "0", **env}
        result = CliRunner().invoke(cli, ["serve"], env=env)
        assert result.exit_code == 0, result.output
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        options = {**seen, "host": "127.0.0.1", "port": port, "log_level": "warning"}
        server = uvicorn.Server(uvicorn.Config(options.pop("app"), **options))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.time() + 60
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        assert server.started
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def _post(url: str, forwarded: str | None) -> int:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    return httpx.post(f"{url}/v1/feedback", json=GOOD, headers=headers, timeout=30).status_code


def test_forged_forwarded_for_does_not_bypass_the_rate_limit(serve):
    url = serve(CELLTEXT_FEEDBACK_PER_MINUTE="30")
    codes = [_post(url, f"198.51.100.{i}") for i in range(60)]
    assert codes == [200] * 30 + [429] * 30


def test_forwarded_for_is_honoured_from_a_configured_proxy(serve):
    url = serve(CELLTEXT_FEEDBACK_PER_MINUTE="3", CELLTEXT_FORWARDED_ALLOW_IPS="127.0.0.1")
    assert [_post(url, "203.0.113.7") for _ in range(4)] == [200, 200, 200, 429]
    assert _post(url, "203.0.113.8") == 200  # another client behind the same proxy
    assert _post(url, "1.2.3.4, 203.0.113.7") == 429  # a value the client sent is skipped


def test_bad_forwarded_setting_is_refused(monkeypatch):
    from celltext.cli import app as cli

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    bad = CliRunner().invoke(cli, ["serve"], env={"CELLTEXT_FORWARDED_ALLOW_IPS": "proxy.lan"})
    assert bad.exit_code == 2 and "CELLTEXT_FORWARDED_ALLOW_IPS" in bad.output


def test_rate_limiter_memory_is_bounded_without_forgetting_recent_clients():
    limiter = RateLimiter(1, window_s=60)
    flood = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(_MAX_CLIENTS + 100)]
    assert all(limiter.allow(key, 0.0) for key in flood)
    assert len(limiter) == _MAX_CLIENTS
    assert not any(limiter.allow(key, 1.0) for key in flood[100:][::250])  # still limited
    assert limiter.allow(flood[0], 1.0)  # only the least recently seen were dropped


def test_nginx_example_replaces_the_clients_forwarded_header():
    from celltext.paths import REPO_ROOT

    readme = (REPO_ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    (nginx,) = re.findall(r"```nginx\n(.*?)```", readme, flags=re.S)
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx  # never passed through
    assert "$proxy_add_x_forwarded_for" not in nginx and "$http_x_forwarded_for" not in nginx
    assert "CELLTEXT_FORWARDED_ALLOW_IPS=127.0.0.1" in readme  # the workers trust nginx only
