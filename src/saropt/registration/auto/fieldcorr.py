"""Masked, normalised FFT cross-correlation of complex orientation fields over all shifts or a window of shifts.

The coarse search (:mod:`~saropt.registration.auto.coarse`) scores a candidate pose by the normalised
cross-correlation (NCC) of the SAR orientation field with the optical field warped by the pose, at the best
translation. Both fields carry a validity mask, so the NCC at each shift is normalised by the energies *inside the
overlap* of the two masks (exact), computed for all shifts at once with FFTs:

``num(d) = Re sum_x S(x) conj(O(x - d))``, ``ov(d) = sum_x m_S(x) m_O(x - d)``,
``e_S(d) = sum_x |S(x)|^2 m_O(x - d)``, ``e_O(d) = sum_x m_S(x) |O(x - d)|^2``,
``ncc = num / sqrt(e_S e_O)``; candidates are ranked by the z-score ``ncc * sqrt(ov)`` (the NCC of unrelated
fields scatters as ``1 / sqrt(overlap)``), over shifts whose overlap reaches a fraction of the smaller image.

Two forms:

* :func:`correlate_all`: every translation (the optical canvas anywhere over the SAR); the FFT size is at least
  the sum of the two extents (no wrap-around), the SAR spectra are cached per FFT shape.
* :func:`correlate_near`: translations within ``+-radius`` of a pose already close (verification and
  refinement of a coarse candidate). The optical is warped onto the SAR grid grown by ``radius``, and the SAR
  slides inside it: an FFT of the SAR size plus ``2 radius`` instead of twice the image size, with the same
  values as :func:`correlate_all` at those shifts.

Transforms are OpenCV's real DFTs (packed CCS spectra, ``cv2.mulSpectrums``) on sizes of the form ``2^a * o``
with a small odd ``o`` (:func:`fast_size`): at the few-hundred-pixel sizes of the coarse search they take about
half the time of ``scipy.fft``'s. Each runs on one thread: the coarse search runs candidates in parallel.

Convention:
    Arrays are ``(H, W)`` in pixel grids with x = column, y = row, 0-based, centres at integers. A shift
    ``(dx, dy)`` moves the optical canvas content by ``(+dx, +dy)`` onto the SAR grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: normalise the correlation by the energies inside each overlap (exact) instead of the images' mean energies
NORMALISE_EXACT = True


@dataclass(frozen=True)
class Peak:
    """The best shift of one correlation.

    Attributes:
        score: z-score ``ncc * sqrt(overlap pixels)`` (``-inf`` when no shift has enough overlap).
        ncc: normalised cross-correlation at the best shift.
        dx: shift along x (columns) of the optical content onto the SAR grid, pixels.
        dy: shift along y (rows), pixels.
        overlap: overlap at the best shift as a fraction of the smaller valid area.

    Convention:
        x = column, y = row; the optical content at canvas pixel ``p`` lands on SAR pixel ``p + (dx, dy)``.
    """

    score: float
    ncc: float
    dx: int
    dy: int
    overlap: float


#: odd factors of the transform sizes OpenCV handles fastest (measured: 2.5-3 ns per pixel for a forward plus
#: an inverse real DFT, against 4-7 for sizes with other odd parts such as 17, 19, 23, 25 or 27)
_FAST_ODD = (1, 3, 5, 7, 9, 11, 13, 15)


def fast_size(n: int) -> int:
    """The smallest DFT size ``>= n`` of the form ``2^a * o`` (``o`` in 1, 3, ..., 15; ``2^a >= 8`` from 64 on)."""
    n = max(int(n), 1)
    if n <= 64:
        return int(cv2.getOptimalDFTSize(n))
    best = 1 << (n - 1).bit_length()
    for o in _FAST_ODD[1:]:
        p = 8
        while p * o < n:
            p *= 2
        best = min(best, p * o)
    return best


def _dft(planes: list[np.ndarray], shape: tuple[int, int]) -> list[np.ndarray]:
    """Packed (CCS) real DFTs of the planes, zero-padded to ``shape``."""
    out = []
    for p in planes:
        h, w = p.shape
        pad = cv2.copyMakeBorder(
            np.ascontiguousarray(p, dtype=np.float32),
            0,
            shape[0] - h,
            0,
            shape[1] - w,
            cv2.BORDER_CONSTANT,
            value=0,
        )
        out.append(cv2.dft(pad))
    return out


def _idft(spectrum: np.ndarray) -> np.ndarray:
    return cv2.idft(spectrum, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)


class SarSpectra:
    """The SAR field (centred, zero where invalid), its energy and mask, with their spectra cached per DFT shape.

    Complex fields are correlated as two real ones (``Re(S conj(O)) = S_re O_re + S_im O_im``), so every
    transform is a real one.

    Args:
        z: ``(H, W)`` complex64 centred SAR orientation field (zero where invalid).
        valid: ``(H, W)`` bool validity.
    """

    def __init__(self, z: np.ndarray, valid: np.ndarray) -> None:
        energy = (z.real**2 + z.imag**2).astype(np.float32)
        # planes: real part, imaginary part, mask, energy
        self.planes = [
            np.ascontiguousarray(z.real, dtype=np.float32),
            np.ascontiguousarray(z.imag, dtype=np.float32),
            valid.astype(np.float32),
            energy,
        ]
        self.n_valid = float(valid.sum())
        self.mean_energy = float(energy[valid].mean()) if valid.any() else 1.0
        self._cache: dict[tuple[int, int], list[np.ndarray]] = {}

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.planes[0].shape[0]), int(self.planes[0].shape[1]))

    def spectra(self, shape: tuple[int, int]) -> list[np.ndarray]:
        """Packed spectra of the four planes zero-padded to ``shape``, computed once per shape (safe to call
        from several threads: at worst a shape is computed twice)."""
        if shape not in self._cache:
            self._cache[shape] = _dft(self.planes, shape)
        return self._cache[shape]


def _planes(z: np.ndarray, valid: np.ndarray, exact: bool) -> tuple[list[np.ndarray], float]:
    """The optical planes (real, imaginary, mask, energy) and its mean energy over valid pixels (only used, so
    only computed, without ``exact`` normalisation: 1.0 otherwise)."""
    energy = (z.real**2 + z.imag**2).astype(np.float32)
    mean = float(energy[valid].mean()) if not exact and valid.any() else 1.0
    return [z.real.astype(np.float32), z.imag.astype(np.float32), valid.astype(np.float32), energy], mean


def _correlations(
    first: list[np.ndarray], second: list[np.ndarray], exact: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``num, ov, e_first, e_second`` of ``sum_x first(x + d) second(x)`` from the two sets of plane spectra
    (``e_first``: energy of ``first`` under the mask of ``second``)."""
    re1, im1, m1, e1 = first
    re2, im2, m2, e2 = second
    num = _idft(cv2.mulSpectrums(re1, re2, 0, conjB=True) + cv2.mulSpectrums(im1, im2, 0, conjB=True))
    ov = _idft(cv2.mulSpectrums(m1, m2, 0, conjB=True))
    if not exact:
        return num, ov, None, None
    e_first = _idft(cv2.mulSpectrums(e1, m2, 0, conjB=True))
    e_second = _idft(cv2.mulSpectrums(m1, e2, 0, conjB=True))
    return num, ov, e_first, e_second


