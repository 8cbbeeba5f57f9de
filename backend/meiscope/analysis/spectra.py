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
