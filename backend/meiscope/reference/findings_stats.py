"""The statistics behind the findings' verdicts: bootstrap confidence intervals over units, the verdict rule,
and the image measures the findings share (power above a frequency, amplitude-spectrum and pixel correlation).

Arrays of per-row values come as (units, seeds): a unit's seeds are not independent of each other, so the
bootstrap resamples units (each with all its seeds), the way a physiologist resamples cells, not trials."""

from __future__ import annotations

import numpy as np

VERDICTS = ("agrees", "disagrees", "not testable on this model")
N_BOOT = 10_000
HF_CUTOFF = 0.45  # cycles per pixel: above the units' preferred 0.35-0.40 c/px gratings, below Nyquist (0.5)


def unit_means(values: np.ndarray) -> np.ndarray:
    """(units, seeds) or (units,) -> (units,): each unit's mean over its seeds."""
    values = np.asarray(values, dtype=np.float64)
    return values if values.ndim == 1 else values.mean(1)


def bootstrap_ci(values: np.ndarray, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95,
                 stat=np.mean) -> tuple[float, float, float]:
    """(statistic, low, high): the statistic of the unit means and its percentile bootstrap interval, units
    resampled with replacement (all seeds of a drawn unit come along)."""
    means = unit_means(values)
    if len(means) == 0:
        raise ValueError("needs at least one unit")
    rng = np.random.default_rng(seed)
    draws = stat(means[rng.integers(0, len(means), (n_boot, len(means)))], axis=1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return float(stat(means)), float(lo), float(hi)


def ci_text(ci: tuple[float, float, float], digits: int = 2, unit: str = "") -> str:
    m, lo, hi = ci
    return f"{m:.{digits}f}{unit} [{lo:.{digits}f}, {hi:.{digits}f}]"


def beyond(ci: tuple[float, float, float], reference: float = 0.0, direction: int = 1) -> str:
    """The verdict rule: a claimed effect agrees when the whole 95% interval lies beyond `reference` in the
    claimed `direction` (+1: above, -1: below); otherwise it disagrees (the interval spans the reference or
    lies on the other side, which the text says)."""
    _, lo, hi = ci
    return "agrees" if (lo > reference if direction > 0 else hi < reference) else "disagrees"


def where(ci: tuple[float, float, float], reference: float = 0.0) -> str:
    """Where the interval lies relative to `reference`, in words."""
    _, lo, hi = ci
    return "above" if lo > reference else "below" if hi < reference else "spans"


def radial_frequency(size: int = 40) -> np.ndarray:
    """|f| in cycles per pixel of each FFT2 coefficient of a size x size image."""
    f = np.fft.fftfreq(size)
    return np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)


def power_above(images: np.ndarray, cutoff: float = HF_CUTOFF) -> np.ndarray:
    """Share of each image's power (without the mean) above `cutoff` cycles per pixel, shape images.shape[:-2]."""
    images = np.asarray(images, dtype=np.float64)
    power = np.abs(np.fft.fft2(images - images.mean((-2, -1), keepdims=True))) ** 2
    high = radial_frequency(images.shape[-1]) > cutoff
    total = power.reshape(*power.shape[:-2], -1).sum(-1)
    return power[..., high].sum(-1) / np.maximum(total, 1e-300)


def _corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Correlation of paired images (..., H, W), each image flattened."""
    a, b = a.reshape(*a.shape[:-2], -1), b.reshape(*b.shape[:-2], -1)
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    return (a * b).sum(-1) / np.maximum(np.sqrt((a * a).sum(-1) * (b * b).sum(-1)), 1e-300)


def pixel_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of the pixels of paired images (..., H, W)."""
    return _corr_rows(np.asarray(a, np.float64), np.asarray(b, np.float64))


def amplitude(images: np.ndarray) -> np.ndarray:
    """|FFT2| without DC: what two phase-shifted copies of one pattern share."""
    amp = np.abs(np.fft.fft2(np.asarray(images, np.float64)))
    amp[..., 0, 0] = 0.0
    return amp


def spectrum_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Correlation of the amplitude spectra of paired images: 1 for one pattern at two phases or places."""
    return _corr_rows(amplitude(a), amplitude(b))


def within_unit(images: np.ndarray, measure=spectrum_corr) -> np.ndarray:
    """(units, seeds, H, W) -> (units,): mean `measure` over the pairs of seeds of each unit."""
    u, s = images.shape[:2]
    i, j = np.triu_indices(s, 1)
    return np.array([measure(images[k, i], images[k, j]).mean() for k in range(u)])


def same_vs_other(a: np.ndarray, b: np.ndarray, measure=spectrum_corr) -> tuple[np.ndarray, np.ndarray]:
    """(units, seeds, H, W) twice -> (same, other), each (units,): `measure` between a unit's results of `a`
    and of `b` (same seed), and between its result of `a` and the other units' results of `b` (the baseline
    a claim of likeness must beat: every unit of this model prefers fine gratings)."""
    u = a.shape[0]
    same = np.array([measure(a[k], b[k]).mean() for k in range(u)])
    other = np.array([np.mean([measure(a[k], b[m]).mean() for m in range(u) if m != k]) for k in range(u)])
    return same, other


def peak_frequency(images: np.ndarray) -> np.ndarray:
    """The spatial frequency (cycles per pixel) of each image's largest amplitude, DC excluded."""
    amp = amplitude(images)
    f = radial_frequency(images.shape[-1]).ravel()
    return f[amp.reshape(*amp.shape[:-2], -1).argmax(-1)]


def group_difference_ci(a: np.ndarray, b: np.ndarray, n_boot: int = N_BOOT, seed: int = 0,
                        level: float = 0.95) -> tuple[float, float, float]:
    """(mean of a - mean of b, low, high) for two independent groups of units, each resampled on its own."""
    ma, mb = unit_means(a), unit_means(b)
    rng = np.random.default_rng(seed)
    da = ma[rng.integers(0, len(ma), (n_boot, len(ma)))].mean(1)
    db = mb[rng.integers(0, len(mb), (n_boot, len(mb)))].mean(1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(da - db, [tail, 100 - tail])
    return float(ma.mean() - mb.mean()), float(lo), float(hi)
