"""Patch grid arithmetic: stride/overlap conversion, layout names, grid counts and placement."""

from __future__ import annotations

import logging

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from saropt.errors import InputError
from saropt.io.windows import Window
from saropt.tiling.grid import (
    format_overlap,
    grid_count,
    layout_dirname,
    overlap_of,
    patch_grid,
    resolve_stride,
)

sizes = st.integers(min_value=1, max_value=1024)
strides = st.integers(min_value=1, max_value=1500)
regions = st.builds(
    Window,
    st.integers(-500, 500),
    st.integers(-500, 500),
    st.integers(0, 800),
    st.integers(0, 800),
)


class TestResolveStride:
    def test_default_is_20_percent_overlap(self) -> None:
        assert resolve_stride(256) == 205
        assert overlap_of(256, 205) == pytest.approx(0.19921875)

    def test_qxs_stride_52_is_80_percent_overlap(self) -> None:
        stride = resolve_stride(256, stride=52)
        assert stride == 52
        assert overlap_of(256, stride) == pytest.approx(0.796875)

    def test_overlap_rounds_half_up(self) -> None:
        assert resolve_stride(10, overlap=0.25) == 8  # 7.5 -> 8
        assert resolve_stride(10, overlap=0.75) == 3  # 2.5 -> 3 (Python's round() would give 2)

    def test_zero_overlap(self) -> None:
        assert resolve_stride(256, overlap=0.0) == 256

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"stride": 10, "overlap": 0.2},
            {"stride": 0},
            {"stride": -3},
            {"overlap": 1.0},
            {"overlap": -0.1},
            {"overlap": 20},
            {"overlap": 0.9999},
        ],
    )
    def test_invalid(self, kwargs: dict) -> None:
        with pytest.raises(InputError):
            resolve_stride(256, **kwargs)

    @pytest.mark.parametrize("size", [0, -1, 2.5])
    def test_invalid_patch_size(self, size: float) -> None:
        with pytest.raises(InputError):
            resolve_stride(size)  # type: ignore[arg-type]

    def test_gap_stride_warns(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="saropt.tiling.grid"):
            assert resolve_stride(256, stride=300) == 300
        assert "gaps" in caplog.text
        assert overlap_of(256, 320) == pytest.approx(-0.25)

    @given(size=st.integers(2, 2048), overlap=st.floats(0.0, 0.95))
    def test_overlap_round_trip(self, size: int, overlap: float) -> None:
        assume(size * (1 - overlap) >= 0.5)  # else the stride rounds to 0 (tested in test_invalid)
        stride = resolve_stride(size, overlap=overlap)
        # Rounding the stride to whole pixels moves the overlap by at most half a pixel's worth.
        assert abs(overlap_of(size, stride) - overlap) <= 0.5 / size + 1e-12
        assert resolve_stride(size, stride=stride) == stride

    @given(size=sizes, stride=strides)
    def test_stride_round_trip(self, size: int, stride: int) -> None:
        assume(stride <= size)
        assert resolve_stride(size, overlap=overlap_of(size, stride)) == stride


class TestLayoutDirname:
    @pytest.mark.parametrize(
        ("kind", "size", "stride", "expected"),
        [
            ("sar", 256, 205, "sar_256_oc_0.2"),
            ("opt", 256, 205, "opt_256_oc_0.2"),
            ("sar", 256, 52, "sar_256_oc_0.8"),
            ("sar", 256, 256, "sar_256_oc_0"),
            ("opt", 256, 192, "opt_256_oc_0.25"),
            ("sar", 512, 256, "sar_512_oc_0.5"),
            ("sar", 256, 320, "sar_256_oc_-0.25"),
        ],
    )
    def test_names(self, kind: str, size: int, stride: int, expected: str) -> None:
        assert layout_dirname(kind, size, overlap_of(size, stride)) == expected

    def test_invalid_kind(self) -> None:
        with pytest.raises(InputError):
            layout_dirname("optical", 256, 0.2)

    @given(overlap=st.floats(-3.0, 0.999))
    def test_format(self, overlap: float) -> None:
        text = format_overlap(overlap)
        assert float(text) == pytest.approx(round(overlap, 2), abs=1e-9)
        assert not text.endswith("0") or text == "0"
        assert not text.endswith(".")
        assert text != "-0"


class TestPatchGrid:
    @settings(deadline=None)
    @given(region=regions, size=st.integers(1, 300), stride=st.integers(16, 400))
    def test_count_placement_and_order(self, region: Window, size: int, stride: int) -> None:
        windows = patch_grid(region, size, stride)
        n_cols = (region.width - size) // stride + 1 if region.width >= size else 0
        n_rows = (region.height - size) // stride + 1 if region.height >= size else 0
        assert len(windows) == n_cols * n_rows
        assert grid_count(region.width, size, stride) == n_cols
        for k, w in enumerate(windows):
            assert region.contains(w)
            assert (w.width, w.height) == (size, size)
            i, j = divmod(k, n_cols)
            assert (w.col_off, w.row_off) == (region.col_off + j * stride, region.row_off + i * stride)
        assert windows == sorted(windows, key=lambda w: (w.row_off, w.col_off))
        if windows:
            # Not shifted to the edge: the uncovered margin is less than one stride.
            last = windows[-1]
            assert region.col_end - last.col_end < stride
            assert region.row_end - last.row_end < stride

    def test_stride_one(self) -> None:
        windows = patch_grid(Window(0, 0, 5, 4), 3, 1)
        assert [(w.col_off, w.row_off) for w in windows] == [(c, r) for r in range(2) for c in range(3)]

    def test_example(self) -> None:
        windows = patch_grid(Window(10, 20, 600, 300), 256, 205)
        assert [(w.col_off, w.row_off) for w in windows] == [(10, 20), (215, 20)]

    def test_region_smaller_than_patch(self) -> None:
        assert patch_grid(Window(0, 0, 255, 1000), 256, 205) == []

    def test_exact_fit(self) -> None:
        windows = patch_grid(Window(0, 0, 256 + 2 * 205, 256), 256, 205)
        assert len(windows) == 3 and windows[-1].col_end == 256 + 2 * 205

    @pytest.mark.parametrize(("size", "stride"), [(0, 10), (10, 0), (-1, 5)])
    def test_invalid(self, size: int, stride: int) -> None:
        with pytest.raises(InputError):
            patch_grid(Window(0, 0, 100, 100), size, stride)
