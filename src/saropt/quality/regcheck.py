"""Local registration check: does the warped optical match the SAR best at zero shift?

SAR and optical brightness are not related by any fixed function (a roof can be dark in one and bright in the
other), but their *structure* is shared: edges and lines run in the same directions at the same places. The
check compares that structure at zero shift with shifted controls, like the CFOG / HOPC family of multimodal
matchers:

1. Both images are reduced to about 128 px (2x2 averaging at 256 px; this also averages speckle down).
2. Each gets an orientation field from its smoothed structure tensor ``J = G * (grad I grad I^T)``: the
   double-angle vector ``((Jxx - Jyy), 2 Jxy) / (Jxx + Jyy + eps)``. It is invariant to the sign and scale of
   contrast (a dark-on-bright edge matches a bright-on-dark one) and its length is the local coherence, so
   speckle (random orientations) contributes little and clear edges dominate.
3. The cosine similarity of the two fields is computed for every integer shift within ``max_shift`` pixels
   (FFT cross-correlation, normalised per shift).
4. With ``c`` the similarity surface: ``c_zero`` is its maximum within 2 px of zero shift, ``c_ctrl`` its
   maximum at shifts of 4 px or more (the controls), ``c_peak``/``c_med`` its maximum and median. The score is
   the margin ``(c_zero - c_ctrl) / (c_peak - c_med)`` in ``[-1, 1]``: near +1 for a sharp peak at zero shift,
   about 0 when the surface is a ridge (one straight edge: registration along it cannot be checked), and
   negative when a shifted position matches better than zero shift (a misregistration of 4 px or more).
   The peak location (sub-pixel, parabolic) is the estimated local misregistration.
5. When the surface has no contrast (``c_peak - c_med < MIN_CONTRAST``, e.g. open sea) the check has no
   confidence: the margin is NaN and the texture filter decides.

Measured: on synthetic speckled pairs aligned patches had margins 0.04-0.30 and peaks within 2.5 px, optical
shifted by 6 px gave margins -0.13 to -0.38 and peaks at 4.8-8 px. On real Sentinel-1/2 patches, shifting the
optical by 6 px moved the estimated peak by 6.0 +- 0.1 px in 90% of them. The same data, published as
aligned, shows consistent offsets of 2-8 px within some tiles (e.g. about -8 px in x in one tile, +5 px in
another), so the check flags about 40% of its patches: local misregistration or layover of the data, which is
what the check is for. Shifts are only measured within ``max_shift``; beyond it the peak sits on the border.

Deciding (:func:`saropt.quality.score.decide`): a negative margin alone is weak evidence on low-contrast
surfaces (fields, forest, building blocks whose SAR layover displaces edges): on saropt's synthetic demo
(registration error 0.16 px against the truth) 6 of 39 textured patches had margins below -0.1, all with
contrasts of 0.04-0.12 and peaks 4-8 px away. A patch is therefore flagged only when, besides the margin, its
peak is at least ``regcheck_min_shift`` (3 px) from zero and its contrast at least ``regcheck_min_contrast``
(0.07): 2 of those 39 patches, while synthetic 6 px shifts (contrast 0.10-0.18) are all still flagged. On the
8000 px benchmark scene (farmland, towns, water) a 6 px shift of the optical was flagged on 185 of 331 kept
patches (56%; the cause of the misses is not yet measured). The same scene has 79 exactly registered patches
flagged, mostly in towns, whose peaks mostly lie at dx +5 to +8 px, the direction of the simulated layover of
buildings (towards -x): there the check sees building layover as a shift. Real scenes registered by their
check points (CFOG's urban and rural pairs, affine RMSE 0.86 and 0.74 px; 128 px patches at stride 32) do not
show this: 0 of 151 urban and 0 of 225 rural textured patches flagged, peaks within 1.5 px of the truth in
100% and 95%; with the optical moved 3, 4 and 6 px, 10%, 58% and 100% (urban) and 7%, 64% and 96% (rural) were
flagged. Whether 1 m GaoFen-3 cities lay over like the synthetic towns is not measured (no such scene with
ground truth here). On real Sentinel-1/2 patches (Los Angeles, 99) the flag rate falls from 43% to 33%
(aligned as published) and from 67% to 40% with the optical shifted 6 px: the check abstains where the surface
is too weak to say.

Convention:
    The shift ``(dx, dy)`` is in SAR pixels (x = column, y = row) and says where the optical content sits
    relative to the SAR: ``opt(x + dx, y + dy) ~ sar(x, y)``. An optical patch whose content is displaced 6 px
    to the right of the SAR's reports ``dx = +6``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from saropt.quality.prep import median, prepare_pair

#: the similarity surface must rise this much above its median for the check to count
MIN_CONTRAST = 0.04
#: zero region and control region radii, pixels at full resolution
ZERO_RADIUS = 2.0
CONTROL_RADIUS = 4.0
_ERODE_KERNEL = np.ones((5, 5), np.uint8)


@dataclass(frozen=True)
class RegCheck:
    """Result of the local registration check.

    Attributes:
        margin: ``(c_zero - c_ctrl) / (c_peak - c_med)`` in ``[-1, 1]``, NaN without confidence.
        dx: column shift of the similarity peak, full-resolution pixels (NaN without confidence).
        dy: row shift of the similarity peak.
        contrast: ``c_peak - c_med``, the surface's contrast (confidence).
    """

    margin: float
    dx: float
    dy: float
    contrast: float

    @property
    def shift(self) -> float:
        """Euclidean length of the peak shift in pixels."""
        return float(np.hypot(self.dx, self.dy))


def _orientation_fields(pair: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Double-angle orientation fields of the two channels of ``pair`` (SAR, optical), weighted by coherence.

    Args:
        pair: ``(H, W, 2)`` float32 images (SAR, optical).
        mask: ``(H, W)`` float32 weights (0 outside valid areas).

    Returns:
        Two ``(H, W, 2)`` float32 fields (real, imaginary part of the double-angle vector).
    """
    smooth = cv2.GaussianBlur(pair, (0, 0), 1.0)  # speckle (SAR), noise and aliasing (optical)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)  # (H, W, 2): both images at once
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    gxx, gyy = gx * gx, gy * gy
    gxy = gx * gy
    gxy *= np.float32(2.0)
    # Structure tensor smoothing (sigma 2, kernel truncated at 2 sigma) of (Jxx - Jyy, 2 Jxy, Jxx + Jyy), each a
    # 2-channel (SAR, optical) image: three 2-channel calls cost a fifth of one 6-channel call (OpenCV has no
    # fast path beyond 4 channels) and give the same values.
    diff, cross, energy2 = (cv2.GaussianBlur(a, (9, 9), 2.0) for a in (gxx - gyy, gxy, gxx + gyy))
    fields = []
    for c in range(2):  # image c: SAR, then optical
        energy = np.ascontiguousarray(energy2[..., c])
        eps = np.float32(1e-3 * float(energy.mean()) + 1e-6)
        scale = mask / (energy + eps)
        fields.append(cv2.merge([diff[..., c] * scale, cross[..., c] * scale]))
    return fields[0], fields[1]


