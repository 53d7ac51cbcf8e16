"""Session-scoped pytest fixtures with tiny fake copies of every supported dataset (import them in a test
module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.osdataset.data import generate as gen_os
from tests.data.qxs_saropt.data import generate as gen_qxs
from tests.data.saropt_dataset.data import generate as gen_saropt
from tests.data.sen1_2.data import generate as gen_sen12
from tests.data.sen12ms.data import generate as gen_sen12ms


@pytest.fixture(scope="session")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``qxs``, ``sen12``, ``sen12ms``, ``os`` and ``saropt`` fake copies (read-only use)."""
    root = tmp_path_factory.mktemp("fake-datasets")
    gen_qxs(root / "qxs")
    gen_sen12(root / "sen12")
    gen_sen12ms(root / "sen12ms")
    gen_os(root / "os")
    gen_saropt(root / "saropt")
    return root


@pytest.fixture()
def qxs_copy(tmp_path: Path) -> Path:
    """A fresh QXS-SAROPT copy the test may damage; returns the ``QXSLAB_SAROPT`` folder."""
    return gen_qxs(tmp_path / "qxs", cities=1, grid=2)
