"""Serving: the production predictor (quality check + fallback), the HTTP service and web
page, Prometheus metrics, feedback, and the ONNX export with its torch-free runtime.

Nothing is imported here, so ``celltext.serving.onnx_runtime`` stays free of torch.
"""
