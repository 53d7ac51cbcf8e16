"""Helpers shared by the readers: finding folders and files, and explaining a missing or partial layout."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from saropt.errors import DatasetNotFoundError, InputError

#: QXS-SAROPT / saropt patch folder names: ``sar_256_oc_0.2``
PATCH_DIR_RE = re.compile(r"^(sar|opt)_(\d+)_oc_([0-9.]+)$")
_NUM_RE = re.compile(r"(\d+)")


def require_dir(path: Path, dataset: str, layout: str) -> Path:
    """``path`` if it is a folder, else :class:`DatasetNotFoundError` naming it and the expected layout."""
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DatasetNotFoundError(f"{dataset}: {path} {what}; expected layout: {layout}")
    return path


def natural_key(name: str) -> tuple[object, ...]:
    """Sort key that orders ``p2`` before ``p10``."""
    return tuple(int(t) if t.isdigit() else t for t in _NUM_RE.split(name))


def list_files(folder: Path, suffixes: Sequence[str] = (".png",)) -> dict[str, Path]:
    """``stem -> path`` of the files with one of ``suffixes`` (case-insensitive) directly in ``folder``."""
    out: dict[str, Path] = {}
    suf = tuple(s.lower() for s in suffixes)
    with os.scandir(folder) as it:
        for e in it:
            if e.is_file() and e.name.lower().endswith(suf):
                out[os.path.splitext(e.name)[0]] = Path(e.path)
    return out


def missing_message(dataset: str, what: str, missing: Iterable[str], layout: str, limit: int = 5) -> str:
    """One line naming up to ``limit`` missing files, how many in all, and the expected layout."""
    miss = sorted(missing, key=natural_key)
    shown = ", ".join(miss[:limit]) + (f" and {len(miss) - limit} more" if len(miss) > limit else "")
    return (
        f"{dataset}: {len(miss)} {what} missing ({shown}); pairs must be complete; expected layout: {layout}"
    )


def find_patch_dirs(root: Path, patch_dirs: tuple[str, str] | None = None) -> list[tuple[Path, Path]]:
    """The ``(sar_<P>_oc_<o>, opt_<P>_oc_<o>)`` folder pairs directly under ``root``.

    Args:
        root: folder to look in.
        patch_dirs: explicit ``(sar_dir, opt_dir)`` names instead of discovery.

    Returns:
        Folder pairs sorted by name; empty when there is none.

    Raises:
        DatasetNotFoundError: ``patch_dirs`` was given and one of them is missing.
    """
    if patch_dirs is not None:
        pair = (root / patch_dirs[0], root / patch_dirs[1])
        for p in pair:
            if not p.is_dir():
                raise DatasetNotFoundError(f"{p} does not exist (patch_dirs={patch_dirs!r})")
        return [pair]
    found: list[tuple[Path, Path]] = []
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir()):
        m = PATCH_DIR_RE.match(entry.name)
        if m and m.group(1) == "sar" and entry.is_dir():
            opt = root / f"opt_{m.group(2)}_oc_{m.group(3)}"
            if opt.is_dir():
                found.append((entry, opt))
    return found


def normalise_choice(value: str, choices: Sequence[str], what: str) -> str:
    """``value`` if it is one of ``choices`` (case-insensitive), else :class:`InputError` listing them."""
    for c in choices:
        if value.lower() == c.lower():
            return c
    raise InputError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
