"""Output-folder rules of ``saropt build``: folder states, the lock, and what --overwrite may delete."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from saropt.dataset.layout import (
    DATASET_FORMAT,
    BuildLock,
    Layout,
    check_output_folder,
    clear_saropt_folder,
    folder_state,
)
from saropt.errors import OutputExistsError


def _complete(root: Path, chash: str = "abc") -> None:
    (root / "sar_256_oc_0.2").mkdir(parents=True)
    (root / "sar_256_oc_0.2" / "0.png").write_bytes(b"png")
    (root / "index.parquet").write_bytes(b"x")
    (root / "summary.json").write_text(json.dumps({"format": DATASET_FORMAT, "config_hash": chash}))


def test_folder_states(tmp_path: Path) -> None:
    assert folder_state(tmp_path / "missing").kind == "new"
    (tmp_path / "empty").mkdir()
    assert folder_state(tmp_path / "empty").kind == "new"
    (tmp_path / "file").write_text("x")
    assert folder_state(tmp_path / "file").kind == "foreign"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.txt").write_text("x")
    assert folder_state(tmp_path / "other").kind == "foreign"
    _complete(tmp_path / "done")
    st = folder_state(tmp_path / "done")
    assert (st.kind, st.config_hash) == ("complete", "abc")
    part = tmp_path / "part"
    (part / ".saropt").mkdir(parents=True)
    (part / ".saropt" / "state.json").write_text(json.dumps({"format": DATASET_FORMAT, "config_hash": "h"}))
    assert (folder_state(part).kind, folder_state(part).config_hash) == ("partial", "h")


def test_check_output_folder_decisions(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _complete(root, "abc")
    assert check_output_folder(root, "abc", overwrite=False) == "complete"
    with pytest.raises(OutputExistsError, match="another configuration"):
        check_output_folder(root, "xyz", overwrite=False)
    assert check_output_folder(root, "xyz", overwrite=True) == "overwrite"
    assert (
        root / "index.parquet"
    ).exists()  # deciding deletes nothing; the build clears after its plan resolved
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.me").write_text("x")
    for ow in (False, True):
        with pytest.raises(OutputExistsError, match="saropt did not write"):
            check_output_folder(other, "abc", overwrite=ow)
    assert (other / "keep.me").read_text() == "x"


def test_clear_deletes_only_what_saropt_writes(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _complete(root)
    (root / "notes.txt").write_text("mine")
    (root / "rejected").mkdir()
    clear_saropt_folder(root)
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]


def test_lock_refuses_a_live_build_and_takes_over_a_dead_one(tmp_path: Path) -> None:
    lay = Layout(tmp_path, "sar_256_oc_0.2", "opt_256_oc_0.2")
    lay.work.mkdir()
    # a live process (our parent) holds it
    lay.lock_path.write_text(f"{socket.gethostname()}:{os.getppid()}")
    with pytest.raises(OutputExistsError, match="another saropt process"):
        BuildLock(lay.lock_path).acquire()
    # a process that no longer exists held it
    lay.lock_path.write_text(f"{socket.gethostname()}:999999999")
    with BuildLock(lay.lock_path):
        assert lay.lock_path.read_text().endswith(f":{os.getpid()}")
    assert not lay.lock_path.exists()


def test_layout_paths() -> None:
    lay = Layout.for_grid("/d", 256, 1 - 205 / 256)
    assert (lay.sar_dir, lay.opt_dir) == ("sar_256_oc_0.2", "opt_256_oc_0.2")
    assert lay.patch_relpaths(7, True) == ("sar_256_oc_0.2/7.png", "opt_256_oc_0.2/7.png")
    assert lay.patch_relpaths(7, False) == ("rejected/sar_256_oc_0.2/7.png", "rejected/opt_256_oc_0.2/7.png")
    assert Layout.for_grid("/d", 256, 1 - 52 / 256).sar_dir == "sar_256_oc_0.8"
