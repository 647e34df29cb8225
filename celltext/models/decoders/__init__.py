"""Generative decoders (embedding -> text); importing this package registers all of them."""

from celltext.models.decoders import corrector, enhanced_cct, hybrid, ret, ret_edit  # noqa: F401
