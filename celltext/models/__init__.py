"""Model zoo: building blocks, cores (embedding -> embedding) and decoders (embedding -> text).

Importing this package imports every model module so that all architectures register
(see :mod:`celltext.models.zoo`).
"""

from celltext.models import cores, decoders  # noqa: F401  (registers every architecture)
from celltext.models.zoo import count_parameters, create_model, list_models, resolve

__all__ = ["count_parameters", "create_model", "list_models", "resolve"]
