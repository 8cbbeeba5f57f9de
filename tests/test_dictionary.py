"""The recipe's dictionary stage: it recovers a known Gabor dictionary from Laplace codes plus the model's
0.4 noise, a shuffled-pixel control gives no Gabors, and a dictionary starts the TDVAE where it says."""

import math

import numpy as np
import pytest
import torch

from meiscope.analysis.gabor import GaborParams, gabor
from meiscope.model import TDVAE
from meiscope.reference.dictionary import (Dictionary, fista, fit_ica, fit_sparse_coding, gabor_share, initialise_model,
                                       reconstruction_r2)
from meiscope.model.tdvae import OBS_STD

SIDE = 16


def gabor_dictionary(n: int, rng) -> np.ndarray:
    """(SIDE^2, n) random Gabor atoms of unit norm, spread over the patch."""
    atoms = []
    for _ in range(n):
        p = GaborParams(x0=rng.uniform(3, SIDE - 4), y0=rng.uniform(3, SIDE - 4), theta=rng.uniform(0, np.pi),
                        freq=rng.uniform(0.12, 0.25), phase=rng.uniform(-np.pi, np.pi), sigma_x=rng.uniform(1.5, 2.5),
                        sigma_y=rng.uniform(1.5, 3.0), amplitude=1.0, offset=0.0)
        a = gabor(p, SIDE).ravel()
        atoms.append(a / np.linalg.norm(a))
    return np.stack(atoms, axis=1)


def sparse_patches(atoms: np.ndarray, n: int, rng) -> np.ndarray:
    """x = atoms @ z + N(0, 0.4^2) with z ~ Laplace(0, 1) scaled so that each atom stands well above the noise."""
    z = rng.laplace(0.0, 1.0, size=(n, atoms.shape[1])) * 3.0
    return z @ atoms.T + rng.normal(0.0, OBS_STD, size=(n, atoms.shape[0]))


def best_match(true: np.ndarray, found: np.ndarray) -> np.ndarray:
    """For each true atom, the largest |correlation| with any found atom."""
    t = true / np.linalg.norm(true, axis=0)
    f = found / np.linalg.norm(found, axis=0)
    return np.abs(t.T @ f).max(axis=1)


@pytest.fixture(scope="module")
def known():
    rng = np.random.default_rng(0)
    atoms = gabor_dictionary(24, rng)
    return atoms, sparse_patches(atoms, 8000, rng)


def test_ica_recovers_a_known_gabor_dictionary(known):
    atoms, x = known
    d = fit_ica(x, n_components=atoms.shape[1], seed=0)
    match = best_match(atoms, d.atoms)
    assert (match > 0.9).mean() >= 0.8, np.round(np.sort(match), 2)
    assert d.atoms.shape == (SIDE * SIDE, atoms.shape[1]) and d.filters.shape == (atoms.shape[1], SIDE * SIDE)
    # the codes have the Laplace(0, 1) prior's variance, and the atoms reproduce the signal
    assert np.var(d.codes(x), axis=0).mean() == pytest.approx(2.0, rel=0.05)
    assert reconstruction_r2(d, x[:1000])["linear_r2"] > 0.9


def test_sparse_coding_recovers_a_known_gabor_dictionary():
    # sparse coding learns from the L1 term, which only shapes the atoms when most codes are near zero:
    # Laplace codes of which three quarters are switched off (an overcomplete fit: 32 atoms for 24)
    rng = np.random.default_rng(0)
    atoms = gabor_dictionary(24, rng)
    z = rng.laplace(0.0, 2.0, size=(8000, 24)) * (rng.random((8000, 24)) < 0.25)
    x = z @ atoms.T + rng.normal(0.0, OBS_STD, size=(8000, SIDE * SIDE))
    d = fit_sparse_coding(x, n_atoms=32, seed=0, epochs=10, batch=128, fista_iters=50)
    match = best_match(atoms, d.atoms)
    assert (match > 0.9).mean() >= 0.7, np.round(np.sort(match), 2)
    r = reconstruction_r2(d, x[:1000])
    signal = (z @ atoms.T).var() / x.var()  # the share of variance that is not noise: the most any code explains
    assert r["map_r2"] > 0.95 * signal and r["map_fraction_zero"] > 0.5, (r, signal)


