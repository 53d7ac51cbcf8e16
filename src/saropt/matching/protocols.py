"""Evaluation protocols for SAR-optical patch matching, run for several scorers in one pass over the data.

- **balanced** (the paper's): every patch once as a matching pair plus one random non-matching pair per
  positive (``MatchingPairs(hard=False)``). Pair classification: accuracy, precision, recall, F1, ROC-AUC,
  FPR95.
- **hard**: the same with negatives drawn among spatial neighbours of the same scene
  (``MatchingPairs(hard=True)``), the case that matters for registration.
- **localisation**: a SAR template (the view's crop, shrunk if needed so the window fits in the patch) at a
  random shift ``(dx, dy)`` in ``[-r, r]^2`` from the centre of a ``t + 2r`` optical search window cut from
  the same patch; each scorer is evaluated at every integer shift and its best shift is compared with the
  truth: CMR@1/2/3 px and RMSE in native pixels. With a refiner (``refine``), each trained scorer also gives
  a coarse-to-fine method ``"<name>><refiner>"``: the refiner's best shift within ``refine_radius`` px (per
  axis) of the trained scorer's best shift, so the learned model chooses the place and a training-free
  measure places it. With ``subpixel``, each best shift is refined by a parabola through its neighbours in x
  and in y (as the registration matcher does), so errors are no longer whole pixels.
- **retrieval**: each SAR patch is a query among ``N`` optical candidates (its own and ``N - 1`` other
  patches of the evaluation set drawn at random): recall@1/5/10. Where patches know their scene, two
  diagnostics say whether a method's misses are places of the query's own scene (neighbours) or other
  scenes: how many misses have another patch of the query's scene on top, and recall@1 with the query's
  other same-scene candidates left out.

Convention:
    Shifts are ``(dx, dy)`` = (column, row) native pixels; the template's top-left pixel lies at window pixel
    ``(r + dx, r + dy)``; a surface is indexed ``[r + dy, r + dx]``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from saropt.errors import EmptyResultError, InputError
from saropt.matching.metrics import retrieval_ranks
from saropt.matching.scoring import Scorer
from saropt.matching.views import ViewSpec, cut, make_view

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

PROTOCOLS = ("balanced", "hard", "localisation", "retrieval")

#: progress callback: (task description, items done, items total)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ProtocolSettings:
    """Sizes and seeds of the evaluation protocols.

    Attributes:
        seed: seed of negatives, shifts and candidate draws.
        max_patches: evaluate on at most this many patches (whole scenes drawn at random, so spatial
            neighbours stay together for hard negatives); 0 = all.
        negative_ratio: non-matching pairs per matching pair in the pair protocols.
        search_radius: localisation search radius ``r`` in native pixels.
        template_side: localisation template side in native pixels (0 = the evaluation view's crop, shrunk to
            fit the patch with the radius).
        max_templates: localisation templates (patches drawn at random); 0 = all.
        retrieval_candidates: ``N``, candidates per retrieval query (capped at the number of patches).
        max_queries: retrieval queries; 0 = all patches.
        batch_size: patches per inference batch.
        bootstrap: resamples of the paired bootstrap intervals (:mod:`saropt.matching.bootstrap`); 0 = none.
        refine: a training-free measure (``ncc``, ``mi``, ``cfog``) that refines each trained scorer's
            localisation within ``refine_radius`` px of its peak; ``""`` = none.
        refine_radius: half-side of the square around the trained peak the refiner searches (px).
        subpixel: refine every best shift to sub-pixel by a parabola through its neighbours (not on the
            search window's border).
    """

    seed: int = 0
    max_patches: int = 0
    negative_ratio: float = 1.0
    search_radius: int = 8
    template_side: int = 0
    max_templates: int = 50
    retrieval_candidates: int = 100
    max_queries: int = 0
    batch_size: int = 32
    bootstrap: int = 1000
    refine: str = ""
    refine_radius: int = 1
    subpixel: bool = False

    def __post_init__(self) -> None:
        if (
            min(
                self.search_radius, self.template_side, self.max_templates, self.max_patches, self.max_queries
            )
            < 0
        ):
            raise InputError("protocol sizes must be >= 0")
        if self.retrieval_candidates < 2:
            raise InputError("retrieval needs at least 2 candidates per query")
        if self.batch_size < 1 or self.negative_ratio <= 0:
            raise InputError("batch_size and negative_ratio must be > 0")
        if self.bootstrap != 0 and self.bootstrap < 10:
            raise InputError(f"bootstrap needs 0 (none) or at least 10 resamples, got {self.bootstrap}")
        if self.refine_radius < 0:
            raise InputError(f"refine_radius must be >= 0, got {self.refine_radius}")


def _matching_pairs(dataset: Any, negative_ratio: float, hard: bool, seed: int) -> Any:
    from saropt.data.pairs import MatchingPairs

    return MatchingPairs(dataset, negative_ratio=negative_ratio, hard=hard, seed=seed)


def _scene_of(dataset: Any, i: int) -> str:
    if hasattr(dataset, "records"):
        return str(dataset.records[i].scene)
    if hasattr(dataset, "meta"):
        return str(dataset.meta(i).get("scene", ""))
    return str(dataset[i]["meta"].get("scene", ""))


def limit_patches(dataset: Any, max_patches: int, seed: int) -> Any:
    """At most ``max_patches`` patches of a dataset, taken as whole scenes in a seeded random order.

    Whole scenes keep spatial neighbours together (hard negatives need them). The dataset must offer
    ``select(indices)`` (every saropt reader does) when it has to be reduced.
    """
    n = len(dataset)
    if max_patches <= 0 or n <= max_patches:
        return dataset
    by_scene: dict[str, list[int]] = {}
    for i in range(n):
        by_scene.setdefault(_scene_of(dataset, i), []).append(i)
    order = np.random.default_rng(seed).permutation(sorted(by_scene))
    keep: list[int] = []
    for scene in order:
        if len(keep) >= max_patches:
            break
        keep.extend(by_scene[str(scene)])
    if not hasattr(dataset, "select"):
        raise InputError("this dataset cannot be reduced (no select()); evaluate without max_patches")
    return dataset.select(sorted(keep))


def _batches(n: int, size: int) -> list[range]:
    return [range(s, min(s + size, n)) for s in range(0, n, size)]


def stack_views(items: Sequence[dict[str, Any]], spec: ViewSpec) -> tuple["torch.Tensor", "torch.Tensor"]:
    """The views of samples ``{"sar", "opt"}`` (centred), stacked into two batches."""
    import torch

    views = [make_view(it["sar"], it["opt"], spec) for it in items]
    return torch.stack([v[0] for v in views]), torch.stack([v[1] for v in views])


def spec_of(scorer: Scorer, default: ViewSpec) -> ViewSpec:
    """The view a scorer sees: its own ``spec`` attribute (trained models) or the protocol default."""
    spec = getattr(scorer, "spec", None)
    return spec if isinstance(spec, ViewSpec) else default


def _views_by_spec(
    items: Sequence[dict[str, Any]], scorers: Sequence[Scorer], spec: ViewSpec
) -> dict[ViewSpec, tuple["torch.Tensor", "torch.Tensor"]]:
    return {sp: stack_views(items, sp) for sp in {spec_of(s, spec) for s in scorers}}


@dataclass(frozen=True)
class PairScores:
    """Scores of every scorer on one set of labelled pairs."""

    labels: np.ndarray
    scores: dict[str, np.ndarray]


def score_pairs(
    pairs: Sequence[dict[str, Any]],
    scorers: Sequence[Scorer],
    spec: ViewSpec,
    batch_size: int = 32,
    progress: Progress | None = None,
    desc: str = "pairs",
) -> PairScores:
    """Score labelled pairs (items ``{"sar", "opt", "label"}``) with every scorer.

    Args:
        pairs: e.g. a ``MatchingPairs`` dataset.
        scorers: the methods.
        spec: view (centred crop, resize) applied to every pair.
        batch_size: pairs per batch.
        progress: optional callback.
        desc: progress description.

    Returns:
        Labels and per-scorer scores, aligned.

    Raises:
        EmptyResultError: no pairs.
    """
    n = len(pairs)
    if n == 0:
        raise EmptyResultError("no pairs to evaluate: the split is empty")
    labels = np.empty(n, dtype=np.int64)
    out = {s.name: np.empty(n, dtype=np.float64) for s in scorers}
    done = 0
    for rng_ in _batches(n, batch_size):
        items = [pairs[i] for i in rng_]
        views = _views_by_spec(items, scorers, spec)
        labels[rng_.start : rng_.stop] = [int(it["label"]) for it in items]
        for s in scorers:
            sar, opt = views[spec_of(s, spec)]
            out[s.name][rng_.start : rng_.stop] = s.pair_scores(s.encode_sar(sar), s.encode_opt(opt))
        done += len(items)
        if progress:
            progress(desc, done, n)
    return PairScores(labels, out)


@dataclass(frozen=True)
class PatchCodes:
    """Every scorer's codes of every patch of a dataset (SAR and optical), computed once."""

    sar: dict[str, Any]
    opt: dict[str, Any]
    count: int
    scenes: np.ndarray | None = None  # (count,) scene of each patch; None when the reader has none


def encode_patches(
    dataset: Any,
    scorers: Sequence[Scorer],
    spec: ViewSpec,
    batch_size: int = 32,
    progress: Progress | None = None,
    desc: str = "encode",
) -> PatchCodes:
    """Decode each patch pair once and encode both sides with every scorer (centred views).

    Raises:
        EmptyResultError: empty dataset.
    """
    n = len(dataset)
    if n == 0:
        raise EmptyResultError("no patches to evaluate: the split is empty")
    cs: dict[str, list[Any]] = {s.name: [] for s in scorers}
    co: dict[str, list[Any]] = {s.name: [] for s in scorers}
    scene_list: list[str] = []
    for b in _batches(n, batch_size):
        items = [dataset[i] for i in b]
        scene_list.extend(str(it.get("meta", {}).get("scene", "") or "") for it in items)  # already decoded
        views = _views_by_spec(items, scorers, spec)
        for s in scorers:
            sar, opt = views[spec_of(s, spec)]
            cs[s.name].append(s.encode_sar(sar))
            co[s.name].append(s.encode_opt(opt))
        if progress:
            progress(desc, b.stop, n)
    scenes = np.asarray(scene_list, dtype=object)
    known = bool(np.all(scenes != ""))
    return PatchCodes(
        {k: _concat(v) for k, v in cs.items()},
        {k: _concat(v) for k, v in co.items()},
        n,
        scenes if known else None,
    )


def pair_indices(
    dataset: Any, negative_ratio: float, hard: bool, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The labelled pairs of :class:`saropt.data.pairs.MatchingPairs` as patch indices.

    Returns:
        ``(sar_idx, opt_idx, labels)``: every patch with itself (label 1), then each planned negative (0).
    """
    pairs = _matching_pairs(dataset, negative_ratio, hard, seed)
    anchors, partners, _, _ = pairs.plan()
    n = len(dataset)
    sar_idx = np.concatenate([np.arange(n), np.asarray(anchors, dtype=np.int64)])
    opt_idx = np.concatenate([np.arange(n), np.asarray(partners, dtype=np.int64)])
    return sar_idx, opt_idx, np.asarray(pairs.labels(), dtype=np.int64)


def pair_protocol(
    dataset: Any,
    codes: PatchCodes,
    scorers: Sequence[Scorer],
    hard: bool,
    settings: ProtocolSettings,
    chunk: int = 256,
) -> PairScores:
    """The balanced (``hard=False``) or hard-negative (``hard=True``) pair protocol on one dataset split.

    Pairs are those of :class:`saropt.data.pairs.MatchingPairs` (every patch as a positive, then its planned
    negatives); they are scored from the patch codes, so no patch is decoded or encoded twice.
    """
    sar_idx, opt_idx, labels = pair_indices(dataset, settings.negative_ratio, hard, settings.seed)
    out: dict[str, np.ndarray] = {}
    for s in scorers:
        parts = [
            s.pair_scores(
                _rows(codes.sar[s.name], sar_idx[k : k + chunk]),
                _rows(codes.opt[s.name], opt_idx[k : k + chunk]),
            )
            for k in range(0, len(sar_idx), chunk)
        ]
        out[s.name] = np.concatenate(parts).astype(np.float64)
    return PairScores(labels, out)


@dataclass(frozen=True)
class LocalisationResult:
    """Predicted and true template shifts per scorer, and each template's scene (``None`` when unknown)."""

    true_xy: np.ndarray
    pred_xy: dict[str, np.ndarray]
    template_side: int
    search_radius: int
    scenes: np.ndarray | None = None


def localisation_geometry(
    patch_side: int, spec: ViewSpec, radius: int, template_side: int = 0
) -> tuple[int, int]:
    """Template side ``t`` and search-window top-left ``w0`` inside a patch.

    ``t`` is ``template_side``, or else the view's crop side shrunk so that the ``t + 2r`` window fits in the
    patch; the window is centred.

    Raises:
        InputError: when the patch is too small for the radius, or for ``template_side`` and the radius.

    Convention:
        ``w0`` is both the column and the row of the window's top-left pixel in the patch (0-based).
    """
    if template_side:
        if template_side + 2 * radius > patch_side:
            raise InputError(
                f"a {template_side} px template with a {radius} px search radius does not fit {patch_side} px "
                "patches; lower the template side or the radius"
            )
        return template_side, (patch_side - (template_side + 2 * radius)) // 2
    t = min(spec.crop_side(patch_side), patch_side - 2 * radius)
    if t < 8:
        raise InputError(
            f"{patch_side} px patches are too small for a {radius} px search radius; lower search_radius"
        )
    return t, (patch_side - (t + 2 * radius)) // 2


def refined_name(name: str, refiner: str) -> str:
    """Report name of a trained scorer's localisation refined by a training-free measure."""
    return f"{name}>{refiner}"


def _peak(surf: np.ndarray) -> tuple[int, int]:
    """``(ix, iy)`` of a surface's maximum (the first one, row-major)."""
    iy, ix = np.unravel_index(int(np.argmax(surf)), surf.shape)
    return int(ix), int(iy)


def peak_shift(surf: np.ndarray, peak: tuple[int, int], subpixel: bool) -> tuple[float, float]:
    """``(dx, dy)`` of a ``(2r + 1, 2r + 1)`` surface's peak ``(ix, iy)``, refined to sub-pixel by a parabola
    in x and in y (:func:`~saropt.registration.auto.matcher.subpixel_offsets`) when asked, except on the
    border, where one neighbour is missing."""
    ix, iy = peak
    r = (surf.shape[0] - 1) // 2
    if not subpixel:
        return float(ix - r), float(iy - r)
    from saropt.registration.auto.matcher import subpixel_offsets

    fx, fy = subpixel_offsets(surf[None].astype(np.float64), np.array([iy]), np.array([ix]))
    inside_x, inside_y = 0 < ix < 2 * r, 0 < iy < 2 * r
    return ix - r + (float(fx[0]) if inside_x else 0.0), iy - r + (float(fy[0]) if inside_y else 0.0)


def refine_peak(coarse: tuple[int, int], fine: np.ndarray, radius: int) -> tuple[int, int]:
    """``(ix, iy)`` of the maximum of ``fine`` within ``radius`` px (per axis) of the ``coarse`` peak."""
    ix, iy = coarse
    y0, x0 = max(iy - radius, 0), max(ix - radius, 0)
    jx, jy = _peak(fine[y0 : iy + radius + 1, x0 : ix + radius + 1])
    return x0 + jx, y0 + jy


def localisation_protocol(
    dataset: Any,
    scorers: Sequence[Scorer],
    spec: ViewSpec,
    settings: ProtocolSettings,
    progress: Progress | None = None,
    refiner: Scorer | None = None,
) -> LocalisationResult:
    """Slide every scorer over an optical search window around a shifted SAR template.

    Args:
        refiner: a training-free scorer that refines each trained scorer's peak within
            ``settings.refine_radius`` px; its predictions are reported as :func:`refined_name`. When the
            refiner is one of ``scorers`` (the same object), its surface is computed once.

    Returns:
        Truth and per-scorer predictions, ``(N, 2)`` shifts ``(dx, dy)``, and each template's scene.

    Raises:
        EmptyResultError: empty dataset.
    """
    n = len(dataset)
    if n == 0:
        raise EmptyResultError("no patches for localisation: the split is empty")
    rng = np.random.default_rng([settings.seed, 1])
    k = n if settings.max_templates == 0 else min(n, settings.max_templates)
    idx = np.sort(rng.choice(n, size=k, replace=False))
    r = settings.search_radius
    shifts = rng.integers(-r, r + 1, size=(k, 2))
    preds = {s.name: np.zeros((k, 2), dtype=np.float64) for s in scorers}
    coarse = [s for s in scorers if s.trained] if refiner is not None else []
    for s in coarse:
        preds[refined_name(s.name, refiner.name)] = np.zeros((k, 2), dtype=np.float64)
    shared = any(s is refiner for s in scorers)
    scenes = np.full(k, "", dtype=object)
    t = None
    for j, i in enumerate(idx):
        item = dataset[int(i)]
        sar, opt = item["sar"], item["opt"]
        scenes[j] = str(item.get("meta", {}).get("scene", "") or "")  # already decoded, as in encode_patches
        side = min(sar.shape[-2:])
        t, w0 = localisation_geometry(side, spec, r, settings.template_side)
        dx, dy = int(shifts[j, 0]), int(shifts[j, 1])
        template = cut(sar, w0 + r + dx, w0 + r + dy, t)
        window = cut(opt, w0, w0, t + 2 * r)
        surfs, peaks = {}, {}
        for s in scorers:
            surfs[s.name] = s.surface(template, window, spec_of(s, spec), side)
            peaks[s.name] = _peak(surfs[s.name])
            preds[s.name][j] = peak_shift(surfs[s.name], peaks[s.name], settings.subpixel)
        if coarse:
            assert refiner is not None
            if shared:
                fine = surfs[refiner.name]
            else:
                fine = refiner.surface(template, window, spec_of(refiner, spec), side)
            for s in coarse:
                at = refine_peak(peaks[s.name], fine, settings.refine_radius)
                preds[refined_name(s.name, refiner.name)][j] = peak_shift(fine, at, settings.subpixel)
        if progress:
            progress("localisation", j + 1, k)
    known = scenes if bool(np.all(scenes != "")) else None
    return LocalisationResult(shifts.astype(np.float64), preds, int(t or 0), r, known)


@dataclass(frozen=True)
class RetrievalResult:
    """Rank of the true candidate of every query, per scorer.

    ``top_same_scene[m][q]``: the best-scoring wrong candidate of query ``q`` is another patch of the query's
    scene; ``ranks_other_scenes[m][q]``: the true candidate's rank once the query's other same-scene candidates
    are left out. Both are empty when the patches' scenes are unknown.
    """

    ranks: dict[str, np.ndarray]
    candidates: int
    top_same_scene: dict[str, np.ndarray] = field(default_factory=dict)
    ranks_other_scenes: dict[str, np.ndarray] = field(default_factory=dict)


def retrieval_protocol(
    codes: PatchCodes,
    scorers: Sequence[Scorer],
    settings: ProtocolSettings,
) -> RetrievalResult:
    """Rank each query's own optical patch among ``N`` candidates.

    Each query keeps its own column plus ``N - 1`` other patches drawn at random (the same draw for every
    scorer), scored from the patch codes.

    Raises:
        EmptyResultError: fewer than two patches.
    """
    n = codes.count
    if n < 2:
        raise EmptyResultError("retrieval needs at least two patches in the split")
    ncand = min(settings.retrieval_candidates, n)
    rng = np.random.default_rng([settings.seed, 2])
    q = n if settings.max_queries == 0 else min(n, settings.max_queries)
    queries = np.sort(rng.choice(n, size=q, replace=False))
    cols = np.empty((q, ncand), dtype=np.int64)
    for j, i in enumerate(queries):
        others = rng.choice(n - 1, size=ncand - 1, replace=False)
        cols[j, 0] = i
        cols[j, 1:] = others + (others >= i)
    same = neighbours = None
    if codes.scenes is not None:
        same = codes.scenes[cols] == codes.scenes[queries][:, None]  # (q, N); column 0 is the query's own
        neighbours = same.copy()  # the query's other same-scene candidates
        neighbours[:, 0] = False
    ranks: dict[str, np.ndarray] = {}
    top_same: dict[str, np.ndarray] = {}
    ranks_other: dict[str, np.ndarray] = {}
    true_col = np.zeros(q, dtype=np.int64)
    for s in scorers:
        full = s.score_matrix(_rows(codes.sar[s.name], queries), codes.opt[s.name])  # (q, n)
        sub = np.take_along_axis(np.asarray(full), cols, axis=1)
        ranks[s.name] = retrieval_ranks(sub, true_col)  # true candidate in column 0
        if same is not None and neighbours is not None:
            top_same[s.name] = same[np.arange(q), 1 + np.argmax(sub[:, 1:], axis=1)]
            ranks_other[s.name] = retrieval_ranks(np.where(neighbours, -np.inf, sub), true_col)
    return RetrievalResult(ranks, ncand, top_same, ranks_other)


def _concat(parts: list[Any]) -> Any:
    import torch

    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts)
    return np.concatenate(parts)


def _rows(codes: Any, rows: np.ndarray) -> Any:
    import torch

    if isinstance(codes, torch.Tensor):
        return codes[torch.as_tensor(rows)]
    return codes[rows]
