"""Automatic model updates: follow the registry's ``champion`` alias.

Every ``interval_s`` the watcher resolves ``<name>@champion`` to a checkpoint directory.
When that differs from the directory being served, it loads the new model in a worker
thread (reusing the teacher and phrase bank when the teacher is the same), answers one
question with it as a smoke test, and only then swaps it in
(:meth:`~celltext.serving.service.Service.swap`). A load or smoke-test failure keeps the
current model and is retried at the next poll; requests are never interrupted.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from celltext.inference.factory import load_predictor
from celltext.inference.loading import resolve_ref
from celltext.inference.predictor import Predictor

log = logging.getLogger(__name__)


class ChampionWatcher:
    """Polls ``name@alias`` and swaps the service's predictor when it moves."""

    def __init__(self, service, name: str, interval_s: float, alias: str = "champion"):
        self.service = service
        self.ref = f"{name}@{alias}"
        self.interval_s = interval_s
        self.failed_path: str | None = None

    async def run(self) -> None:
        """Poll forever (cancel the task to stop)."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 -- a registry hiccup must not end the watcher
                log.exception("champion check for %s failed", self.ref)

    async def check(self) -> bool:
        """One poll; True when the model was swapped."""
        loop = asyncio.get_running_loop()
        path = str(Path(await loop.run_in_executor(None, resolve_ref, self.ref)).resolve())
        current = self.service.predictor
        served = current.info.path and str(Path(current.info.path).resolve())
        if path == served or path == self.failed_path:
            return False
        log.info("champion %s moved to %s; loading", self.ref, path)
        try:
            new = await loop.run_in_executor(self.service.executor, self._load, current)
        except Exception:
            self.failed_path = path  # do not retry the same broken version every poll
            raise
        self.failed_path = None
        self.service.swap(new)
        return True

    def _load(self, current: Predictor) -> Predictor:
        reuse = {"teacher": current.teacher, "bank": current.bank}
        cfg = current.config
        new = load_predictor(self.ref, fallback=cfg.fallback, config=cfg, **reuse)
        new.answer(["What is a neural network?"])  # smoke test before serving it
        return new