def _dft(z: np.ndarray) -> np.ndarray:
    return cv2.dft(np.ascontiguousarray(z), flags=cv2.DFT_COMPLEX_OUTPUT)


def _parabola(c_minus: float, c0: float, c_plus: float) -> float:
    denom = c_minus - 2.0 * c0 + c_plus
    if not np.isfinite(denom) or denom >= 0:
        return 0.0
    return float(np.clip(0.5 * (c_minus - c_plus) / denom, -0.5, 0.5))


def registration_check(sar: np.ndarray, grey: np.ndarray, valid: np.ndarray, max_shift: int = 8) -> RegCheck:
    """Compare SAR and optical structure at zero shift with shifted controls.

    Convention:
        ``sar``, ``grey`` and ``valid`` share the SAR patch's pixel grid (x = column, y = row, 0-based, pixel
        centres at integers). The returned shift satisfies ``opt(x + dx, y + dy) ~ sar(x, y)``.

    Args:
        sar: ``(H, W)`` SAR patch.
        grey: ``(H, W)`` optical brightness warped onto the SAR grid.
        valid: ``(H, W)`` bool mask.
        max_shift: search radius in full-resolution pixels.

    Returns:
        The check's margin, peak shift and contrast.
    """
    pair = prepare_pair(sar, grey, valid)
    return check_prepared(pair.work_sar, pair.work_grey, pair.work_valid, pair.work_factor, max_shift)


