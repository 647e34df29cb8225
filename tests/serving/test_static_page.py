"""The web page's files render with any font: no emoji or other astral-plane characters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "celltext" / "serving" / "static"


@pytest.mark.parametrize("name", ["index.html", "app.js", "style.css"])
def test_no_emoji_in_the_web_page(name):
    text = (STATIC / name).read_text(encoding="utf-8")
    astral = [c for c in text if ord(c) > 0xFFFF]
    entities = [int(n) for n in re.findall(r"&#(\d+);", text)]
    entities += [int(n, 16) for n in re.findall(r"&#x([0-9a-fA-F]+);", text)]
    assert not astral and not [n for n in entities if n > 0xFFFF], (astral, entities)


def test_thumb_buttons_carry_svg_icons_and_text():
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    for button, label in (("thumb-up", "Yes"), ("thumb-down", "No")):
        match = re.search(rf'<button id="{button}"[^>]*>(.*?)</button>', html, re.S)
        assert match and "<svg" in match.group(1) and match.group(1).endswith(f" {label}")
