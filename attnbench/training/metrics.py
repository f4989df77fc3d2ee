"""Accuracy metrics, per sample, reduced by the mean (the reduction papers report).

neuraloperator's ``LpLoss`` sums over the batch by default; attnbench always averages, and says so.
"""

from __future__ import annotations

import torch

__all__ = ["rel_l2", "rel_mse", "top1"]


def rel_l2(pred: torch.Tensor, true: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Relative L2 error per sample, ``‖û − u‖₂ / ‖u‖₂``: ``[B, ...] → [B]``."""
    diff = (pred - true).flatten(1).norm(dim=1)
    return diff / true.flatten(1).norm(dim=1).clamp_min(eps)


def rel_mse(pred: torch.Tensor, true: torch.Tensor, eps: float = 1e-24) -> torch.Tensor:
    """Relative MSE per sample, ``‖û − u‖₂² / ‖u‖₂²`` (the MANO paper's Darcy metric): ``[B, ...] → [B]``."""
    diff = (pred - true).flatten(1).square().sum(dim=1)
    return diff / true.flatten(1).square().sum(dim=1).clamp_min(eps)


def top1(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample correctness of the arg-max class: ``[B, K], [B] → [B]`` (float 0/1)."""
    return (logits.argmax(dim=1) == labels).float()
