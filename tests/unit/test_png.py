"""The fast PNG encoder: lossless round trips through OpenCV and Pillow, deterministic bytes, bad input."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from saropt.errors import InputError
from saropt.io import png

pytestmark = pytest.mark.skipif(not png.available(), reason="isal not installed (pip install 'saropt[fast]')")


def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (64, 96, 3)).astype(np.uint8), (0, 0), 3)
    return [
        rng.integers(0, 256, (256, 256), dtype=np.uint8),  # speckle-like grey
        rng.integers(0, 256, (37, 5, 3), dtype=np.uint8),  # odd sizes, RGB
        smooth,  # predictable RGB: SUB filtering pays
        np.zeros((1, 1), np.uint8),
        np.full((3, 300, 3), 255, np.uint8),
    ]


@pytest.mark.parametrize("row_filter", [None, "none", "sub", "up"])
def test_round_trip_opencv_and_pillow(row_filter: str | None) -> None:
    for img in images():
        data = png.encode_png(img, row_filter=row_filter)
        flag = cv2.IMREAD_UNCHANGED
        back = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        if img.ndim == 3:
            back = back[:, :, ::-1]
        np.testing.assert_array_equal(back, img)
        pil = np.asarray(Image.open(io.BytesIO(data)))
        np.testing.assert_array_equal(pil, img)
        assert Image.open(io.BytesIO(data)).mode == ("L" if img.ndim == 2 else "RGB")


def test_deterministic_and_compresses() -> None:
    img = images()[2]
    a, b = png.encode_png(img), png.encode_png(img.copy())
    assert a == b
    assert len(a) < 0.5 * img.nbytes  # a smooth image compresses well with UP
    assert len(png.encode_png(img, row_filter="none")) > len(a)  # the filter is what makes it small


@pytest.mark.skipif(not png.fpng_available(), reason="fpng not installed (pip install 'saropt[fast]')")
def test_rgb_goes_to_fpng_losslessly() -> None:
    rng = np.random.default_rng(1)
    for img in [im for im in images() if im.ndim == 3] + [rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)]:
        data = png.encode_png(img)
        assert data == png.encode_png(img.copy())  # deterministic
        assert data != png.encode_png(img, row_filter="up")  # not the ISA-L path
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), img)
        back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(back[:, :, ::-1], img)
    # a non-contiguous view (a patch cut from a larger block) encodes the same pixels
    block = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    view = block[5:30, 7:41]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png.encode_png(view)))), view)


def test_bad_input() -> None:
    with pytest.raises(InputError, match="uint8"):
        png.encode_png(np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="uint8"):
        png.encode_png(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(InputError, match="row filter"):
        png.encode_png(np.zeros((4, 4), np.uint8), row_filter="paeth")
