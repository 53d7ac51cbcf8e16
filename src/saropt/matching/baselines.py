"""Training-free SAR-optical similarity measures under the :class:`~saropt.matching.scoring.Scorer` interface.

- ``ncc``: zero-mean normalised cross-correlation of SAR intensity and optical luminance.
- ``mi``: mutual information of the joint grey-level histogram (fixed bins on ``[0, 1]``).
- ``cfog``: zero-mean NCC of CFOG-style oriented-gradient channels (Ye et al., TGRS 2019), computed with
  :func:`saropt.registration.auto.features.structural_features` (the registration module's features), so
  matching and registration compare structure the same way.

Pair, retrieval and localisation scores of one measure are the same quantity: localisation surfaces are
computed densely in the native patch grid (FFT for NCC and CFOG via
:func:`saropt.registration.auto.matcher.correlation_surfaces`, one joint histogram per shift for MI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from saropt.errors import ConfigError
from saropt.matching.scoring import Scorer, sar_mean, to_grey, window_crops
from saropt.matching.views import ViewSpec

if TYPE_CHECKING:
    import torch

BASELINES = ("ncc", "mi", "cfog")


def _np(x: "torch.Tensor") -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float64)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit L2 norm (constant rows stay zero)."""
    a = a - a.mean(axis=1, keepdims=True)
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, n, out=np.zeros_like(a), where=n > 1e-12)


class NCCScorer(Scorer):
    """Zero-mean normalised cross-correlation of SAR intensity and optical luminance, in ``[-1, 1]``."""

    name = "ncc"

    def encode_sar(self, sar: "torch.Tensor") -> np.ndarray:
        return _unit_rows(_np(sar_mean(sar)).reshape(sar.shape[0], -1))

    def encode_opt(self, opt: "torch.Tensor") -> np.ndarray:
        return _unit_rows(_np(to_grey(opt)).reshape(opt.shape[0], -1))

    def pair_scores(self, cs: np.ndarray, co: np.ndarray) -> np.ndarray:
        return np.einsum("bd,bd->b", cs, co)

    def score_matrix(self, cs: np.ndarray, co: np.ndarray) -> np.ndarray:
        return cs @ co.T

    def surface(
        self, template: "torch.Tensor", window: "torch.Tensor", spec: ViewSpec, patch_side: int
    ) -> np.ndarray:
        from saropt.registration.auto.matcher import correlation_surfaces

        t = _np(sar_mean(template)).astype(np.float32)[None]
        w = _np(to_grey(window)).astype(np.float32)[None]
        return correlation_surfaces(t, w)[0].astype(np.float64)


def _quantise(x: np.ndarray, bins: int) -> np.ndarray:
    return np.clip((x * bins).astype(np.int64), 0, bins - 1)


def mutual_information_rows(qa: np.ndarray, qb: np.ndarray, bins: int) -> np.ndarray:
    """Mutual information (nats) between one quantised image and each of several.

    Args:
        qa: ``(D,)`` int codes in ``0..bins-1``.
        qb: ``(M, D)`` int codes.
        bins: number of grey-level bins.

    Returns:
        ``(M,)`` MI of ``(qa, qb[m])`` from their joint histograms.
    """
    m, d = qb.shape
    idx = (qa[None, :] * bins + qb) + (np.arange(m)[:, None] * bins * bins)
    joint = np.bincount(idx.ravel(), minlength=m * bins * bins).reshape(m, bins, bins).astype(np.float64) / d
    pa = joint.sum(axis=2, keepdims=True)
    pb = joint.sum(axis=1, keepdims=True)
    denom = pa * pb
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / np.where(denom > 0, denom, 1.0)), 0.0)
    return terms.sum(axis=(1, 2))


class MIScorer(Scorer):
    """Mutual information of SAR intensity and optical luminance (joint histogram, ``bins`` levels on [0, 1]).

    Args:
        bins: grey-level bins per image.
    """

    name = "mi"

    def __init__(self, bins: int = 32) -> None:
        if bins < 2:
            raise ConfigError(f"mutual information needs at least 2 bins, got {bins}")
        self.bins = bins

    def encode_sar(self, sar: "torch.Tensor") -> np.ndarray:
        return _quantise(_np(sar_mean(sar)).reshape(sar.shape[0], -1), self.bins)

    def encode_opt(self, opt: "torch.Tensor") -> np.ndarray:
        return _quantise(_np(to_grey(opt)).reshape(opt.shape[0], -1), self.bins)

    def pair_scores(self, cs: np.ndarray, co: np.ndarray) -> np.ndarray:
        return np.array([mutual_information_rows(a, b[None], self.bins)[0] for a, b in zip(cs, co)])

    def score_matrix(self, cs: np.ndarray, co: np.ndarray) -> np.ndarray:
        return np.stack([mutual_information_rows(a, co, self.bins) for a in cs])

    def surface(
        self, template: "torch.Tensor", window: "torch.Tensor", spec: ViewSpec, patch_side: int
    ) -> np.ndarray:
        t = template.shape[-1]
        n = window.shape[-1] - t + 1
        qa = _quantise(_np(sar_mean(template)).reshape(-1), self.bins)
        crops = window_crops(to_grey(window), t)
        qb = _quantise(_np(crops).reshape(crops.shape[0], -1), self.bins)
        out = np.concatenate(
            [mutual_information_rows(qa, qb[s : s + 64], self.bins) for s in range(0, len(qb), 64)]
        )
        return out.reshape(n, n)


