"""Optimizers: SGD, MEI, RMSprop, Adam. Each works per element or per row, so a
row's update never depends on the other rows of the batch."""

from __future__ import annotations

import torch
from torch import Tensor

from .config import OptimizerOptions


class MEIStep(torch.optim.Optimizer):
    """theta += lr * g / mean(|g|), the mean taken over each row of each parameter (ascent written as
    descent on the loss: theta -= lr * grad / mean|grad|)."""

    def __init__(self, params, lr: float = 0.01, eps: float = 1e-12) -> None:
        super().__init__(params, {"lr": lr, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g: Tensor = p.grad
                scale = g.abs().reshape(g.shape[0], -1).mean(1).add(group["eps"])
                p.sub_(group["lr"] * g / scale.view(-1, *([1] * (g.dim() - 1))))


def build_optimizer(params: list[Tensor], options: OptimizerOptions, lr: float) -> torch.optim.Optimizer:
    if options.name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=options.momentum)
    if options.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=options.momentum)
    if options.name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return MEIStep(params, lr=lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
