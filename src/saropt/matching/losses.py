"""Losses of the Bridge Neural Network and of the pseudo-siamese classifier, and in-batch negatives.

BNN (Xu et al., AAAI 2019): each branch ends in an ``n``-dimensional sigmoid output, so embeddings lie in
``[0, 1]^n`` and the normalised distance ``d = ||f_sar(x) - f_opt(y)||_2 / sqrt(n)`` lies in ``[0, 1]``. The
loss pulls matching pairs to ``d = 0`` and pushes non-matching pairs to ``d = 1``::

    L = mean_{positives} d^2 + mean_{negatives} (1 - d)^2

Negatives are made inside a batch of matching pairs by re-pairing: the optical embeddings are rolled by a
shift ``k`` in ``1..B-1`` so that SAR patch ``i`` meets optical patch ``(i - k) mod B``.
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


def bnn_loss(d_pos: "torch.Tensor", d_neg: "torch.Tensor") -> "torch.Tensor":
    """The BNN loss ``mean(d_pos^2) + mean((1 - d_neg)^2)``.

    Args:
        d_pos: ``(P,)`` distances of matching pairs.
        d_neg: ``(Q,)`` distances of non-matching pairs.

    Returns:
        A scalar tensor.
    """
    return (d_pos**2).mean() + ((1.0 - d_neg) ** 2).mean()


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
