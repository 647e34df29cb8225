"""Cores: embedding -> embedding networks in the teacher's space.

Importing this package registers every core: ``hybrid_cct_mamba_v1``, ``lattice3d_v2``,
``cct_v1``, ``mamba_v1`` and ``mlp_v1`` (kind ``"core"``).
"""

from celltext.models.cores.cct import CCTCore, CCTCoreConfig
from celltext.models.cores.common import CoreModule, MambaStackConfig
from celltext.models.cores.face import FaceCore, FaceCoreConfig, Lattice3DCoreConfig
from celltext.models.cores.hybrid import HybridCCTMambaConfig, HybridCCTMambaCore
from celltext.models.cores.mlp import MLPCore, MLPCoreConfig

CORE_NAMES = ("hybrid_cct_mamba_v1", "lattice3d_v2", "cct_v1", "mamba_v1", "mlp_v1")

__all__ = [
    "CORE_NAMES",
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
]
