"""Benchmarking: what ``celltext bench`` measures (latency per stage, throughput, memory,
parameters), on the torch and the onnxruntime backends.

Modules: :mod:`~celltext.benchmarking.bench` (``run_bench``, the report),
:mod:`~celltext.benchmarking.stages` (one backend's stages on one workload),
:mod:`~celltext.benchmarking.onnx_compare` (onnxruntime against PyTorch),
:mod:`~celltext.benchmarking.memory_child` (a fresh process per backend: memory and cold
start), :mod:`~celltext.benchmarking.resources` (RSS, throughput, machine description).

This ``__init__`` imports nothing: the onnxruntime memory child must not import torch.
"""
