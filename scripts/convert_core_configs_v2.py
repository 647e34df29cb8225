"""One-off: rewrite a checkpoint's flat core config into the nested shape (issue 10).

Until 2026-12-01 the core configs flattened their sub-configs under renamed fields
(``lattice_steps``, ``cct_layers``, ``mamba_layers``, ...). They are now compositions of
``CCTConfig``, ``LatticeConfig`` and ``MambaStackConfig``. The weights' keys did not change
for ``hybrid_cct_mamba_v1``, ``mamba_v1`` and ``cct_v1``, so a checkpoint of those needs only
its ``config.json`` rewritten (both the system config and the stored preset) and its
``metadata.json`` hashes recomputed::

    .venv/bin/python scripts/convert_core_configs_v2.py models/default

The weights file is not touched (its sha256 stays); the metadata records the conversion
under ``converted``. ``lattice3d_v1`` checkpoints are refused (their keys moved).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

CCT = {"map_size": "image_size", "map_channels": "in_channels", "cct_dim": "dim",
       "cct_layers": "n_layers", "cct_heads": "n_heads", "mlp_ratio": "mlp_ratio",
       "dropout": "dropout", "positional": "positional"}  # fmt: skip
LATTICE = {"lattice_size": "size", "lattice_state": "state_dim", "lattice_steps": "steps",
           "neighbourhood": "neighbourhood", "boundary": "boundary", "cell": "cell",
           "cell_hidden_mult": "hidden_mult"}  # fmt: skip
MAMBA = {"mamba_layers": "n_layers", "d_state": "d_state", "expand": "expand",
         "bidirectional": "bidirectional"}  # fmt: skip
CCT_CORE = {**CCT, "n_layers": "n_layers", "n_heads": "n_heads"}
GROUPS = {
    "hybrid_cct_mamba": {"cct": CCT, "lattice": LATTICE, "mamba": MAMBA},
    "mamba": {"lattice": LATTICE, "mamba": MAMBA},
    "cct": {"cct": CCT_CORE},
}


def nest(family: str, flat: dict[str, Any]) -> dict[str, Any]:
    """The nested form of a flat core config of ``family`` (an already nested one unchanged)."""
    if family == "lattice3d":
        raise SystemExit("lattice3d_v1 weights moved to lattice3d_v2 keys; retrain instead")
    groups = GROUPS.get(family, {})
    out: dict[str, Any] = {}
    for key, value in flat.items():
        target = next(((g, m[key]) for g, m in groups.items() if key in m), None)
        if target is None:
            out[key] = value
        else:
            out.setdefault(target[0], {})[target[1]] = value
    return out


def _family(name: str) -> str:
    return name.rsplit("_v", 1)[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert(ckpt: Path) -> None:
    from celltext.models.system import SystemConfig
    from celltext.registry.checkpoint import _self_hash
    from celltext.training.args import Preset

    config = json.loads((ckpt / "config.json").read_text())
    system = config["system"]
    system["core_config"] = nest(_family(system["core"]), system["core_config"])
    if "preset" in config:
        core = config["preset"]["core"]
        core["config"] = nest(_family(core["name"]), core["config"])
        config["preset_hash"] = Preset.from_dict(config["preset"]).config_hash()
    new_hash = SystemConfig.from_dict(system).config_hash()
    (ckpt / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    meta = json.loads((ckpt / "metadata.json").read_text())
    meta.setdefault("converted", []).append(
        {"script": "scripts/convert_core_configs_v2.py", "from_config_hash": meta["config_hash"]}
    )
    meta["config_hash"] = new_hash
    meta["files"]["config.json"] = _sha256(ckpt / "config.json")
    meta["metadata_sha256"] = _self_hash(meta)
    (ckpt / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(f"{ckpt}: config_hash {new_hash[:12]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    for ckpt in parser.parse_args().checkpoints:
        convert(ckpt)


if __name__ == "__main__":
    main()
