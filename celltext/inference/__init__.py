"""Inference: the one answer path (teacher -> core -> decoder -> quality check -> selector ->
fallback) used by the CLI, the HTTP service, evaluation and the benchmarks.

- :mod:`~celltext.inference.factory`: ``load_predictor(ref)``, the one way to get a
  :class:`~celltext.inference.predictor.Predictor` for a model reference;
- :mod:`~celltext.inference.predictor`: the pipeline, backend-independent;
- :mod:`~celltext.inference.onnx_backend`: the onnxruntime stages (no torch imported);
- :mod:`celltext.index` (outside this package, torch-free): the phrase bank, the one
  retrieval index;
- :mod:`~celltext.inference.selector`, :mod:`~celltext.inference.candidates`,
  :mod:`~celltext.inference.calibrate`: choosing among candidates, with calibrated confidence.

Nothing is imported here, so ``celltext.inference.onnx_backend`` stays free of torch.
"""
