"""The web page in headless Chromium (Debian ``chromium`` driven by Playwright's Python package).

Skips with the reason when ``/usr/bin/chromium`` or the ``playwright`` package is missing
(``.ci/run`` installs the browser; never ``playwright install``: nothing is downloaded).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serving_tiny import PAIRS

from celltext.serving.app import create_app
from celltext.serving.feedback import FeedbackStore
from celltext.serving.settings import ServingSettings

CHROMIUM = Path(os.environ.get("CELLTEXT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-extensions", "--no-first-run",
]  # fmt: skip

pytestmark = pytest.mark.browser


def _sync_playwright():
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("no browser driver: the Python package 'playwright' is not installed")
    return sync_playwright


@pytest.fixture
def server(lattice_ckpt, teacher, bank, tmp_path, live_server):
    """The lattice model (untrained, so it falls back) on a real server."""
    from celltext.inference.factory import load_predictor

    predictor = load_predictor(str(lattice_ckpt), teacher=teacher, bank=bank).with_config(
        decoding={"generation": {"max_new_tokens": 8}}
    )
    db = tmp_path / "fb.sqlite3"
    app = create_app(ServingSettings(feedback_db=str(db), warmup=False), predictor=predictor)
    return live_server(app), db


def test_ask_answer_feedback_and_lattice_view(server):
    sync_playwright = _sync_playwright()
    url, db = server
    question, answer = PAIRS[5]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "/")
            page.fill("#question", question)
            page.click("#ask")
            page.wait_for_selector("#result:not([hidden])", timeout=30_000)
            assert page.text_content("#answer") == answer  # from the phrase bank
            assert page.text_content("#fallback").startswith("retrieved")
            assert 0.0 <= float(page.text_content("#confidence")) <= 1.0
            assert page.text_content("#latency").endswith(" ms")
            assert page.text_content("#model").startswith(
                "tiny-hybrid_cct_mamba-hybrid_cct_mamba/0"
            )
            # lattice activity: one canvas per Z slice of the 3x3x2 lattice
            page.wait_for_selector("#activity canvas")
            assert page.locator("#activity canvas").count() == 2
            assert "3\u00d73\u00d72" in page.text_content("#activity-note")
            page.click("#thumb-down")
            page.wait_for_function(
                "document.getElementById('feedback-status').textContent.includes('saved')"
            )
            # an empty question is refused in the page, without a request
            page.fill("#question", "   ")
            page.click("#ask")
            assert "Please type a question" in page.text_content("#error")
            assert not errors, errors
        finally:
            browser.close()
    rows = FeedbackStore(db).rows()
    assert len(rows) == 1 and rows[0]["rating"] == "down" and rows[0]["answer"] == answer


def test_api_docs_render_without_network(retrieval, live_server):
    """Swagger UI draws the API from local assets; any request off 127.0.0.1 is refused."""
    from celltext.serving.docs import serve_docs_locally

    sync_playwright = _sync_playwright()
    app = serve_docs_locally(create_app(ServingSettings(warmup=False), predictor=retrieval))
    url = live_server(app)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            offsite: list[str] = []

            def route(r):
                if r.request.url.startswith(url):
                    return r.continue_()
                offsite.append(r.request.url)
                return r.abort()

            page.route("**/*", route)
            page.goto(url + "/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
            assert "celltext" in page.text_content(".swagger-ui .info .title")
            page.wait_for_selector(".opblock-summary-path")
            assert page.locator(".opblock").count() >= 3  # the operations are listed
            assert not offsite, offsite
        finally:
            browser.close()