def test_shuffled_pixels_give_no_gabors(known):
    atoms, x = known
    share, _ = gabor_share(fit_ica(x, n_components=atoms.shape[1], seed=0).atoms, n=24)
    perm = np.random.default_rng(1).permutation(x.shape[1])
    control, _ = gabor_share(fit_ica(x[:, perm], n_components=atoms.shape[1], seed=0).atoms, n=24)
    assert share >= 0.7 and control <= 0.1, (share, control)


def test_fista_solves_the_lasso():
    rng = np.random.default_rng(2)
    A = torch.as_tensor(rng.normal(size=(30, 50)), dtype=torch.float64)
    x = torch.as_tensor(rng.normal(size=(4, 30)), dtype=torch.float64)
    lam = 0.5
    z = fista(x, A, lam, 2000)
    # optimality: |A^T (x - A z)| <= lam everywhere, = lam (with the sign of z) where z != 0
    g = (x - z @ A.T) @ A
    assert float(g.abs().max()) <= lam + 1e-6
    nz = z != 0
    torch.testing.assert_close(g[nz], lam * torch.sign(z[nz]), atol=1e-5, rtol=0)


def test_a_dictionary_starts_the_model_at_its_linear_code(rng):
    k = 40
    atoms = rng.normal(size=(1600, k))
    filters = np.linalg.pinv(atoms)
    mean = rng.normal(size=1600) * 0.1
    d = Dictionary(atoms, filters, mean, "ica", 0.0, {})
    torch.manual_seed(0)
    model = initialise_model(TDVAE(), d).eval()
    x = torch.as_tensor(rng.normal(size=(8, 1600)), dtype=torch.float32)
    with torch.no_grad():
        mu1, b1 = model.z1_posterior(x)
    code = torch.as_tensor(d.codes(x.numpy()), dtype=torch.float32)
    torch.testing.assert_close(mu1[:, :k], code, atol=2e-4, rtol=1e-4)
    assert float(mu1[:, k:].abs().max()) == 0.0
    torch.testing.assert_close(b1[0, :k], torch.as_tensor(OBS_STD * np.linalg.norm(filters, axis=1) / math.sqrt(2),
                                                          dtype=torch.float32), rtol=1e-4, atol=0)
    torch.testing.assert_close(model.W[:, :k], torch.as_tensor(atoms, dtype=torch.float32))
    torch.testing.assert_close(model.decoder.bias, torch.as_tensor(mean, dtype=torch.float32))


def test_an_overcomplete_dictionary_passes_through_its_largest_atoms(rng):
    n = 1200  # more atoms than net a has room for (1000 pairs of units)
    atoms = rng.normal(size=(1600, n)) * np.linspace(1.0, 2.0, n)
    d = Dictionary(atoms, np.linalg.pinv(atoms), np.zeros(1600), "sparse_coding", 0.0, {})
    torch.manual_seed(0)
    model = initialise_model(TDVAE(), d).eval()
    order = np.argsort(-np.linalg.norm(atoms, axis=0))
    torch.testing.assert_close(model.W[:, :n], torch.as_tensor(atoms[:, order], dtype=torch.float32))
    x = torch.as_tensor(rng.normal(size=(4, 1600)), dtype=torch.float32)
    with torch.no_grad():
        mu1, _ = model.z1_posterior(x)
    code = x.numpy() @ d.filters[order[:1000]].T
    torch.testing.assert_close(mu1[:, :1000], torch.as_tensor(code, dtype=torch.float32), atol=2e-4, rtol=1e-4)
    assert float(mu1[:, 1000:].abs().max()) == 0.0


def test_a_dictionary_round_trips_through_its_folder(tmp_path, rng):
    d = Dictionary(rng.normal(size=(1600, 5)), rng.normal(size=(5, 1600)), rng.normal(size=1600), "ica", 1.5,
                   {"n_patches": 10})
    d.save(tmp_path / "d")
    back = Dictionary.load(tmp_path / "d")
    assert back.method == "ica" and back.seconds == 1.5 and back.info == {"n_patches": 10}
    np.testing.assert_allclose(back.atoms, d.atoms, rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="no dictionary"):
        Dictionary.load(tmp_path / "missing")