def check_prepared(
    sar: np.ndarray, grey: np.ndarray, valid: np.ndarray, factor: int, max_shift: int = 8
) -> RegCheck:
    """:func:`registration_check` on working-resolution arrays from :func:`saropt.quality.prep.prepare_pair`.

    Convention:
        As :func:`registration_check`; ``factor`` is the reduction factor of the arrays, shifts are returned
        in full-resolution pixels.

    Args:
        sar: ``(h, w)`` float32 SAR at working resolution, invalid pixels filled.
        grey: ``(h, w)`` float32 optical brightness at working resolution, filled likewise.
        valid: ``(h, w)`` float32 valid fraction per pixel.
        factor: reduction factor from full resolution.
        max_shift: search radius in full-resolution pixels.

    Returns:
        The check's margin, peak shift and contrast.
    """
    pair = cv2.merge([sar, grey])
    # Drop a margin around invalid areas: the filled values make artificial edges there.
    ok = valid > 0.99
    if ok.all():
        mask = np.ones(ok.shape, np.float32)
    else:
        mask = cv2.erode(ok.view(np.uint8), _ERODE_KERNEL).astype(np.float32)
    hs, ws = mask.shape
    radius = max(1, int(np.ceil(max_shift / factor)))
    if hs <= 4 * radius or ws <= 4 * radius:
        return RegCheck(float("nan"), float("nan"), float("nan"), 0.0)

    f_sar, f_opt = _orientation_fields(pair, mask)
    # Template: the SAR field without a border of `radius`, so every tested shift stays inside the optical.
    template = np.zeros_like(f_sar)
    template[radius:-radius, radius:-radius] = f_sar[radius:-radius, radius:-radius]
    t_energy = float(np.sum(template * template))
    if t_energy <= 0:
        return RegCheck(float("nan"), float("nan"), float("nan"), 0.0)
    spec = cv2.mulSpectrums(_dft(f_opt), _dft(template), 0, conjB=True)
    corr = cv2.idft(spec, flags=cv2.DFT_SCALE | cv2.DFT_COMPLEX_OUTPUT)[..., 0]  # sum_p Re(conj(T(p)) I(p+s))

    # Energy of the optical field under the template window at every shift, from an integral image.
    integral = cv2.integral(f_opt[..., 0] * f_opt[..., 0] + f_opt[..., 1] * f_opt[..., 1], sdepth=cv2.CV_64F)
    shifts = np.arange(-radius, radius + 1)
    r0, r1 = radius, hs - radius
    c0, c1 = radius, ws - radius
    sy = shifts[:, None]
    sx = shifts[None, :]
    energy = (
        integral[r1 + sy, c1 + sx]
        - integral[r0 + sy, c1 + sx]
        - integral[r1 + sy, c0 + sx]
        + integral[r0 + sy, c0 + sx]
    )
    surface = corr[np.mod(sy, hs), np.mod(sx, ws)] / np.sqrt(np.maximum(t_energy * energy, 1e-12))

    peak = np.unravel_index(int(np.argmax(surface)), surface.shape)
    c_peak = float(surface[peak])
    c_med = median(surface.ravel())
    contrast = c_peak - c_med
    if contrast < MIN_CONTRAST:
        return RegCheck(float("nan"), float("nan"), float("nan"), contrast)
    dist = np.maximum(np.abs(sy), np.abs(sx)) * factor
    c_zero = float(surface[dist <= ZERO_RADIUS].max())
    ctrl = dist >= CONTROL_RADIUS
    c_ctrl = float(surface[ctrl].max()) if ctrl.any() else c_med
    py, px = int(peak[0]), int(peak[1])
    fy = _parabola(surface[py - 1, px], c_peak, surface[py + 1, px]) if 0 < py < 2 * radius else 0.0
    fx = _parabola(surface[py, px - 1], c_peak, surface[py, px + 1]) if 0 < px < 2 * radius else 0.0
    dy = (py - radius + fy) * factor
    dx = (px - radius + fx) * factor
    margin = float(np.clip((c_zero - c_ctrl) / contrast, -1.0, 1.0))
    return RegCheck(margin, float(dx), float(dy), float(contrast))