def _peak(
    num: np.ndarray,
    ov: np.ndarray,
    e_sar: np.ndarray | None,
    e_opt: np.ndarray | None,
    energies: tuple[float, float],
    n_small: float,
    min_overlap: float,
) -> tuple[float, float, int, int, float]:
    """Best z-score over a stack of shifts: ``(score, ncc, iy, ix, overlap fraction)``, indices into the arrays."""
    ok = ov >= max(min_overlap * n_small, 16.0)
    if e_sar is not None and e_opt is not None:
        den = np.sqrt(np.maximum(e_sar * e_opt, 1e-12))
    else:
        # Energies taken as uniform over each image: the overlap count times the mean energy per pixel.
        den = np.maximum(ov, 1.0) * np.sqrt(max(energies[0] * energies[1], 1e-12))
    ncc = num / den
    zs = np.where(ok, ncc * np.sqrt(np.maximum(ov, 0.0)), -np.inf)
    k = int(np.argmax(zs))
    iy, ix = divmod(k, zs.shape[1])
    return float(zs[iy, ix]), float(ncc[iy, ix]), iy, ix, float(ov[iy, ix] / max(n_small, 1.0))


def _half_turn(
    spectra: list[np.ndarray], extent: tuple[int, int], shape: tuple[int, int]
) -> list[np.ndarray]:
    """Spectra of real planes turned by 180 degrees about their centre, from the planes' own spectra.

    A plane ``p`` of extent ``(h, w)`` turned is ``p'(y, x) = p(h - 1 - y, w - 1 - x)``: the correlation of ``p``
    with a unit impulse at ``(h - 1, w - 1)``, whose spectrum is ``D conj(P)`` (``D``: the impulse's spectrum).
    """
    impulse = np.zeros(shape, np.float32)
    impulse[extent[0] - 1, extent[1] - 1] = 1.0
    d = cv2.dft(impulse)
    return [cv2.mulSpectrums(d, p, 0, conjB=True) for p in spectra]


