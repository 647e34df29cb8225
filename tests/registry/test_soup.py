"""Model soups: averaged weights, compatibility checks."""

from __future__ import annotations

import pytest
import torch
from registry_helpers import make_model

from celltext.registry import load_checkpoint, save_checkpoint
from celltext.registry.soup import SoupError, average_state_dicts, make_soup


def test_soup_is_the_mean_of_the_ingredients(tokenizer, tmp_path):
    a, b = make_model(tokenizer, 0), make_model(tokenizer, 1)
    pa = save_checkpoint(tmp_path / "a", a, tokenizer)
    pb = save_checkpoint(tmp_path / "b", b, tokenizer)
    soup = load_checkpoint(make_soup([pa, pb], tmp_path / "soup"))
    for key, value in soup.model.state_dict().items():
        expected = (a.state_dict()[key] + b.state_dict()[key]) / 2
        torch.testing.assert_close(value, expected)
    assert len(soup.metadata["training"]["soup"]) == 2


def test_incompatible_checkpoints_are_refused(tokenizer, tmp_path):
    pa = save_checkpoint(tmp_path / "a", make_model(tokenizer, 0), tokenizer)
    pb = save_checkpoint(tmp_path / "b", make_model(tokenizer, 0, d_model=64), tokenizer)
    with pytest.raises(SoupError, match="architectures"):
        make_soup([pa, pb], tmp_path / "soup")
    with pytest.raises(SoupError, match="at least two"):
        make_soup([pa], tmp_path / "soup")
    with pytest.raises(SoupError):
        average_state_dicts([{"x": torch.ones(2)}, {"y": torch.ones(2)}])
