"""Model references -> checkpoint directories (the contract of ``--model REF``)."""

from __future__ import annotations

import re
from pathlib import Path

from celltext.paths import default_model_dir

_VERSION_REF = re.compile(r"^[A-Za-z0-9_.\-]+/\d+$")
_ALIAS_REF = re.compile(r"^[A-Za-z0-9_.\-]+@[A-Za-z0-9_.\-]+$")


def resolve_model_ref(ref: str | Path | None) -> Path:
    """A checkpoint directory for ``ref``.

    - ``None`` (or ``"default"``): the shipped model, ``models/default``;
    - an existing directory: itself;
    - ``name@alias`` (e.g. ``celltext@champion``) or ``name/version`` (``celltext/3``): that
      registered version, downloaded to the local registry cache if needed.

    Raises ``FileNotFoundError`` for a path that does not exist and ``RegistryError`` for a
    registry reference that cannot be resolved.
    """
    if ref is None or str(ref) == "default":
        path = default_model_dir()
        if not path.is_dir():
            raise FileNotFoundError(
                f"the default model is missing at {path}; train it with "
                "`celltext train --preset default` or pass --model"
            )
        return path
    text = str(ref)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if _ALIAS_REF.match(text) or _VERSION_REF.match(text):
        from celltext.registry.models import ModelRegistry

        registry = ModelRegistry()
        name, version = registry.resolve(text)
        return registry.local_path(name, version)
    raise FileNotFoundError(
        f"model reference {text!r} is neither a checkpoint directory nor a registry "
        "reference (name@alias or name/version)"
    )
