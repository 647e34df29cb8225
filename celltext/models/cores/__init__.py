"""Cores: embedding -> embedding networks in the teacher's space.

Importing this package registers every core (kind ``"core"``); the registry is the one list
of them: ``celltext.models.zoo.list_models("core")`` (versioned entries) or
``families("core")`` (family names).
"""

from celltext.models.cores.cct import CCTCore, CCTCoreConfig
from celltext.models.cores.common import CoreModule, MambaStackConfig
from celltext.models.cores.face import FaceCore, FaceCoreConfig, Lattice3DCoreConfig
from celltext.models.cores.hybrid import HybridCCTMambaConfig, HybridCCTMambaCore
from celltext.models.cores.mlp import MLPCore, MLPCoreConfig
from celltext.models.cores.transformer import TransformerCore, TransformerCoreConfig

__all__ = [
    "CCTCore",
    "CCTCoreConfig",
    "CoreModule",
    "FaceCore",
    "FaceCoreConfig",
    "HybridCCTMambaConfig",
    "HybridCCTMambaCore",
    "Lattice3DCoreConfig",
    "MLPCore",
    "MLPCoreConfig",
    "MambaStackConfig",
    "TransformerCore",
    "TransformerCoreConfig",
]
