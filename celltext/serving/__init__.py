"""Serving: the HTTP service (FastAPI app, routers, micro-batching, limits, settings), the web
page, Prometheus metrics, feedback and hot model updates. Answers come from
:mod:`celltext.inference`; nothing here touches a model directly."""