class CFOGScorer(Scorer):
    """Zero-mean NCC of CFOG oriented-gradient channels of SAR and optical images.

    Features come from :func:`saropt.registration.auto.features.structural_features`.

    Args:
        sar_operator: gradient operator for SAR (``"gaussian"`` suits 8-bit dB-scaled patches, which are
            already in the log domain; ``"ratio"`` or ``"log_gaussian"`` suit linear amplitude).
        opt_operator: gradient operator for optical images.
        gradient_sigma: gradient scale in pixels of the model view (pair and retrieval scores).
        native_gradient_sigma: gradient scale in native pixels (localisation surfaces).
        n_orientations: orientation channels.
        channel_sigma: spatial smoothing of the channels in pixels.
    """

    name = "cfog"

    def __init__(
        self,
        sar_operator: str = "gaussian",
        opt_operator: str = "gaussian",
        gradient_sigma: float = 1.0,
        native_gradient_sigma: float = 1.5,
        n_orientations: int = 9,
        channel_sigma: float = 1.0,
    ) -> None:
        self.sar_operator = sar_operator
        self.opt_operator = opt_operator
        self.gradient_sigma = gradient_sigma
        self.native_gradient_sigma = native_gradient_sigma
        self.n_orientations = n_orientations
        self.channel_sigma = channel_sigma

    def _features(self, img: np.ndarray, operator: str, sigma: float) -> np.ndarray:
        from saropt.registration.auto.features import structural_features

        feats, _ = structural_features(
            img.astype(np.float32),
            None,
            operator,
            sigma,
            self.n_orientations,
            self.channel_sigma,  # type: ignore[arg-type]
        )
        return feats

    def _codes(self, grey: np.ndarray, operator: str) -> np.ndarray:
        out = []
        for img in grey:
            f = self._features(img[0], operator, self.gradient_sigma)
            f = f - f.mean(axis=(1, 2), keepdims=True)  # per-channel centring, as in correlation_surfaces
            out.append(f.reshape(-1))
        a = np.stack(out).astype(np.float64)
        n = np.linalg.norm(a, axis=1, keepdims=True)
        return np.divide(a, n, out=np.zeros_like(a), where=n > 1e-12)

    def encode_sar(self, sar: "torch.Tensor") -> np.ndarray:
        return self._codes(_np(sar_mean(sar)), self.sar_operator)

    def encode_opt(self, opt: "torch.Tensor") -> np.ndarray:
        return self._codes(_np(to_grey(opt)), self.opt_operator)

    def pair_scores(self, cs: np.ndarray, co: np.ndarray) -> np.ndarray:
        return np.einsum("bd,bd->b", cs, co)

    def score_matrix(self, cs: np.ndarray, co: np.ndarray) -> np.ndarray:
        return cs @ co.T

    def surface(
        self, template: "torch.Tensor", window: "torch.Tensor", spec: ViewSpec, patch_side: int
    ) -> np.ndarray:
        from saropt.registration.auto.matcher import correlation_surfaces

        ft = self._features(_np(sar_mean(template))[0], self.sar_operator, self.native_gradient_sigma)
        fw = self._features(_np(to_grey(window))[0], self.opt_operator, self.native_gradient_sigma)
        return correlation_surfaces(ft[None].astype(np.float32), fw[None].astype(np.float32))[0].astype(
            np.float64
        )


def create_baseline(name: str, **kwargs: Any) -> Scorer:
    """A training-free scorer by name (``"ncc"``, ``"mi"``, ``"cfog"``).

    Raises:
        ConfigError: unknown name.
    """
    table = {"ncc": NCCScorer, "mi": MIScorer, "cfog": CFOGScorer}
    if name not in table:
        raise ConfigError(f"unknown baseline {name!r}; use one of {', '.join(BASELINES)}")
    return table[name](**kwargs)  # type: ignore[abstract]
