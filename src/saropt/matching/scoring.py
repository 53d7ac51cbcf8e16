"""One interface for everything that scores SAR-optical pairs: trained models and training-free measures.

A :class:`Scorer` turns each patch into a *code* once (an embedding, a normalised pixel vector, a quantised
image, a feature stack) and compares codes: paired (``pair_scores``), all against all (``score_matrix``:
retrieval) and densely over a search window (``surface``: localisation). Scores are similarities, higher =
match.

Convention:
    Localisation surfaces are ``(2r + 1, 2r + 1)`` arrays indexed ``[r + dy, r + dx]`` for a template shifted
    by ``(dx, dy)`` = (column, row) native pixels from the centre of a search window of side ``t + 2r``: the
    template's top-left pixel sits at window pixel ``(r + dx, r + dy)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from saropt.matching.views import ViewSpec, crop_offset, cut, resize

if TYPE_CHECKING:
    import torch


class Scorer(ABC):
    """A pair-similarity method.

    Attributes:
        name: lower-case name used in reports (``"bnn"``, ``"ncc"``...).
        default_threshold: natural decision threshold on the score, or ``None`` (training-free measures:
            the threshold is always calibrated on validation pairs).
        trained: whether the method learnt from data.
    """

    name: str = "scorer"
    default_threshold: float | None = None
    trained: bool = False

    @abstractmethod
    def encode_sar(self, sar: "torch.Tensor") -> Any:
        """Codes of a batch of SAR views ``(B, C, s, s)``."""

    @abstractmethod
    def encode_opt(self, opt: "torch.Tensor") -> Any:
        """Codes of a batch of optical views ``(B, 3, s, s)``."""

    @abstractmethod
    def pair_scores(self, cs: Any, co: Any) -> np.ndarray:
        """``(B,)`` similarities of paired codes."""

    @abstractmethod
    def score_matrix(self, cs: Any, co: Any) -> np.ndarray:
        """``(Ns, No)`` similarities of every SAR code against every optical code."""

    @abstractmethod
    def surface(
        self, template: "torch.Tensor", window: "torch.Tensor", spec: ViewSpec, patch_side: int
    ) -> np.ndarray:
        """Localisation surface of a native SAR template over a native optical search window.

        Args:
            template: ``(C, t, t)`` native SAR template.
            window: ``(3, t + 2r, t + 2r)`` native optical search window.
            spec: the view the method was trained/evaluated with (models resize each candidate crop with it).
            patch_side: side of the dataset patches (sets the resize scale).

        Returns:
            ``(2r + 1, 2r + 1)`` similarities (see the module convention).
        """


def to_grey(opt: "torch.Tensor") -> "torch.Tensor":
    """Luminance (ITU-R BT.601) of ``(..., 3, H, W)`` optical tensors, keeping the channel axis."""
    if opt.shape[-3] == 1:
        return opt
    w = opt.new_tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    return (opt[..., :3, :, :] * w).sum(dim=-3, keepdim=True)


def sar_mean(sar: "torch.Tensor") -> "torch.Tensor":
    """Mean over SAR channels (one band for multi-polarisation input), keeping the channel axis."""
    return sar.mean(dim=-3, keepdim=True)


def dihedral_views(x: "torch.Tensor") -> list["torch.Tensor"]:
    """The 8 flips and 90-degree rotations of ``(..., H, W)`` images, identity first (square views)."""
    import torch

    out = []
    for flip in (False, True):
        v = torch.flip(x, dims=[-1]) if flip else x
        out.extend(torch.rot90(v, k, dims=(-2, -1)) if k else v for k in range(4))
    return out


def undo_dihedral(views: list["torch.Tensor"]) -> list["torch.Tensor"]:
    """Inverse of :func:`dihedral_views`: maps each of the 8 transformed images back to the original frame."""
    import torch

    out = []
    for g, v in enumerate(views):
        flip, k = divmod(g, 4)
        u = torch.rot90(v, -k, dims=(-2, -1)) if k else v
        out.append(torch.flip(u, dims=[-1]) if flip else u)
    return out


def window_crops(window: "torch.Tensor", t: int) -> "torch.Tensor":
    """Every ``t x t`` crop of a ``(C, S, S)`` window, row-major by shift: ``((S - t + 1)^2, C, t, t)``.

    Convention:
        Crop ``k`` has top-left pixel ``(k % n, k // n)`` (x=column, y=row) with ``n = S - t + 1``.
    """
    c, s, _ = window.shape
    n = s - t + 1
    u = window.unfold(1, t, 1).unfold(2, t, 1)  # (C, n, n, t, t)
    return u.permute(1, 2, 0, 3, 4).reshape(n * n, c, t, t)


class ModelScorer(Scorer):
    """A trained matching model (BNN or pseudo-siamese) behind the :class:`Scorer` interface.

    Args:
        model: a model from :func:`saropt.matching.models.build_model`.
        name: report name (default: the model kind).
        device: torch device for inference.
        threshold: the model's default threshold (from its training config).
        batch_size: inference batch size for dense localisation.
        channels_last: use channels-last memory format.
        spec: the view the model was trained with (protocols show it exactly that view).
        tta: test-time augmentation: each view is encoded under the 8 flips and 90-degree rotations (the
            ``flip_rot90`` training augmentation; both modalities get the same transform) and the pair score
            is the mean over the 8 transforms. Codes are then ``(B, 8, n)``; inference costs 8 times more.
    """

    trained = True

    def __init__(
        self,
        model: Any,
        name: str | None = None,
        device: "str | torch.device" = "cpu",
        threshold: float = 0.5,
        batch_size: int = 128,
        channels_last: bool = False,
        spec: ViewSpec | None = None,
        tta: bool = False,
    ) -> None:
        import torch

        self.tta = bool(tta)
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.name = name or model.kind
        self.default_threshold = threshold
        self.batch_size = batch_size
        self.spec = spec
        self.channels_last = channels_last
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def _prep(self, x: "torch.Tensor") -> "torch.Tensor":
        import torch

        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _encode(self, fn: Any, x: "torch.Tensor") -> "torch.Tensor":
        import torch

        with torch.inference_mode():
            if not self.tta:
                return fn(self._prep(x)).float()
            x = x.to(self.device, non_blocking=True)  # one transfer; the 8 views are made on the device
            return torch.stack([fn(self._prep(v)).float() for v in dihedral_views(x)], dim=1)

    def encode_sar(self, sar: "torch.Tensor") -> "torch.Tensor":
        return self._encode(self.model.encode_sar, sar)

    def encode_opt(self, opt: "torch.Tensor") -> "torch.Tensor":
        return self._encode(self.model.encode_opt, opt)

    def pair_scores(self, cs: "torch.Tensor", co: "torch.Tensor") -> np.ndarray:
        import torch

        with torch.inference_mode():
            if cs.ndim == 3:  # TTA codes: mean score over the transforms
                out = torch.stack([self.model.pair_scores(cs[:, g], co[:, g]) for g in range(cs.shape[1])])
                return out.float().mean(0).cpu().numpy().astype(np.float64)
            return self.model.pair_scores(cs, co).cpu().numpy().astype(np.float64)

    def score_matrix(self, cs: "torch.Tensor", co: "torch.Tensor") -> np.ndarray:
        import torch

        with torch.inference_mode():
            if cs.ndim == 3:
                out = torch.stack([self.model.score_matrix(cs[:, g], co[:, g]) for g in range(cs.shape[1])])
                return out.float().mean(0).cpu().numpy().astype(np.float64)
            return self.model.score_matrix(cs, co).cpu().numpy().astype(np.float64)

    def surface(
        self, template: "torch.Tensor", window: "torch.Tensor", spec: ViewSpec, patch_side: int
    ) -> np.ndarray:
        if getattr(self.model, "kind", "") == "dense":
            return self._dense_surface(template, window)
        t = template.shape[-1]
        size = spec.size or t
        n = window.shape[-1] - t + 1
        ct = self.encode_sar(resize(template.unsqueeze(0), size))
        crops = window_crops(window, t)
        scores = []
        for s in range(0, crops.shape[0], self.batch_size):
            co = self.encode_opt(resize(crops[s : s + self.batch_size], size))
            scores.append(self.pair_scores(ct.expand(co.shape[0], *ct.shape[1:]), co))
        return np.concatenate(scores).reshape(n, n)

    def _dense_surface(self, template: "torch.Tensor", window: "torch.Tensor") -> np.ndarray:
        """A dense matcher's correlation surface at native resolution (its own view: no crops, no resize).

        Under TTA, template and window get each of the 8 transforms, and each surface is transformed back
        (an offset turns with the images) before averaging.
        """
        import torch

        with torch.inference_mode():
            t = self._prep(template.unsqueeze(0))
            w = self._prep(window.unsqueeze(0))
            if not self.tta:
                return self.model.surface(t, w)[0].float().cpu().numpy().astype(np.float64)
            surfs = [self.model.surface(a, b) for a, b in zip(dihedral_views(t), dihedral_views(w))]
            mean = torch.stack(undo_dihedral(surfs)).float().mean(0)
            return mean[0].cpu().numpy().astype(np.float64)


class _JoinedScorer(Scorer):
    """Several :class:`ModelScorer` as one: a patch's code is the members' codes flattened and joined.

    Subclasses combine the members' scores (:meth:`_member_scores`) and may give each member its own view of
    the input (:meth:`_member_view`).
    """

    trained = True
    members: list[ModelScorer]

    def __init__(self) -> None:
        self._shapes: dict[str, list[tuple[int, ...]]] = {}

    def _join(self, side: str, codes: list["torch.Tensor"]) -> "torch.Tensor":
        import torch

        self._shapes[side] = [tuple(c.shape[1:]) for c in codes]
        return torch.cat([c.reshape(c.shape[0], -1) for c in codes], dim=1)

    def _split(self, side: str, joined: "torch.Tensor") -> list["torch.Tensor"]:
        parts, start = [], 0
        for shape in self._shapes[side]:
            size = int(np.prod(shape))
            parts.append(joined[:, start : start + size].reshape(joined.shape[0], *shape))
            start += size
        return parts

    def _member_view(self, m: ModelScorer, x: "torch.Tensor") -> "torch.Tensor":
        return x

    def encode_sar(self, sar: "torch.Tensor") -> "torch.Tensor":
        return self._join("sar", [m.encode_sar(self._member_view(m, sar)) for m in self.members])

    def encode_opt(self, opt: "torch.Tensor") -> "torch.Tensor":
        return self._join("opt", [m.encode_opt(self._member_view(m, opt)) for m in self.members])

    def _member_scores(self, method: str, cs: "torch.Tensor", co: "torch.Tensor") -> list[np.ndarray]:
        """Each member's ``pair_scores`` or ``score_matrix`` (``method``) of its part of the joined codes."""
        parts = zip(self.members, self._split("sar", cs), self._split("opt", co))
        return [getattr(m, method)(a, b) for m, a, b in parts]


class EnsembleScorer(_JoinedScorer):
    """Several trained models of one kind and view as one method: each score is the mean of the members'.

    Typically the same recipe trained with other seeds. A member's code keeps its own layout; the ensemble's
    code of a patch is the members' codes flattened and joined, so the protocols store and index it like any
    other code.

    Args:
        members: two or more :class:`ModelScorer` of one model kind and one view.
        name: report name (default ``"<kind>-x<count>"``).

    Raises:
        ConfigError: fewer than two members, or members of different kinds or views.
    """

    def __init__(self, members: list[ModelScorer], name: str | None = None) -> None:
        from saropt.errors import ConfigError

        super().__init__()
        if len(members) < 2:
            raise ConfigError("an ensemble needs at least two checkpoints")
        kinds = {getattr(m.model, "kind", m.name) for m in members}
        specs = {m.spec for m in members}
        if len(kinds) != 1 or len(specs) != 1:
            raise ConfigError(
                f"an ensemble needs checkpoints of one model kind and one view, got kinds {sorted(kinds)} "
                f"and {len(specs)} views"
            )
        self.members = list(members)
        self.spec = members[0].spec
        self.name = name or f"{kinds.pop()}-x{len(members)}"
        self.default_threshold = float(np.mean([m.default_threshold for m in members]))

    def pair_scores(self, cs: "torch.Tensor", co: "torch.Tensor") -> np.ndarray:
        return np.mean(self._member_scores("pair_scores", cs, co), axis=0)

    def score_matrix(self, cs: "torch.Tensor", co: "torch.Tensor") -> np.ndarray:
        return np.mean(self._member_scores("score_matrix", cs, co), axis=0)

    def surface(
        self, template: "torch.Tensor", window: "torch.Tensor", spec: ViewSpec, patch_side: int
    ) -> np.ndarray:
        return np.mean([m.surface(template, window, spec, patch_side) for m in self.members], axis=0)


def _is_dense(m: ModelScorer) -> bool:
    return getattr(m.model, "kind", "") == "dense"


class FusionScorer(_JoinedScorer):
    """Trained models of different kinds and views as one method: the mean of their standardised scores.

    Made for a patch-code model (the BNN) with a dense matcher. Their retrieval errors differ: the BNN's code
    tells scenes apart better than places inside a scene, and the dense matcher's per-pixel descriptors keep
    the layout. Each member's scores are standardised with the mean and standard deviation of its scores on
    calibration pairs (:meth:`calibrate`: the validation split's balanced pairs in
    :func:`saropt.matching.evaluate.evaluate`), then averaged with equal weights: nothing is tuned.

    Views: the fusion sees one centred native crop, the widest of its view-bound members' crops (``0``: the
    whole patch). Each such member cuts its own centred crop from it and resizes it to its size, so it sees what
    it would see alone (the same pixels when crop differences are even). A dense member, fully convolutional,
    sees the whole crop at native resolution.

    Localisation: the mean of the dense members' surfaces, each standardised over its search window; the
    patch-code members are left out when a dense one is present, since their surfaces are flat within a few
    pixels. Without a dense member, every member's surface.

    Args:
        members: two or more :class:`ModelScorer`.
        name: report name (default: the member names joined by ``+``).

    Raises:
        ConfigError: fewer than two members.
    """

    default_threshold = None

    def __init__(self, members: list[ModelScorer], name: str | None = None) -> None:
        from saropt.errors import ConfigError

        super().__init__()
        if len(members) < 2:
            raise ConfigError("a fusion needs at least two checkpoints")
        self.members = list(members)
        bound = [m.spec or ViewSpec() for m in members if not _is_dense(m)]
        crops = [sp.crop for sp in bound]
        self.spec = ViewSpec(0 if (not crops or 0 in crops) else max(crops), 0)
        self.name = name or "+".join(m.name for m in members)
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def _member_view(self, m: ModelScorer, x: "torch.Tensor") -> "torch.Tensor":
        if _is_dense(m):
            return x
        spec = m.spec or ViewSpec()
        h, w = x.shape[-2:]
        side = spec.crop_side(min(h, w))
        return resize(cut(x, *crop_offset(h, w, side, None), side), spec.size)  # centred, as make_view

    def member_pair_scores(self, cs: "torch.Tensor", co: "torch.Tensor") -> np.ndarray:
        """``(M, B)`` raw pair scores of each member."""
        return np.stack(self._member_scores("pair_scores", cs, co))

    def calibrate(self, cs: "torch.Tensor", co: "torch.Tensor") -> None:
        """Set each member's score mean and standard deviation from paired calibration codes.

        Raises:
            InputError: fewer than two pairs, or a member whose calibration scores are all equal.
        """
        from saropt.errors import InputError

        raw = self.member_pair_scores(cs, co)
        if raw.shape[1] < 2:
            raise InputError("a fusion needs at least two calibration pairs")
        sd = raw.std(axis=1)
        flat = [m.name for m, v in zip(self.members, sd) if not v > 1e-12]
        if flat:
            raise InputError(f"fusion member {flat[0]} gives one score to every calibration pair")
        self.mean, self.scale = raw.mean(axis=1), sd

    def _standardised(self, raw: list[np.ndarray]) -> np.ndarray:
        from saropt.errors import ConfigError

        if self.mean is None or self.scale is None:
            raise ConfigError(f"{self.name}: calibrate the fusion before scoring")
        return np.mean([(r - mu) / sd for r, mu, sd in zip(raw, self.mean, self.scale)], axis=0)

    def pair_scores(self, cs: "torch.Tensor", co: "torch.Tensor") -> np.ndarray:
        return self._standardised(list(self.member_pair_scores(cs, co)))

    def score_matrix(self, cs: "torch.Tensor", co: "torch.Tensor") -> np.ndarray:
        return self._standardised(self._member_scores("score_matrix", cs, co))

    def _localisers(self) -> list[ModelScorer]:
        return [m for m in self.members if _is_dense(m)] or self.members

    def localisers(self) -> list[str]:
        """Names of the members whose surfaces make the fusion's localisation surface."""
        return [m.name for m in self._localisers()]

    def surface(
        self, template: "torch.Tensor", window: "torch.Tensor", spec: ViewSpec, patch_side: int
    ) -> np.ndarray:
        out = []
        for m in self._localisers():
            s = m.surface(template, window, m.spec or spec, patch_side)
            sd = s.std()
            out.append((s - s.mean()) / sd if sd > 1e-12 else s - s.mean())
        return np.mean(out, axis=0)