def _peak_all(
    sar: SarSpectra,
    f_opt: list[np.ndarray],
    shape: tuple[int, int],
    exact: bool,
    mean_o: float,
    n_opt: float,
    min_overlap: float,
) -> Peak:
    hs, ws = sar.shape
    num, ov, e_sar, e_opt = _correlations(sar.spectra(shape), f_opt, exact)
    n_small = min(sar.n_valid, n_opt)
    score, ncc, iy, ix, frac = _peak(num, ov, e_sar, e_opt, (sar.mean_energy, mean_o), n_small, min_overlap)
    # index i is shift i for i < SAR extent (canvas moved down/right), else i - N (moved up/left)
    dy = iy if iy < hs else iy - shape[0]
    dx = ix if ix < ws else ix - shape[1]
    return Peak(score, ncc, dx, dy, frac)


def correlate_all(
    sar: SarSpectra,
    z: np.ndarray,
    valid: np.ndarray,
    min_overlap: float,
    exact: bool | None = None,
    half_turn: bool = False,
) -> list[Peak]:
    """Best translation of an optical field canvas over the SAR field, among all translations.

    Args:
        sar: the SAR field and its spectra.
        z: ``(h, w)`` complex64 centred optical field canvas (zero where invalid).
        valid: ``(h, w)`` bool validity of the canvas.
        min_overlap: the overlap must reach this fraction of the smaller valid area.
        exact: exact overlap energies (default :data:`NORMALISE_EXACT`).
        half_turn: also score the canvas turned by 180 degrees about its centre (the optical rotated by half a
            turn more: a double-angle field is unchanged by the turn except for where its values lie), reusing
            the canvas's forward transforms.

    Returns:
        ``[peak]``, or ``[peak, peak of the turned canvas]`` with ``half_turn``; the canvas content at ``p``
        lands on SAR pixel ``p + (dx, dy)``.

    Convention:
        x = column, y = row, 0-based.
    """
    hs, ws = sar.shape
    h, w = z.shape
    shape = (fast_size(hs + h), fast_size(ws + w))
    exact = NORMALISE_EXACT if exact is None else exact
    planes, mean_o = _planes(z, valid, exact)
    f_opt = _dft(planes, shape)
    n_opt = float(valid.sum())
    out = [_peak_all(sar, f_opt, shape, exact, mean_o, n_opt, min_overlap)]
    if half_turn:
        out.append(_peak_all(sar, _half_turn(f_opt, (h, w), shape), shape, exact, mean_o, n_opt, min_overlap))
    return out


def correlate_near(
    sar: SarSpectra,
    z: np.ndarray,
    valid: np.ndarray,
    radius: int,
    n_opt: float,
    min_overlap: float,
    exact: bool | None = None,
) -> Peak:
    """Best translation within ``+-radius`` of an optical field already warped onto the SAR grid.

    Args:
        sar: the SAR field and its spectra (``(H, W)``).
        z: ``(H + 2 radius, W + 2 radius)`` complex64 centred optical field; canvas pixel ``(x + radius,
            y + radius)`` lies on SAR pixel ``(x, y)`` at zero shift.
        valid: validity of ``z``.
        radius: largest shift searched in x and y.
        n_opt: valid pixel count of the whole warped optical (for the overlap fraction; the canvas holds only
            the part near the SAR).
        min_overlap: the overlap must reach this fraction of the smaller valid area.
        exact: exact overlap energies (default :data:`NORMALISE_EXACT`).

    Returns:
        The :class:`Peak`, with ``|dx|, |dy| <= radius``: the canvas content at SAR pixel ``p`` (zero shift)
        belongs at ``p + (dx, dy)``.

    Convention:
        x = column, y = row, 0-based.
    """
    hs, ws = sar.shape
    r = int(radius)
    # the SAR slides inside the canvas: lags 0..2r need no padding beyond the canvas size
    shape = (fast_size(hs + 2 * r), fast_size(ws + 2 * r))
    exact = NORMALISE_EXACT if exact is None else exact
    planes, mean_o = _planes(z, valid, exact)
    f_opt = _dft(planes, shape)
    k = 2 * r + 1
    num, ov, e_opt, e_sar = _correlations(f_opt, sar.spectra(shape), exact)
    e_sar = None if e_sar is None else e_sar[:k, :k]
    e_opt = None if e_opt is None else e_opt[:k, :k]
    n_small = min(sar.n_valid, float(n_opt))
    score, ncc, iy, ix, frac = _peak(
        num[:k, :k], ov[:k, :k], e_sar, e_opt, (sar.mean_energy, mean_o), n_small, min_overlap
    )
    # lag j compares canvas pixel x + j with SAR pixel x: the content belongs r - j further on
    return Peak(score, ncc, r - ix, r - iy, frac)


__all__ = ["NORMALISE_EXACT", "Peak", "SarSpectra", "correlate_all", "correlate_near", "fast_size"]
