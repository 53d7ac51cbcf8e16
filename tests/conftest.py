"""Shared fixtures.

Real-data tests are marked ``realdata`` and use the ``shared_data`` fixture, which skips when ``../shared/data``
(beside the project root) is absent. ``SAROPT_SHARED_DATA`` overrides the location.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("SAROPT_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``, or skip the test when it is absent."""
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path}")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Everything under tests/realdata is a real-data test.
    for item in items:
        if "realdata" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.realdata)
