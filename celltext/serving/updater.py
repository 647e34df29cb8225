"""Automatic model updates: follow the registry's ``champion`` alias.

Every ``interval_s`` the watcher asks the registry which version ``<name>@champion`` is
(on the service's registry pool, under its deadline) and compares that identity — registry
name and version — with the model being served (``name/version``, ``+onnx`` aside). Folders
are never compared: an ONNX export and the checkpoint it came from are the same model.

When the champion moved, the new version is loaded in a daemon thread (no predictor thread
is held, and a shutdown does not wait for it) on the runtime already serving, never another:

- on PyTorch, its checkpoint (the teacher and phrase bank are reused when the teacher is
  the same), even where an export of it exists;
- on onnxruntime, its export; a version without one is refused, logged once with the
  command that builds it, and counted in ``celltext_model_swaps_refused_total{reason=
  "no_onnx_export"}``; once the export is built the next poll swaps it in.

The new model answers one question as a smoke test before it is swapped in
(:meth:`~celltext.serving.service.Service.swap`). A load or smoke-test failure keeps the
current model and is not retried for the same version; requests are never interrupted.
"""

from __future__ import annotations

import asyncio
import logging

from celltext.inference import registry_client
from celltext.inference.export_files import read_manifest
from celltext.inference.factory import load_predictor
from celltext.inference.loading import export_dir_for, is_onnx_export, resolve_ref
from celltext.inference.predictor import Predictor
from celltext.serving.service import (
    backend_name,
    label_registered,
    model_identity,
    run_in_daemon_thread,
)

log = logging.getLogger(__name__)


class ExportMissing(RuntimeError):
    """The service runs on onnxruntime and the new version has no ONNX export."""


class ChampionWatcher:
    """Polls ``name@alias`` and swaps the service's predictor when it moves."""

    def __init__(self, service, name: str, interval_s: float, alias: str = "champion"):
        self.service = service
        self.ref = f"{name}@{alias}"
        self.interval_s = interval_s
        self.failed: tuple[str, str] | None = None
        self.refused: tuple[str, str] | None = None

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
        name, version = await self.service.registry(registry_client.resolve, self.ref)
        champion = (name, str(version))
        current = self.service.predictor
        if champion == model_identity(current.info) or champion == self.failed:
            return False
        runtime = backend_name(current)
        if champion != self.refused:
            log.info("champion %s moved to %s/%s; loading it on %s", self.ref, *champion, runtime)
        try:
            new = await run_in_daemon_thread(self._load, current, name, version)
        except ExportMissing as exc:
            if champion != self.refused:  # once per version, not at every poll
                log.warning("not swapping to %s/%s: %s", name, version, exc)
                self.service.swaps_refused.labels(reason="no_onnx_export").inc()
            self.refused = champion
            return False
        except Exception:
            self.failed = champion  # do not retry the same broken version every poll
            raise
        self.failed = self.refused = None
        self.service.swap(new)
        return True

    def _load(self, current: Predictor, name: str, version: int) -> Predictor:
        """Version ``name/version`` on the runtime ``current`` runs on, smoke-tested."""
        ref, runtime = f"{name}/{version}", backend_name(current)
        opts = {"config": current.config, "fallback": self.service.settings.fallback}
        if runtime == "onnxruntime":
            folder = export_dir_for(resolve_ref(ref))
            if not is_onnx_export(folder):
                raise ExportMissing(
                    f"the service runs on onnxruntime and {ref} has no ONNX export; build it "
                    f"with `celltext export onnx --model {ref}` (the next poll swaps it in), "
                    "or restart the service with CELLTEXT_BACKEND=torch"
                )
            same_teacher = read_manifest(folder)["teacher"]["id"] == current.teacher.id
            bank = current.bank if same_teacher else None
            new = load_predictor(str(folder), bank=bank, backend="onnx", **opts)
        else:
            reuse = {"teacher": current.teacher, "bank": current.bank}
            backend = "torch" if runtime == "torch" else None  # retrieval only: as configured
            new = load_predictor(ref, backend=backend, **reuse, **opts)
        label_registered(new, name, version)
        new.info.ref = self.ref
        new.answer(["What is a neural network?"])  # smoke test before serving it
        return new
