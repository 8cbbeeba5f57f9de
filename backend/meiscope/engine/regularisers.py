"""The regularisers of the update rule, each acting on a batch of images (N, C, H, W)
and treating every image on its own, so that batching never mixes units.

R_pre:  jitter, zoom, normalise            (differentiable, before the forward pass)
R_grad: SpectrumFilter                     (identity forward, 1/|f|^gamma filtered backward)
R_obj:  total_variation, l1, l2, diversity (terms of the objective)
R_post: gaussian_blur, bilateral, tv_denoise, renorm, clip (in place on the parameter, after the step)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# ---- R_pre --------------------------------------------------------------------------------------


def jitter(x: Tensor, shifts: Tensor) -> Tensor:
    """Circular shift of image n by shifts[n] = (dy, dx) pixels, as one gather."""
    n, c, h, w = x.shape
    rows = (torch.arange(h, device=x.device).view(1, h, 1) - shifts[:, 0].view(n, 1, 1)) % h
    cols = (torch.arange(w, device=x.device).view(1, 1, w) - shifts[:, 1].view(n, 1, 1)) % w
    index = (rows * w + cols).reshape(n, 1, h * w).expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, index).reshape(n, c, h, w)


def zoom(x: Tensor, factors: Tensor) -> Tensor:
    """Zoom image n about its centre by factors[n] (bilinear, reflected border)."""
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = 1.0 / factors
    theta[:, 1, 1] = 1.0 / factors
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def normalise(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Zero mean and unit pixel std per image (the scale of the whitened training patches)."""
    flat = x.flatten(1)
    flat = (flat - flat.mean(1, keepdim=True)) / (flat.std(1, keepdim=True) + eps)
    return flat.view_as(x)


# ---- R_grad -------------------------------------------------------------------------------------


def spectrum_weights(size: int | tuple[int, int], gamma: float, device: torch.device) -> Tensor:
    """1 / max(|f|, 1)^gamma on the rfft2 grid of a size x size (or height x width) image, |f| in cycles per
    image (DC passes unchanged)."""
    height, width = (size, size) if isinstance(size, int) else size
    fy = torch.fft.fftfreq(height, d=1.0 / height, device=device).view(-1, 1)
    fx = torch.fft.rfftfreq(width, d=1.0 / width, device=device).view(1, -1)
    radius = torch.sqrt(fy.square() + fx.square()).clamp_min(1.0)
    return radius.pow(-gamma)


class SpectrumFilter(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient's 2-D spectrum by `weights` on the way back, then
    (with a mask) keeps the filtered gradient inside each image's mask."""

    @staticmethod
    def forward(ctx, x: Tensor, weights: Tensor, mask: Tensor | None) -> Tensor:
        ctx.save_for_backward(weights, mask)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        weights, mask = ctx.saved_tensors
        size = grad.shape[-2:]
        filtered = torch.fft.irfft2(torch.fft.rfft2(grad) * weights, s=size)
        return (filtered if mask is None else filtered * mask), None, None


def filter_gradient(x: Tensor, gamma: float, mask: Tensor | None = None) -> Tensor:
    """The gradient filter's marker: x itself, whose gradient is low-passed by 1/|f|^gamma on the way back and
    kept inside `mask` (N, 1, H, W), each unit's receptive field (engine/fields.py), where one is given."""
    if gamma == 0:
        return x
    return SpectrumFilter.apply(x, spectrum_weights(tuple(x.shape[-2:]), gamma, x.device), mask)


# ---- R_obj --------------------------------------------------------------------------------------


def total_variation(x: Tensor) -> Tensor:
    """Anisotropic total variation per image: sum of |neighbour differences|, (N,)."""
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).sum(1)
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).sum(1)
    return dy + dx


def l1(x: Tensor) -> Tensor:
    return x.abs().flatten(1).sum(1)


def l2(x: Tensor) -> Tensor:
    return x.square().flatten(1).sum(1)


def diversity(x: Tensor, samples: int, metric: str) -> Tensor:
    """How far each image lies from the other samples of its target (images grouped `samples` at a time),
    mean over the others, (N,); larger is more diverse. correlation/cosine: 1 - similarity; euclidean:
    distance."""
    flat = x.reshape(-1, samples, x[0].numel())
    if metric == "correlation":
        flat = flat - flat.mean(-1, keepdim=True)
    if metric in ("correlation", "cosine"):
        unit = flat / (flat.norm(dim=-1, keepdim=True) + 1e-8)
        distance = 1.0 - unit @ unit.transpose(1, 2)
    elif metric == "euclidean":
        distance = (flat.unsqueeze(2) - flat.unsqueeze(1)).square().sum(-1).add(1e-12).sqrt()
    else:
        raise ValueError(f"unknown diversity metric {metric!r}")
    eye = torch.eye(samples, dtype=torch.bool, device=x.device)
    distance = distance.masked_fill(eye, 0.0)
    return (distance.sum(-1) / max(samples - 1, 1)).reshape(-1)


# ---- R_post (no autograd; they return new values to copy into the parameter) --------------------


def _gaussian_kernel(sigma: float, device: torch.device) -> Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with reflected borders."""
    k = _gaussian_kernel(sigma, x.device).to(x.dtype)
    r = (len(k) - 1) // 2
    n, c, h, w = x.shape
    y = x.reshape(n * c, 1, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect" if r < w else "replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect" if r < h else "replicate"), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def bilateral(x: Tensor, sigma_spatial: float, sigma_value: float) -> Tensor:
    """Bilateral filter: average of neighbours weighted by distance and by value difference."""
    n, c, h, w = x.shape
    r = max(1, math.ceil(2 * sigma_spatial))
    size = 2 * r + 1
    y = x.reshape(n * c, 1, h, w)
    patches = F.unfold(F.pad(y, (r, r, r, r), mode="reflect"), size).view(n * c, size * size, h * w)
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    spatial = torch.exp(-(t.view(-1, 1) ** 2 + t.view(1, -1) ** 2) / (2 * sigma_spatial**2)).view(1, -1, 1)
    centre = y.reshape(n * c, 1, h * w)
    weights = spatial * torch.exp(-(patches - centre).square() / (2 * sigma_value**2))
    return ((weights * patches).sum(1) / weights.sum(1)).view(n, c, h, w)


def tv_denoise(x: Tensor, weight: float) -> Tensor:
    """Chambolle's total-variation denoising (scikit-image), each image on its own."""
    from skimage.restoration import denoise_tv_chambolle  # imported here: it pulls in scipy.stats (~1 s)

    n, c, h, w = x.shape
    arr = x.detach().reshape(n * c, h, w).cpu().numpy()
    out = denoise_tv_chambolle(arr, weight=weight, channel_axis=0)
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).to(x.device, x.dtype).view(n, c, h, w)


def renorm(x: Tensor, max_norm: float) -> Tensor:
    """Scale every row whose L2 norm exceeds max_norm down to max_norm."""
    norms = x.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = (max_norm / norms).clamp(max=1.0)
    return x * factor.view(-1, *([1] * (x.dim() - 1)))
