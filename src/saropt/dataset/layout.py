"""The on-disk layout of a dataset built by saropt, and the safety rules of its output folder.

::

    OUT/
      sar_256_oc_0.2/<n>.png        kept SAR patches (QXS-SAROPT layout; names follow patch size and overlap)
      opt_256_oc_0.2/<n>.png        kept optical patches, same file name per pair
      rejected/sar_256_oc_0.2/<n>.png, rejected/opt_256_oc_0.2/<n>.png   rejected pairs, for review
      geotiff/{sar,opt}/<n>.tif     optional float32 georeferenced patches (original values)
      index.parquet                 one row per patch pair (kept and rejected); written last, by rename
      build.yaml                    the fully resolved configuration
      summary.json                  counts, reasons, splits, registration residuals
      overview/<scene>__<region>.png, overview/patches.png   overviews and a mosaic of sample patches
      .saropt/                      work state while building: state.json, lock, units/<unit>.json

A folder is a *saropt folder* when it holds ``.saropt/state.json`` (a build in progress) or ``summary.json``
with ``"format": "saropt-dataset"`` (a complete build). Only saropt folders are ever resumed or overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saropt.errors import OutputExistsError

#: ``summary.json``'s ``format`` value that marks a complete saropt dataset
DATASET_FORMAT = "saropt-dataset"
WORK_DIR = ".saropt"
INDEX_NAME = "index.parquet"
CONFIG_NAME = "build.yaml"
SUMMARY_NAME = "summary.json"
OVERVIEW_DIR = "overview"
REJECTED_DIR = "rejected"
GEOTIFF_DIR = "geotiff"


@dataclass(frozen=True)
class Layout:
    """Paths of one dataset folder.

    Attributes:
        root: the output folder.
        sar_dir: name of the SAR patch folder, e.g. ``"sar_256_oc_0.2"``.
        opt_dir: name of the optical patch folder, e.g. ``"opt_256_oc_0.2"``.
    """

    root: Path
    sar_dir: str
    opt_dir: str

    @classmethod
    def for_grid(cls, root: str | os.PathLike[str], patch_size: int, overlap: float) -> Layout:
        """The layout of a grid of ``patch_size`` patches with ``overlap``."""
        from saropt.tiling.grid import layout_dirname

        return cls(
            Path(root), layout_dirname("sar", patch_size, overlap), layout_dirname("opt", patch_size, overlap)
        )

    # -- patches (relative POSIX paths, as stored in the index) -------------------------------------------------
    def patch_relpaths(self, patch_id: int, kept: bool) -> tuple[str, str]:
        """``(sar, opt)`` PNG paths of a patch pair relative to the root (under ``rejected/`` when not kept)."""
        prefix = "" if kept else f"{REJECTED_DIR}/"
        return (f"{prefix}{self.sar_dir}/{patch_id}.png", f"{prefix}{self.opt_dir}/{patch_id}.png")

    def geotiff_relpaths(self, patch_id: int) -> tuple[str, str]:
        """``(sar, opt)`` GeoTIFF paths of a patch pair relative to the root."""
        return (f"{GEOTIFF_DIR}/sar/{patch_id}.tif", f"{GEOTIFF_DIR}/opt/{patch_id}.tif")

    def patch_dirs(self) -> list[Path]:
        """Every folder patches are written to (created before the units run)."""
        return [
            self.root / self.sar_dir,
            self.root / self.opt_dir,
            self.root / REJECTED_DIR / self.sar_dir,
            self.root / REJECTED_DIR / self.opt_dir,
        ]

    # -- work state ----------------------------------------------------------------------------------------------
    @property
    def work(self) -> Path:
        return self.root / WORK_DIR

    @property
    def units_dir(self) -> Path:
        return self.work / "units"

    @property
    def state_path(self) -> Path:
        return self.work / "state.json"

    @property
    def lock_path(self) -> Path:
        return self.work / "lock"

    def unit_record(self, unit_id: str) -> Path:
        return self.units_dir / f"{unit_id}.json"

    def unit_view(self, unit_id: str) -> Path:
        """The unit's block reduced to the overview's scale (see :mod:`saropt.dataset.overview`)."""
        return self.units_dir / f"{unit_id}.view.npz"

    # -- final files ---------------------------------------------------------------------------------------------
    @property
    def index(self) -> Path:
        return self.root / INDEX_NAME

    @property
    def config(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY_NAME

    @property
    def overview_dir(self) -> Path:
        return self.root / OVERVIEW_DIR


# ---------------------------------------------------------------------------------------------------------------
# Output-folder safety
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderState:
    """What an output folder holds.

    Attributes:
        kind: ``"new"`` (missing or empty), ``"partial"`` (a saropt build in progress or interrupted),
            ``"complete"`` (a finished saropt dataset) or ``"foreign"`` (anything else).
        config_hash: the configuration hash recorded by saropt (``None`` for new/foreign folders).
    """

    kind: str
    config_hash: str | None = None


def folder_state(root: str | os.PathLike[str]) -> FolderState:
    """Classify an output folder (see :class:`FolderState`)."""
    root = Path(root)
    if not root.exists():
        return FolderState("new")
    if not root.is_dir():
        return FolderState("foreign")
    entries = [p for p in root.iterdir()]
    if not entries:
        return FolderState("new")
    state = root / WORK_DIR / "state.json"
    if state.is_file():
        data = _read_json(state)
        if data.get("format") == DATASET_FORMAT:
            return FolderState("partial", data.get("config_hash"))
    summary = root / SUMMARY_NAME
    if summary.is_file():
        data = _read_json(summary)
        if data.get("format") == DATASET_FORMAT and (root / INDEX_NAME).is_file():
            return FolderState("complete", data.get("config_hash"))
        if data.get("format") == DATASET_FORMAT:
            return FolderState("partial", data.get("config_hash"))
    return FolderState("foreign")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def clear_saropt_folder(root: Path) -> None:
    """Delete what saropt writes in a saropt folder (patch folders, index, config, summary, overviews, work state).

    Files that saropt does not write are left alone.
    """
    for child in sorted(root.iterdir()):
        name = child.name
        ours = (
            name in (WORK_DIR, INDEX_NAME, CONFIG_NAME, SUMMARY_NAME, OVERVIEW_DIR, REJECTED_DIR, GEOTIFF_DIR)
            or (name.startswith(("sar_", "opt_")) and "_oc_" in name and child.is_dir())
            or name.startswith(f".{INDEX_NAME}")
        )
        if not ours:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


class BuildLock:
    """``.saropt/lock``: one build at a time per output folder.

    The lock file holds ``host:pid``. A lock left by a process that no longer runs on this host is taken over;
    a live one raises :class:`OutputExistsError`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held = False

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            OutputExistsError: another live build holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = f"{socket.gethostname()}:{os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale():
                    self.path.unlink(missing_ok=True)
                    continue
                owner = self.path.read_text().strip() if self.path.exists() else "?"
                raise OutputExistsError(
                    f"{self.path.parent.parent} is being built by another saropt process ({owner}); wait for it, "
                    f"or delete {self.path} if that process is gone"
                ) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
            self._held = True
            return

    def _stale(self) -> bool:
        try:
            host, _, pid = self.path.read_text().strip().partition(":")
            pid_i = int(pid)
        except (OSError, ValueError):
            return True
        if host != socket.gethostname():
            return False
        if pid_i == os.getpid():
            return True
        try:
            os.kill(pid_i, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> BuildLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_output_folder(root: Path, config_hash: str, overwrite: bool) -> str:
    """Decide what to do with an output folder before a build.

    Args:
        root: the output folder.
        config_hash: hash of the configuration about to be built.
        overwrite: replace a saropt dataset built with another configuration.

    Returns:
        ``"new"`` (start from scratch), ``"resume"`` (a partial build with the same configuration),
        ``"complete"`` (already built with the same configuration: nothing to do) or ``"overwrite"`` (a saropt
        build to replace: the caller deletes it with :func:`clear_saropt_folder` once the new plan resolved, so
        bad input never destroys the old dataset).

    Raises:
        OutputExistsError: the folder holds something saropt did not write (even with ``overwrite``), or a saropt
            dataset built with another configuration and ``overwrite`` is false.
    """
    st = folder_state(root)
    if st.kind == "new":
        return "new"
    if st.kind == "foreign":
        what = "a file" if root.exists() and not root.is_dir() else "files saropt did not write"
        raise OutputExistsError(
            f"output folder {root} holds {what}; choose an empty or new folder (--overwrite only replaces "
            f"folders written by saropt)"
        )
    if st.config_hash == config_hash and not overwrite:
        return "resume" if st.kind == "partial" else "complete"
    if not overwrite:
        raise OutputExistsError(
            f"output folder {root} holds a saropt {'dataset' if st.kind == 'complete' else 'partial build'} made "
            f"with another configuration; use --overwrite to replace it or choose another folder"
        )
    return "overwrite"
