"""Fourier amplitude spectra of inputs and kernels, and their spectral entropy."""

from __future__ import annotations

import numpy as np


def amplitude_spectrum(images: np.ndarray, size: int | None = None) -> np.ndarray:
    """|FFT2| of each image (..., H, W), centred (DC in the middle); kernels are zero-padded to `size`."""
    images = np.asarray(images, dtype=np.float64)
    shape = None if size is None else (size, size)
    return np.fft.fftshift(np.abs(np.fft.fft2(images, s=shape)), axes=(-2, -1))


def spectral_entropy(images: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits) of the normalised power spectrum without DC, per image: low for a single
    grating, high (up to log2 of the number of frequencies) for white noise."""
    power = np.abs(np.fft.fft2(np.asarray(images, dtype=np.float64))) ** 2
    power = power.reshape(*power.shape[:-2], -1)[..., 1:]
    p = power / np.maximum(power.sum(-1, keepdims=True), 1e-300)
    return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(-1)


def binned_log_power(images: np.ndarray, n_sf: int = 8, n_ori: int = 8) -> np.ndarray:
    """(N, n_sf * n_ori) log mean power of each square image in n_sf radial bins (0 to 0.5 cycles/pixel, DC and
    the corners beyond 0.5 left out) x n_ori orientation bins over 180 degrees: a second-order description."""
    images = np.asarray(images, dtype=np.float64)
    size = images.shape[-1]
    power = np.abs(np.fft.fft2(images)) ** 2
    f = np.fft.fftfreq(size)
    fy, fx = f[:, None], f[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    sf = np.minimum((radius / 0.5 * n_sf).astype(int), n_sf)  # n_sf: beyond 0.5, dropped
    ori = np.minimum((np.mod(np.arctan2(fy, fx), np.pi) / np.pi * n_ori).astype(int), n_ori - 1)
    keep = (radius > 0) & (sf < n_sf)
    bins = (sf * n_ori + ori)[keep]
    flat = power.reshape(len(images), -1)[:, keep.ravel()]
    sums = np.zeros((len(images), n_sf * n_ori))
    np.add.at(sums.T, bins, flat.T)
    counts = np.bincount(bins, minlength=n_sf * n_ori)
    return np.log(sums / np.maximum(counts, 1) + 1e-12)


def radial_profile(image: np.ndarray, n_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mean 2-D Fourier amplitude of one image (H, W), any H and W, in radial bins from DC (excluded) to 0.5
    cycles/pixel: (bin centres, amplitude per bin; NaN for an empty bin). Default: min(20, min(H, W) // 2) bins."""
    image = np.asarray(image, dtype=np.float64)
    h, w = image.shape
    n_bins = n_bins or max(2, min(20, min(h, w) // 2))
    amp = np.abs(np.fft.fft2(image))
    radius = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2)
    edges = np.linspace(0.0, 0.5, n_bins + 1)
    profile = np.array([amp[(radius > lo) & (radius <= hi)].mean() if np.any((radius > lo) & (radius <= hi))
                        else np.nan for lo, hi in zip(edges[:-1], edges[1:])])
    return 0.5 * (edges[:-1] + edges[1:]), profile
