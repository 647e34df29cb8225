"""Reusable building blocks: norms, attention, CCT, Mamba, 3D lattice."""
