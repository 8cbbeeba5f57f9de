"""Whitening as in sparse-coding work (Olshausen & Field 1996), and the radial amplitude spectrum."""

from __future__ import annotations

import numpy as np

DEFAULT_F0 = 0.4  # cycles per pixel: Olshausen & Field's 0.4 N cycles per picture


def whitening_filter(shape: tuple[int, int], f0: float = DEFAULT_F0) -> np.ndarray:
    """f * exp(-(f / f0)^4) on the 2-D FFT grid of `shape`, f in cycles per pixel."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    f = np.sqrt(fy**2 + fx**2)
    return f * np.exp(-((f / f0) ** 4))


def whiten_image(img: np.ndarray, f0: float = DEFAULT_F0) -> np.ndarray:
    """Whiten one whole grey image and scale it to zero mean, unit pixel variance.

    The image is mirror-padded by half its size on every side before the FFT, so that the periodic
    boundary of the transform does not put a bright seam along the edges.
    """
    img = np.asarray(img, dtype=np.float64)
    py, px = img.shape[0] // 2, img.shape[1] // 2
    padded = np.pad(img - img.mean(), ((py, py), (px, px)), mode="symmetric")
    white = np.fft.ifft2(np.fft.fft2(padded) * whitening_filter(padded.shape, f0)).real
    white = white[py : py + img.shape[0], px : px + img.shape[1]]
    white -= white.mean()
    return white / white.std()


def radial_amplitude(patches: np.ndarray, n_bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Mean 2-D Fourier amplitude of square patches (N, P, P) in radial bins.

    Returns (bin centres in cycles per pixel, mean amplitude per bin), from DC-excluded 0 to 0.5.
    """
    patches = np.asarray(patches, dtype=np.float64)
    size = patches.shape[-1]
    amp = np.abs(np.fft.fft2(patches)).mean(axis=0)
    f = np.fft.fftfreq(size)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    edges = np.linspace(0.0, 0.5, n_bins + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    profile = np.array(
        [amp[(radius > lo) & (radius <= hi)].mean() if np.any((radius > lo) & (radius <= hi)) else np.nan
         for lo, hi in zip(edges[:-1], edges[1:])]
    )
    return centres, profile
