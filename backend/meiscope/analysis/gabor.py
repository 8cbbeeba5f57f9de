"""2-D Gabor functions and a least-squares fit of any square image to one."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage, optimize


@dataclass(frozen=True)
class GaborParams:
    x0: float  # centre, pixels (column)
    y0: float  # centre, pixels (row)
    theta: float  # orientation of the carrier's wave vector, radians in [0, pi)
    freq: float  # cycles per pixel
    phase: float  # radians
    sigma_x: float  # envelope std along the wave vector, pixels
    sigma_y: float  # envelope std along the stripes, pixels
    amplitude: float
    offset: float

    def as_array(self) -> np.ndarray:
        return np.array(list(asdict(self).values()), dtype=np.float64)


@dataclass(frozen=True)
class GaborFit:
    params: GaborParams
    r2: float  # fraction of the image's variance the Gabor explains
    image: np.ndarray  # the fitted Gabor on the same grid

    def summary(self) -> dict:
        p = self.params
        return {"r2": self.r2, "orientation_deg": float(np.degrees(p.theta) % 180), "freq_cpp": p.freq,
                "x0": p.x0, "y0": p.y0, "sigma_x": p.sigma_x, "sigma_y": p.sigma_y}


def gabor(params: GaborParams | np.ndarray, size: int) -> np.ndarray:
    """The Gabor with these parameters on a size x size pixel grid."""
    x0, y0, theta, freq, phase, sx, sy, amp, offset = (
        params.as_array() if isinstance(params, GaborParams) else np.asarray(params, dtype=np.float64)
    )
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    xr = (xx - x0) * np.cos(theta) + (yy - y0) * np.sin(theta)
    yr = -(xx - x0) * np.sin(theta) + (yy - y0) * np.cos(theta)
    envelope = np.exp(-0.5 * ((xr / sx) ** 2 + (yr / sy) ** 2))
    return amp * envelope * np.cos(2 * np.pi * freq * xr + phase) + offset


def _initial_guess(img: np.ndarray) -> tuple[float, float, float, float, float]:
    """Centre from the smoothed energy peak, frequency and orientation from the spectral peak."""
    size = img.shape[0]
    energy = ndimage.gaussian_filter((img - img.mean()) ** 2, sigma=2.0)
    y0, x0 = np.unravel_index(np.argmax(energy), energy.shape)
    spec = np.abs(np.fft.fft2(img - img.mean()))
    spec[0, 0] = 0.0
    ky, kx = np.unravel_index(np.argmax(spec), spec.shape)
    fy = np.fft.fftfreq(size)[ky]
    fx = np.fft.fftfreq(size)[kx]
    freq = float(np.hypot(fx, fy))
    theta = float(np.arctan2(fy, fx) % np.pi)
    radius = np.sqrt((energy > 0.5 * energy.max()).sum() / np.pi)
    return float(x0), float(y0), theta, max(freq, 1.0 / size), float(np.clip(radius, 1.0, size / 3))


def fit_gabor(img: np.ndarray) -> GaborFit:
    """Least-squares Gabor fit of a square image, started from several phases; the best R^2 wins."""
    img = np.asarray(img, dtype=np.float64)
    if img.ndim != 2 or img.shape[0] != img.shape[1]:
        raise ValueError(f"fit_gabor needs a square 2-D image, got shape {img.shape}")
    size = img.shape[0]
    total = float(((img - img.mean()) ** 2).sum())
    if total == 0.0:
        p = GaborParams(size / 2, size / 2, 0.0, 0.1, 0.0, 1.0, 1.0, 0.0, float(img.mean()))
        return GaborFit(p, 0.0, gabor(p, size))
    x0, y0, theta, freq, sigma = _initial_guess(img)
    amp = float(np.abs(img - img.mean()).max())
    lower = [-0.5, -0.5, -np.inf, 0.0, -np.inf, 0.5, 0.5, -np.inf, -np.inf]
    upper = [size - 0.5, size - 0.5, np.inf, 0.5, np.inf, size, size, np.inf, np.inf]
    best: tuple[float, np.ndarray] | None = None
    for phase in (0.0, np.pi / 2):  # phase pi is the same Gabor with the amplitude negated
        start = np.array([x0, y0, theta, freq, phase, sigma, sigma, amp, float(img.mean())])
        start = np.clip(start, np.array(lower) + 1e-6, np.array(upper) - 1e-6)
        res = optimize.least_squares(lambda p: (gabor(p, size) - img).ravel(), start, bounds=(lower, upper),
                                     method="trf", max_nfev=200)
        sse = float((res.fun**2).sum())
        if best is None or sse < best[0]:
            best = (sse, res.x)
    sse, x = best
    x = x.copy()
    x[2] = x[2] % (2 * np.pi)
    if x[2] >= np.pi:  # same Gabor with the wave vector flipped: theta - pi, phase negated
        x[2] -= np.pi
        x[4] = -x[4]
    x[4] = (x[4] + np.pi) % (2 * np.pi) - np.pi
    params = GaborParams(*map(float, x))
    return GaborFit(params, 1.0 - sse / total, gabor(params, size))


# ---- the best Gabor for a unit: grid search, then gradient ascent on the Gabor's parameters --------------
def gabor_torch(params, size: int):
    """Differentiable batch version of `gabor`: params (B, 9) tensor -> (B, size, size)."""
    import torch

    x0, y0, theta, freq, phase, sx, sy, amp, offset = params.T.unsqueeze(-1).unsqueeze(-1)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=params.dtype), torch.arange(size, dtype=params.dtype),
                            indexing="ij")
    xr = (xx - x0) * torch.cos(theta) + (yy - y0) * torch.sin(theta)
    yr = -(xx - x0) * torch.sin(theta) + (yy - y0) * torch.cos(theta)
    envelope = torch.exp(-0.5 * ((xr / sx) ** 2 + (yr / sy) ** 2))
    return amp * envelope * torch.cos(2 * torch.pi * freq * xr + phase) + offset


def _at_norm(images, norm: float):
    flat = images.reshape(len(images), -1)
    return (flat * (norm / flat.norm(dim=1, keepdim=True).clamp_min(1e-8))).reshape(images.shape)


def gabor_bank(size: int = 40, orientations: int = 8, freqs=(0.04, 0.07, 0.1, 0.14, 0.2, 0.28), phases: int = 4,
               positions: int = 5, sigmas=(2.5, 5.0)) -> np.ndarray:
    """Parameters (N, 9) of a grid of Gabors: orientation x frequency x phase x centre x envelope size."""
    centres = np.linspace(size * 0.2, size * 0.8, positions)
    grid = [(x0, y0, th, f, ph, s, s, 1.0, 0.0)
            for th in np.arange(orientations) * np.pi / orientations for f in freqs
            for ph in np.arange(phases) * 2 * np.pi / phases for x0 in centres for y0 in centres for s in sigmas]
    return np.array(grid, dtype=np.float32)


def best_gabor(response, size: int = 40, norm: float = 40.0, steps: int = 150, lr: float = 0.05,
               chunk: int = 2048, sigmas: tuple[float, float] | None = None) -> dict:
    """The Gabor (at a fixed L2 norm; 40 = unit pixel std like the data) that drives `response` (x (B, 1600)
    -> (B, 1)) most: the best of a grid, then refined by Adam on its parameters. Returns, for "grid" and
    "optimised": params (GaborParams as dict), activation, image (size x size). The grid's envelopes: `sigmas`
    (default a 16th and an 8th of the size, at least 1 and 2 px: 2.5 and 5 on 40 x 40)."""
    import torch

    sigmas = sigmas or (max(1.0, size / 16), max(2.0, size / 8))
    bank = torch.as_tensor(gabor_bank(size, sigmas=sigmas))
    with torch.no_grad():
        acts = torch.cat([response(_at_norm(gabor_torch(bank[i : i + chunk], size), norm).reshape(-1, size * size))[:, 0]
                          for i in range(0, len(bank), chunk)])
    start = bank[int(acts.argmax())]
    # Adam on a step in natural units of each parameter (pixels, radians, cycles/pixel), best kept
    units = torch.tensor([1.0, 1.0, 0.1, 0.01, 0.2, 0.5, 0.5, 0.0, 0.0])
    lower = torch.tensor([0, 0, -1e9, 0.01, -1e9, 0.7, 0.7, -1e9, -1e9])
    upper = torch.tensor([size - 1, size - 1, 1e9, 0.5, 1e9, size, size, 1e9, 1e9])
    delta = torch.zeros(9, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=lr)
    best_params, best_act = start, float(acts.max())
    for _ in range(steps):
        params = torch.maximum(torch.minimum(start + delta * units, upper), lower)
        activation = response(_at_norm(gabor_torch(params[None], size), norm).reshape(1, -1))[0, 0]
        if float(activation.detach()) > best_act:
            best_params, best_act = params.detach().clone(), float(activation.detach())
        optimizer.zero_grad()
        (-activation).backward()
        optimizer.step()

    def result(p) -> dict:
        with torch.no_grad():
            image = _at_norm(gabor_torch(p[None], size), norm)
            activation = float(response(image.reshape(1, -1))[0, 0])
        values = p.detach().double().numpy()
        keys = list(GaborParams.__dataclass_fields__)
        return {"params": dict(zip(keys, map(float, values))), "orientation_deg": float(np.degrees(values[2]) % 180),
                "activation": activation, "image": image[0].numpy()}

    return {"grid": result(start), "optimised": result(best_params)}
