"""Cores: embedding -> embedding networks in the teacher's space.

Importing this package registers every core: ``hybrid_cct_mamba_v1``, ``lattice3d_v1``,
``cct_v1``, ``mamba_v1`` and ``mlp_v1`` (kind ``"core"``).
"""

from celltext.models.cores.cct import CCTCore, CCTCoreConfig
from celltext.models.cores.common import CoreModule
from celltext.models.cores.hybrid import HybridCCTMambaConfig, HybridCCTMambaCore
from celltext.models.cores.lattice3d import Lattice3DCore, Lattice3DCoreConfig
from celltext.models.cores.mamba import MambaCore, MambaCoreConfig
from celltext.models.cores.mlp import MLPCore, MLPCoreConfig

CORE_NAMES = ("hybrid_cct_mamba_v1", "lattice3d_v1", "cct_v1", "mamba_v1", "mlp_v1")

__all__ = [
    "CORE_NAMES",
    "CCTCore",
    "CCTCoreConfig",
    "CoreModule",
    "HybridCCTMambaConfig",
    "HybridCCTMambaCore",
    "Lattice3DCore",
    "Lattice3DCoreConfig",
    "MLPCore",
    "MLPCoreConfig",
    "MambaCore",
    "MambaCoreConfig",
]
