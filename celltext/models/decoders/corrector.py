"""``ret_correct_v1``: a corrector with feedback (vec2text, Morris et al. 2023).

A ``ret_edit`` decoder that also reads the teacher embedding ``e_hat`` of the hypothesis it
edits. The stage-``correct`` decoder saw only the target ``e`` and the hypothesis tokens and
learned to copy its hypothesis (a fixed point); vec2text's ablation ("the role of feedback")
finds the same plateau without ``e_hat``. Here ``e_hat`` and the difference ``e - e_hat``
become ``n_feedback`` more soft tokens through their own MLP, so the corrector sees *where*
its hypothesis lands in the teacher's space and which way the target lies.

Prefix layout (all positions precede ``<bos>``)::

    [soft(e)_1 .. _K] [fb(e_hat, e - e_hat)_1 .. _F] [hyp_1 .. hyp_P] [sep]

The ``soft``/token/segment/layer weights are those of ``ret_edit`` (so a corrector starts from
the shipped decoder, :meth:`RETCorrector.from_editor`); only ``feedback`` is new. Without
``hyp_emb`` the feedback tokens are left out and it is an ordinary ``ret_edit`` decoder.

Shape legend: B batch, D teacher dim, K soft tokens, F feedback tokens, P hypothesis
tokens, d width.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
from einops import rearrange

from celltext.config import require
from celltext.models.decoders.ret_edit import RETEditConfig, RETEditDecoder
from celltext.models.zoo import register_model

WEIGHTS, CONFIG = "corrector.safetensors", "corrector.json"


@dataclass
class RETCorrectConfig(RETEditConfig):
    """``ret_edit`` plus soft tokens made from the hypothesis' embedding and its error."""

    n_feedback: int = 8  # soft tokens F from (e_hat, e - e_hat)
    feedback_hidden: int = 384  # hidden width of the feedback MLP

    def validate(self) -> None:
        super().validate()
        require(self.n_feedback >= 1, "n_feedback", "must be >= 1")
        require(self.feedback_hidden >= 1, "feedback_hidden", "must be >= 1")


@register_model("ret_correct_v1", kind="decoder", config_cls=RETCorrectConfig)
class RETCorrector(RETEditDecoder):
    """``ret_edit`` conditioned also on the hypothesis' teacher embedding (feedback)."""

    def __init__(self, cfg: RETCorrectConfig):
        super().__init__(cfg)
        d, dim = cfg.d_model, cfg.dim
        self.feedback = nn.Sequential(  # [e_hat, e - e_hat] (2D) -> F soft tokens
            nn.Linear(2 * dim, cfg.feedback_hidden),
            nn.GELU(),
            nn.Linear(cfg.feedback_hidden, cfg.n_feedback * d),
        )
        for layer in (self.feedback[0], self.feedback[2]):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    @classmethod
    def from_editor(cls, editor: RETEditDecoder, **overrides) -> RETCorrector:
        """A corrector whose shared weights are ``editor``'s (the shipped decoder)."""
        base = {f.name: getattr(editor.cfg, f.name) for f in fields(editor.cfg)}
        model = cls(RETCorrectConfig(**{**base, **overrides}))
        missing, unexpected = model.load_state_dict(editor.state_dict(), strict=False)
        if unexpected or any(not k.startswith("feedback.") for k in missing):
            raise ValueError(f"editor weights do not fit: {missing=}, {unexpected=}")
        return model

    def prefix_length(self, proto_len: int = 0, feedback: bool = True) -> int:  # type: ignore[override]
        """Prefix positions before ``<bos>`` for a hypothesis of ``proto_len`` tokens."""
        return self.cfg.n_prefix + (self.cfg.n_feedback if feedback else 0) + proto_len + 1

    def embed_prefix(  # type: ignore[override]
        self,
        emb: torch.Tensor,
        proto_ids: torch.Tensor | None = None,
        hyp_emb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """emb (B, D), proto_ids (B, P), hyp_emb (B, D) -> prefix (B, K + F + P + 1, d)."""
        soft = rearrange(self.prefix(emb), "b (k d) -> b k d", k=self.cfg.n_prefix)
        parts = [soft]
        if hyp_emb is not None:
            self._check_emb(hyp_emb)
            fb_in = torch.cat([hyp_emb, emb - hyp_emb], dim=-1)  # (B, 2D)
            fb = rearrange(self.feedback(fb_in), "b (f d) -> b f d", f=self.cfg.n_feedback)
            parts.append(fb)  # (B, F, d)
        if proto_ids is not None and proto_ids.shape[1] > 0:
            self._check_ids(proto_ids, emb.shape[0])
            parts.append(self.tok_emb(proto_ids) + self.proto_segment)  # (B, P, d)
        parts.append(self.sep.expand(emb.shape[0], 1, -1))  # (B, 1, d)
        return torch.cat(parts, dim=1)

    def save(self, folder: str | Path, fp16: bool = True) -> Path:
        """Weights (safetensors, fp16 by default) and config JSON in ``folder``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        dtype = torch.float16 if fp16 else torch.float32
        state = {k: v.detach().to(dtype).contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS))
        meta = {"name": "ret_correct_v1", "config": asdict(self.cfg)}
        (folder / CONFIG).write_text(json.dumps(meta, indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> RETCorrector:
        """A corrector saved by :meth:`save` (float32, eval mode, strict load)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg = RETCorrectConfig(**json.loads((folder / CONFIG).read_text())["config"])
        model = cls(cfg)
        state = {k: v.float() for k, v in load_file(str(folder / WEIGHTS)).items()}
        model.load_state_dict(state, strict=True)
        return model.eval()
