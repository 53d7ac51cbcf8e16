"""Losses of the Bridge Neural Network and of the pseudo-siamese classifier, and in-batch negatives.

BNN (Xu et al., AAAI 2019): each branch ends in an ``n``-dimensional sigmoid output, so embeddings lie in
``[0, 1]^n`` and the normalised distance ``d = ||f_sar(x) - f_opt(y)||_2 / sqrt(n)`` lies in ``[0, 1]``. The
loss pulls matching pairs to ``d = 0`` and pushes non-matching pairs to ``d = 1``::

    L = mean_{positives} d^2 + mean_{negatives} (1 - d)^2

Negatives are made inside a batch of matching pairs by re-pairing: the optical embeddings are rolled by a
shift ``k`` in ``1..B-1`` so that SAR patch ``i`` meets optical patch ``(i - k) mod B``.

The dense matcher learns localisation directly: a softmax over the offsets of a SAR template inside its
optical search window (:func:`dense_localisation_loss`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def bnn_distance(emb_sar: "torch.Tensor", emb_opt: "torch.Tensor", eps: float = 1e-12) -> "torch.Tensor":
    """Normalised Euclidean distance ``||a - b||_2 / sqrt(n)`` between paired embeddings.

    Args:
        emb_sar: ``(B, n)`` SAR embeddings in ``[0, 1]``.
        emb_opt: ``(B, n)`` optical embeddings in ``[0, 1]``.
        eps: floor under the squared distance so the gradient stays finite at ``d = 0``.

    Returns:
        ``(B,)`` distances in ``[0, 1]`` (exactly, for sigmoid embeddings).
    """
    import torch

    n = emb_sar.shape[-1]
    sq = torch.sum((emb_sar - emb_opt) ** 2, dim=-1) / n
    return torch.sqrt(torch.clamp(sq, min=eps))


def bnn_distance_matrix(emb_sar: "torch.Tensor", emb_opt: "torch.Tensor") -> "torch.Tensor":
    """All-pairs normalised distances.

    Args:
        emb_sar: ``(Ns, n)``.
        emb_opt: ``(No, n)``.

    Returns:
        ``(Ns, No)``: entry ``[i, j]`` is the distance between SAR ``i`` and optical ``j``.
    """
    import torch

    n = emb_sar.shape[-1]
    return torch.cdist(emb_sar.double(), emb_opt.double()).to(emb_sar.dtype) / (n**0.5)


def bnn_loss(
    d_pos: "torch.Tensor",
    d_neg: "torch.Tensor",
    neg_weight: "torch.Tensor | None" = None,
    neg_margin: float = 1.0,
) -> "torch.Tensor":
    """The BNN loss ``mean(d_pos^2) + mean((1 - d_neg)^2)``, optionally with a margin and negative weights.

    Args:
        d_pos: ``(P,)`` distances of matching pairs.
        d_neg: ``(Q,)`` distances of non-matching pairs.
        neg_weight: optional ``(Q,)`` weights of the negatives (0 leaves a pair out); the negative term is
            their weighted mean (0 when every weight is 0).
        neg_margin: negatives cost ``max(0, neg_margin - d)^2``; 1.0 (the default) is the paper's
            ``(1 - d)^2``.

    Returns:
        A scalar tensor.
    """
    import torch

    neg = torch.clamp(neg_margin - d_neg, min=0.0) ** 2
    if neg_weight is None:
        return (d_pos**2).mean() + neg.mean()
    w = neg_weight.to(neg.dtype)
    return (d_pos**2).mean() + (neg * w).sum() / torch.clamp(w.sum(), min=1.0)


def negative_weights(
    scene: "torch.Tensor", centre: "torch.Tensor", shift: int, min_offset: float
) -> "torch.Tensor | None":
    """Which re-paired pairs of a batch are true non-matches: 0 for two windows of one scene that overlap.

    Pair ``i`` of re-pairing ``shift`` is SAR window ``i`` with optical window ``(i - shift) mod B``
    (:func:`roll_pairs`). It is left out (weight 0) when both windows come from the same scene and their
    centres are closer than ``min_offset`` in x **and** in y; unknown scenes (``-1``) or centres (NaN) are
    always kept.

    Args:
        scene: ``(B,)`` scene numbers.
        centre: ``(B, 2)`` window centres ``(x, y)`` in scene pixels.
        shift: the roll shift.
        min_offset: minimum centre distance in pixels (0: keep every pair).

    Returns:
        ``(B,)`` float weights, or ``None`` when every pair is kept.

    Convention:
        ``centre`` = ``(x, y)`` = (column, row), pixels of the scene, 0-based.
    """
    if min_offset <= 0:
        return None
    return rolled_weights(overlap_matrix(scene, centre, min_offset), shift)


def rolled_weights(overlap: "torch.Tensor", shift: int) -> "torch.Tensor | None":
    """:func:`negative_weights` from the batch's :func:`overlap_matrix`, computed once for all shifts.

    Args:
        overlap: ``(B, B)`` bool, :func:`overlap_matrix` of the batch.
        shift: the roll shift.

    Returns:
        ``(B,)`` float weights (0 where SAR window ``i`` and optical window ``(i - shift) mod B`` overlap), or
        ``None`` when every pair is kept.
    """
    import torch

    rows = torch.arange(overlap.shape[0])
    drop = overlap[rows, (rows - shift) % overlap.shape[0]]
    if not bool(drop.any()):
        return None
    return (~drop).float()


def pair_bce_loss(logit_pos: "torch.Tensor", logit_neg: "torch.Tensor") -> "torch.Tensor":
    """Binary cross-entropy of the pseudo-siamese classifier, positives and negatives weighted equally.

    Args:
        logit_pos: ``(P,)`` logits of matching pairs (target 1).
        logit_neg: ``(Q,)`` logits of non-matching pairs (target 0).

    Returns:
        ``0.5 * (BCE(pos) + BCE(neg))``, a scalar tensor.
    """
    import torch
    import torch.nn.functional as F

    lp = F.binary_cross_entropy_with_logits(logit_pos, torch.ones_like(logit_pos))
    ln = F.binary_cross_entropy_with_logits(logit_neg, torch.zeros_like(logit_neg))
    return 0.5 * (lp + ln)


def negative_shifts(batch_size: int, count: int, generator: "torch.Generator | None" = None) -> list[int]:
    """Distinct roll shifts in ``1..B-1`` used to re-pair a batch into negatives.

    Args:
        batch_size: ``B``; at least 2.
        count: how many negative re-pairings per positive (capped at ``B - 1``).
        generator: torch generator for reproducibility.

    Returns:
        ``min(count, B - 1)`` distinct shifts.
    """
    import torch

    if batch_size < 2 or count < 1:
        return []
    perm = torch.randperm(batch_size - 1, generator=generator)[: min(count, batch_size - 1)] + 1
    return [int(k) for k in perm]


def roll_pairs(x: "torch.Tensor", shift: int) -> "torch.Tensor":
    """Re-pair a batch: row ``i`` of the result is row ``(i - shift) mod B`` of ``x``.

    With ``0 < shift < B`` no row stays with its partner, so ``(sar[i], roll_pairs(opt, k)[i])`` are all
    non-matching pairs (assuming the batch holds distinct places).
    """
    import torch

    return torch.roll(x, shifts=shift, dims=0)


def overlap_matrix(scene: "torch.Tensor", centre: "torch.Tensor", min_offset: float) -> "torch.Tensor":
    """``(B, B)`` bool: windows ``i`` and ``j`` (``i != j``) of one scene whose centres are closer than
    ``min_offset`` in x and in y, so that ``(sar i, opt j)`` is not a true non-match.

    Args:
        scene: ``(B,)`` scene numbers (-1 unknown: never overlapping).
        centre: ``(B, 2)`` window centres ``(x, y)`` in scene pixels (NaN unknown).
        min_offset: minimum centre distance in pixels (0: nothing overlaps).

    Convention:
        ``centre`` = ``(x, y)`` = (column, row), pixels of the scene, 0-based.
    """
    import torch

    b = scene.shape[0]
    if min_offset <= 0:
        return torch.zeros((b, b), dtype=torch.bool)
    gap = (centre[:, None, :] - centre[None, :, :]).abs()
    near = (gap[..., 0] < min_offset) & (gap[..., 1] < min_offset)
    same = (scene[:, None] == scene[None, :]) & (scene[:, None] >= 0)
    return same & near & ~torch.eye(b, dtype=torch.bool)


def info_nce_loss(
    emb_sar: "torch.Tensor",
    emb_opt: "torch.Tensor",
    temperature: float,
    exclude: "torch.Tensor | None" = None,
) -> "torch.Tensor":
    """Symmetric InfoNCE on BNN distances: each SAR window must pick its optical window among the batch's
    (and the other way round), with logits ``-d / temperature``.

    It ranks every positive against all ``B - 1`` in-batch negatives at once and weights hard negatives
    more (softmax), where the pair loss of the paper weights every negative the same.

    Args:
        emb_sar: ``(B, n)`` SAR embeddings.
        emb_opt: ``(B, n)`` optical embeddings of the same places.
        temperature: softmax temperature on the normalised distance ``d`` (in ``[0, 1]``).
        exclude: optional ``(B, B)`` bool of pairs that are neither positive nor negative (overlapping
            windows; :func:`overlap_matrix`).

    Returns:
        A scalar tensor.
    """
    import torch
    import torch.nn.functional as F

    logits = -bnn_distance(emb_sar[:, None, :], emb_opt[None, :, :]) / temperature  # (B, B)
    if exclude is not None:
        logits = logits.masked_fill(exclude.to(logits.device), float("-inf"))
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def shift_ranking_loss(
    emb_sar: "torch.Tensor",
    emb_opt: "torch.Tensor",
    emb_shift: "torch.Tensor",
    temperature: float,
    valid: "torch.Tensor | None" = None,
) -> "torch.Tensor":
    """Each SAR window must be closer to its own optical window than to shifted copies of it.

    A softmax cross-entropy over the logits ``-d / temperature`` of the positive (class 0) and its ``K``
    shifted copies. In-batch negatives are other places; these are the same place a few pixels off, the
    case that localisation and near-neighbour negatives turn on.

    Args:
        emb_sar: ``(B, n)`` SAR embeddings.
        emb_opt: ``(B, n)`` optical embeddings of the same windows.
        emb_shift: ``(B, K, n)`` optical embeddings of shifted windows.
        temperature: softmax temperature on the normalised distance ``d``.
        valid: optional ``(B, K)`` bool; false columns are left out.

    Returns:
        A scalar tensor.
    """
    import torch
    import torch.nn.functional as F

    d_pos = bnn_distance(emb_sar, emb_opt)[:, None]
    d_shift = bnn_distance(emb_sar[:, None, :].expand_as(emb_shift), emb_shift)
    logits = -torch.cat([d_pos, d_shift], dim=1) / temperature
    if valid is not None:
        keep = torch.cat([torch.ones_like(valid[:, :1]), valid], dim=1).to(logits.device, torch.bool)
        logits = logits.masked_fill(~keep, float("-inf"))
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


def offset_targets(dx: "torch.Tensor", dy: "torch.Tensor", radius: int) -> "torch.Tensor":
    """Row-major class index of offsets ``(dx, dy)`` in ``[-r, r]^2`` on a ``(2r + 1)^2`` surface."""
    return (dy + radius) * (2 * radius + 1) + (dx + radius)


def dense_localisation_loss(
    model: "torch.nn.Module",
    sar: "torch.Tensor",
    opt: "torch.Tensor",
    radius: int,
    generator: "torch.Generator | None" = None,
) -> "torch.Tensor":
    """Softmax cross-entropy of the true offset of shifted SAR templates over their optical windows.

    Each aligned ``(S, S)`` pair gives an optical search window and a SAR template of side ``t = S - 2r``
    cut at a random offset ``(dx, dy)`` in ``[-r, r]^2`` from the centre; the model's correlation logits over the
    ``(2r + 1)^2`` offsets must peak at ``(dx, dy)``.

    Args:
        model: a :class:`saropt.matching.models.DenseMatcher` (``model(template, window)`` gives the logits).
        sar: ``(B, C, S, S)`` SAR windows.
        opt: ``(B, 3, S, S)`` optical windows of the same places.
        radius: ``r``, native pixels.
        generator: draws the offsets.

    Returns:
        A scalar loss tensor.
    """
    import torch
    import torch.nn.functional as F

    b, _, s, _ = sar.shape
    t = s - 2 * radius
    if t < 8:
        raise ValueError(f"{s} px windows leave a {t} px template at radius {radius}")
    d = torch.randint(-radius, radius + 1, (2, b), generator=generator)
    templates = torch.stack(
        [
            sar[
                i,
                :,
                radius + int(d[1, i]) : radius + int(d[1, i]) + t,
                radius + int(d[0, i]) : radius + int(d[0, i]) + t,
            ]
            for i in range(b)
        ]
    )
    logits = model(templates, opt).float()
    return F.cross_entropy(logits, offset_targets(d[0], d[1], radius).to(logits.device))
