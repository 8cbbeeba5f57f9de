"""Receptive fields: where in the input a target unit has any gradient at all.

A unit's field is estimated once per run from the gradient of its objective at FIELD_PROBES random inputs
(uniform over the model's declared range, else standard normal): the pixels where the mean |gradient| exceeds
FIELD_THRESHOLD of its largest value, in any channel. A conv channel read at the centre sees only the pixels
its kernels reach; a fully connected unit (every z2 unit of the TDVAE) sees the whole input.

The field serves twice: the gradient filter keeps its filtered update inside it (a 1/f filter of the gradient
is global, and would paint structure where the unit cannot see), and the `inside_receptive_field` check
measures how much of a run's change of the input lies outside it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..model.seam import Explorable
from .bank import ObjectiveBank
from .config import AMConfig

FIELD_PROBES = 8  # random inputs per target
FIELD_THRESHOLD = 1e-3  # of the largest mean |gradient|: below it a pixel is outside the field
FIELD_SEED_STREAM = 11  # the probes' generator, apart from the run's own numbers


def probe_inputs(model: Explorable, n: int, seed: int) -> Tensor:
    """n random inputs: uniform over the declared range, else standard normal."""
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, FIELD_SEED_STREAM]).generate_state(1)[0]))
    shape = (n, *model.input.shape)
    if model.input.range is not None:
        low, high = model.input.range
        return torch.rand(shape, generator=generator) * (high - low) + low
    return torch.randn(shape, generator=generator)


def receptive_fields(model: Explorable, bank: ObjectiveBank, seed: int, probes: int = FIELD_PROBES) -> Tensor:
    """(targets, H, W) booleans: each target's field. One forward and backward pass for all targets."""
    targets = len(bank.objectives)
    x = probe_inputs(model, probes, seed).to(model.device)
    x = x.repeat(targets, 1, 1, 1).requires_grad_(True)  # target t's probes are images t*probes .. (t+1)*probes-1
    target_of_image = torch.arange(targets, device=x.device).repeat_interleave(probes)
    with torch.enable_grad():
        activation = bank.activation(model.readouts(x, bank.needed), target_of_image)
        (grad,) = torch.autograd.grad(activation.sum(), x)
    strength = grad.abs().view(targets, probes, *grad.shape[1:]).mean(1).amax(1)  # (targets, H, W)
    peak = strength.flatten(1).amax(1).clamp_min(1e-30).view(-1, 1, 1)
    return strength > FIELD_THRESHOLD * peak


def reach(config: AMConfig, height: int, width: int) -> int:
    """How far R_pre moves a pixel: the jitter, and the zoom's largest shift at the border."""
    return config.pre.jitter_pixels(height, width) + int(np.ceil(config.pre.scale * max(height, width) / 2))


def dilate(fields: Tensor, radius: int) -> Tensor:
    """Each field grown by `radius` pixels (a square neighbourhood, wrapping around like the jitter)."""
    if radius <= 0:
        return fields
    size = 2 * radius + 1
    padded = F.pad(fields.float().unsqueeze(1), (radius,) * 4, mode="circular")
    return F.max_pool2d(padded, size, stride=1).squeeze(1) > 0


def field_masks(grown: Tensor, rows_per_target: int) -> Tensor | None:
    """The gradient filter's mask per row, (rows, 1, H, W) floats, from each target's field grown by R_pre's
    reach; None where every field covers the whole input (the filter is then left as it is)."""
    if bool(grown.all()):
        return None
    return grown.repeat_interleave(rows_per_target, 0).unsqueeze(1).float()
