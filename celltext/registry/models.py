"""The model registry: MLflow registered models, versions and aliases.

A version's source is an MLflow pyfunc model (``runs:/<run_id>/model``, see
:mod:`celltext.registry.pyfunc`) wrapping the checkpoint directory that its training run
logged as artifacts (``runs:/<run_id>/checkpoint``), so ``mlflow models serve`` serves it.
Its tags carry the lineage (dataset version and sha256, git commit, preset, config hash)
and the headline validation metrics, so listing and comparing need no artifact downloads.
Aliases select versions: ``champion`` (what ``name@champion`` serves) and ``challenger``.
Every champion change is appended to the registered model's ``champion_history`` tag,
which :meth:`ModelRegistry.rollback` walks back.

Versions are downloaded to ``<celltext home>/registry_cache/<name>/<version>`` on first
use (a local artifact store is used in place, without copying).

Every store call goes through :meth:`ModelRegistry._store`: "does not exist" is
:class:`RegistryNotFound`, a store that cannot answer is :class:`RegistryUnavailable`
(:mod:`celltext.registry.errors`), and a server gets a few seconds, not MLflow's ~4 minutes
of retries (:func:`~celltext.registry.tracking.limit_http_waits`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from celltext.paths import home_dir
from celltext.registry.errors import (
    RegistryError,
    RegistryNotFound,
    RegistryUnavailable,
    store_errors,
)
from celltext.registry.tracking import limit_http_waits, mlflow_client, quiet_mlflow, tracking_uri

log = logging.getLogger(__name__)

CHECKPOINT_ARTIFACT = "checkpoint"
HISTORY_TAG = "champion_history"
ALIASES = ("champion", "challenger")
__all__ = ["ModelRegistry", "RegistryError", "RegistryNotFound", "RegistryUnavailable"]


def _metric_tags(metrics: dict[str, float]) -> dict[str, str]:
    return {f"metric.{k}": repr(float(v)) for k, v in metrics.items() if isinstance(v, int | float)}


class ModelRegistry:
    """Registered models, versions and aliases in the MLflow store of :func:`tracking_uri`."""

    def __init__(self, client: Any = None):
        limit_http_waits()
        self.uri = tracking_uri()
        self.client = client or mlflow_client()

    @contextlib.contextmanager
    def _store(self, missing: str | None = None) -> Iterator[None]:
        """Quiet MLflow; its errors as RegistryNotFound (message ``missing``) or
        RegistryUnavailable (see :func:`~celltext.registry.errors.store_errors`)."""
        with quiet_mlflow(), store_errors(self.uri, missing):
            yield

    # -- registering ----------------------------------------------------------------------
    def register(
        self,
        name: str,
        run_id: str,
        checkpoint_dir: Path,
        alias: str = "auto",
        description: str = "",
    ) -> dict[str, Any]:
        """Register the checkpoint logged by run ``run_id`` as a new version of ``name``.

        ``alias``: ``champion``, ``challenger``, ``none``, or ``auto`` (champion if the
        model has none yet, else challenger).
        """
        from celltext.registry.checkpoint import read_metadata

        meta = read_metadata(checkpoint_dir)
        tags = {
            "dataset_version": meta.get("dataset", {}).get("version"),
            "dataset_sha256": meta.get("dataset", {}).get("sha256"),
            "git_commit": meta.get("git", {}).get("commit"),
            "git_dirty": meta.get("git", {}).get("dirty"),
            "preset": meta.get("training", {}).get("preset"),
            "config_hash": meta.get("config_hash"),
            "weights_sha256": meta.get("weights_sha256"),
            "core": meta.get("architecture", {}).get("core"),
            "decoder": meta.get("architecture", {}).get("decoder"),
            **_metric_tags(meta.get("metrics", {})),
        }
        tags = {k: str(v) for k, v in tags.items() if v is not None}
        source = self._log_mlflow_model(run_id, checkpoint_dir, meta)
        with self._store():
            try:
                self.client.create_registered_model(name, description="celltext model")
            except Exception as exc:
                if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                    raise
            mv = self.client.create_model_version(
                name,
                source=source,
                run_id=run_id,
                tags=tags,
                description=description or None,
            )
        version = int(mv.version)
        if alias == "auto":
            alias = "challenger" if self.alias_version(name, "champion") else "champion"
        if alias == "champion":
            self.promote(name, version)
        elif alias == "challenger":
            self.set_alias(name, "challenger", version)
        return self.describe(name, version)

    def _log_mlflow_model(self, run_id: str, checkpoint_dir: Path, meta: dict) -> str:
        """Log the version as an MLflow pyfunc model (and the release as the run's dataset
        input); returns the version's source. Without it the checkpoint is the source."""
        from celltext.registry.pyfunc import log_pyfunc_model, log_release_input

        try:
            log_release_input(self.client, run_id, meta.get("dataset", {}))
            return log_pyfunc_model(self.client, run_id, checkpoint_dir)
        except Exception as exc:  # the registry must not depend on the flavour
            log.warning("not logged as an MLflow model (%s); source is the checkpoint", exc)
            return f"runs:/{run_id}/{CHECKPOINT_ARTIFACT}"

    def register_checkpoint(
        self,
        checkpoint_dir: str | Path,
        name: str = "celltext",
        alias: str = "auto",
        experiment: str = "celltext-imports",
    ) -> dict[str, Any]:
        """Register an existing checkpoint directory (e.g. the shipped ``models/default``).

        The checkpoint is verified first (sha256 of every file); an MLflow run records its
        metadata metrics and carries a copy as the artifact the new version points at.
        """
        from celltext.registry.checkpoint import read_metadata, verify_checkpoint
        from celltext.registry.tracking import MlflowTracker

        checkpoint_dir = Path(checkpoint_dir)
        verify_checkpoint(checkpoint_dir, include_train_state=False)
        meta = read_metadata(checkpoint_dir)
        tracker = MlflowTracker(experiment, run_name=f"import-{checkpoint_dir.name}")
        try:
            tracker.set_tags({"imported_from": str(checkpoint_dir.resolve())})
            tracker.log_metrics(meta.get("metrics", {}), step=0)
            tracker.log_artifacts(checkpoint_dir, CHECKPOINT_ARTIFACT)
        except Exception:
            tracker.finish("FAILED")
            raise
        tracker.finish("FINISHED")
        return self.register(
            name, tracker.run_id, checkpoint_dir, alias=alias, description="imported checkpoint"
        )

    # -- aliases --------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``name@alias`` at ``version``."""
        with self._store(f"no model version {name}/{version}"):
            self.client.set_registered_model_alias(name, alias, str(version))

    def alias_version(self, name: str, alias: str) -> int | None:
        """The version an alias points at (None if unset; RegistryUnavailable if the store
        cannot say)."""
        try:
            with self._store():
                return int(self.client.get_model_version_by_alias(name, alias).version)
        except RegistryNotFound:
            return None

    def history(self, name: str) -> list[int]:
        """Champion versions in the order they were promoted."""
        with self._store(f"no model version of {name!r}: no such registered model"):
            tags = self.client.get_registered_model(name).tags
        return [int(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]

    def promote(self, name: str, version: int, alias: str = "champion") -> dict[str, Any]:
        """Set ``alias`` (default champion) to ``version``; champions are recorded in history."""
        self.get_version(name, version)  # raises if unknown
        self.set_alias(name, alias, version)
        if alias == "champion":
            history = self.history(name)
            if not history or history[-1] != version:
                history.append(version)
            with self._store():
                self.client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
                if self.alias_version(name, "challenger") == version:
                    self.client.delete_registered_model_alias(name, "challenger")
        return self.describe(name, version)

    def rollback(self, name: str) -> dict[str, Any]:
        """Move ``champion`` back to the previous champion; the history drops the current."""
        history = self.history(name)
        if len(history) < 2:
            raise RegistryError(f"{name}: no previous champion to roll back to")
        current, previous = history[-1], history[-2]
        with self._store():
            self.client.set_registered_model_alias(name, "champion", str(previous))
            self.client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[:-1]))
            self.client.set_model_version_tag(name, str(current), "rolled_back", "true")
        return {**self.describe(name, previous), "rolled_back_from": current}

    # -- reading --------------------------------------------------------------------------
    def get_version(self, name: str, version: int | str):
        """The MLflow ModelVersion (raises :class:`RegistryNotFound` if unknown)."""
        with self._store(f"no model version {name}/{version}"):
            return self.client.get_model_version(name, str(version))

    def resolve(self, ref: str) -> tuple[str, int]:
        """``name@alias`` or ``name/version`` -> ``(name, version)``."""
        if "@" in ref:
            name, alias = ref.split("@", 1)
            version = self.alias_version(name, alias)
            if version is None:
                raise RegistryNotFound(f"no alias {alias!r} on registered model {name!r}")
            return name, version
        if "/" in ref:
            name, version = ref.rsplit("/", 1)
            if version.isdigit():
                self.get_version(name, int(version))
                return name, int(version)
        raise RegistryError(f"not a registry reference: {ref!r} (use name@alias or name/version)")

    def describe(self, name: str, version: int) -> dict[str, Any]:
        """A JSON-able summary of one version."""
        mv = self.get_version(name, version)
        metrics = {
            k[len("metric.") :]: float(v) for k, v in mv.tags.items() if k.startswith("metric.")
        }
        return {
            "name": name,
            "version": int(mv.version),
            "aliases": sorted(mv.aliases or []),
            "run_id": mv.run_id,
            "source": mv.source,
            "created": mv.creation_timestamp,
            "status": mv.status,
            "description": mv.description or "",
            "metrics": metrics,
            "tags": {k: v for k, v in mv.tags.items() if not k.startswith("metric.")},
        }

    def model_names(self) -> list[str]:
        """Every registered model name."""
        with self._store():
            return sorted(m.name for m in self.client.search_registered_models())

    def list_versions(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every version (of one model, or of all), newest first per model."""
        names = [name] if name else self.model_names()
        out = []
        for n in names:
            with self._store():
                versions = self.client.search_model_versions(f"name='{n}'")
            for mv in sorted(versions, key=lambda m: -int(m.version)):
                out.append(self.describe(n, int(mv.version)))
        return out

    def compare(self, name: str, versions: list[int] | None = None) -> dict[str, Any]:
        """Metrics and lineage of several versions side by side (default: all)."""
        rows = self.list_versions(name)
        if versions:
            wanted = set(versions)
            rows = [r for r in rows if r["version"] in wanted]
            missing = wanted - {r["version"] for r in rows}
            if missing:
                raise RegistryNotFound(f"{name}: unknown versions {sorted(missing)}")
        keys = sorted({k for r in rows for k in r["metrics"]})
        return {
            "name": name,
            "metrics": keys,
            "versions": [
                {
                    "version": r["version"],
                    "aliases": r["aliases"],
                    "dataset": r["tags"].get("dataset_version"),
                    "git_commit": r["tags"].get("git_commit"),
                    "preset": r["tags"].get("preset"),
                    **{k: r["metrics"].get(k) for k in keys},
                }
                for r in rows
            ],
        }

    def best_version(self, name: str, metric: str, mode: str = "max") -> dict[str, Any]:
        """The version with the best value of a validation metric (e.g. ``val/cosine``)."""
        rows = [r for r in self.list_versions(name) if metric in r["metrics"]]
        if not rows:
            raise RegistryError(f"{name}: no version has metric {metric!r}")
        pick = max if mode == "max" else min
        return pick(rows, key=lambda r: (r["metrics"][metric], -r["version"]))

    def top_versions(self, name: str, metric: str, k: int, mode: str = "max") -> list[dict]:
        """The ``k`` best versions by ``metric``."""
        rows = [r for r in self.list_versions(name) if metric in r["metrics"]]
        rows.sort(key=lambda r: r["metrics"][metric], reverse=(mode == "max"))
        return rows[:k]

    # -- files ----------------------------------------------------------------------------
    def local_path(self, name: str, version: int) -> Path:
        """A local checkpoint directory of the version (downloaded once into the cache)."""
        from celltext.registry.checkpoint import is_checkpoint

        mv = self.get_version(name, version)
        with self._store():
            uri = self.client.get_run(mv.run_id).info.artifact_uri
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            local = Path(unquote(parsed.path)) / CHECKPOINT_ARTIFACT
            if is_checkpoint(local):
                return local
        cache = home_dir() / "registry_cache" / name / str(version)
        if is_checkpoint(cache):
            return cache
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.parent / f".{version}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            with self._store():
                self.client.download_artifacts(mv.run_id, CHECKPOINT_ARTIFACT, str(tmp))
            shutil.rmtree(cache, ignore_errors=True)
            (tmp / CHECKPOINT_ARTIFACT).rename(cache)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return cache
