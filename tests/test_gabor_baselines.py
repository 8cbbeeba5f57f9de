"""The Gabor fit and the Gaussian and scale-mixture baselines that the model card relies on."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from meiscope.analysis.baselines import (covariance, fit_mixture_weights, gaussian_baselines, gaussian_loglik,
                                         mixture_loglik, scale_mixture_components)
from meiscope.analysis.gabor import GaborParams, fit_gabor, gabor


def test_gabor_fit_recovers_known_parameters(rng):
    true = GaborParams(x0=22.3, y0=15.1, theta=0.7, freq=0.12, phase=0.4, sigma_x=3.0, sigma_y=5.0,
                       amplitude=1.5, offset=0.0)
    img = gabor(true, 40) + 0.05 * rng.standard_normal((40, 40))
    fit = fit_gabor(img)
    p = fit.params
    assert fit.r2 > 0.9
    assert abs(p.x0 - true.x0) < 0.3 and abs(p.y0 - true.y0) < 0.3
    assert abs(p.freq - true.freq) < 0.005
    assert abs(np.angle(np.exp(1j * (p.theta - true.theta)))) < 0.05
    assert abs(p.sigma_x - true.sigma_x) < 0.3 and abs(p.sigma_y - true.sigma_y) < 0.5


def test_noise_is_not_gabor_like(rng):
    assert fit_gabor(rng.standard_normal((40, 40))).r2 < 0.2


def test_gaussian_loglik_matches_scipy(rng):
    a = rng.standard_normal((5, 5))
    cov = a @ a.T + 0.5 * np.eye(5)
    x = rng.multivariate_normal(np.ones(5), cov, size=200)
    ours = gaussian_loglik(x, np.ones(5), cov)
    theirs = multivariate_normal(np.ones(5), cov).logpdf(x).mean()
    assert abs(ours - theirs) < 1e-9


def test_covariance_in_chunks_matches_numpy(rng):
    x = rng.standard_normal((1000, 6)) @ rng.standard_normal((6, 6))
    mean, cov = covariance(x, chunk=97)
    np.testing.assert_allclose(mean, x.mean(0), atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x.T, bias=True), atol=1e-10)


def test_floor_lowers_the_likelihood_of_low_variance_data(rng):
    scales = np.array([2.0, 1.0, 0.1, 0.05])
    train = rng.standard_normal((5000, 4)) * scales
    heldout = rng.standard_normal((2000, 4)) * scales
    out = gaussian_baselines(train, heldout, obs_var=0.16)
    assert out["n_eigenvalues_below_obs_var"] == 2
    assert out["floored_gaussian"] < out["unconstrained_gaussian"]


def _gsm_setup(rng, d=4):
    a = rng.standard_normal((d, d))
    cov = a @ a.T + 0.3 * np.eye(d)
    evals, evecs = np.linalg.eigh(cov)
    return np.full(d, 0.2), evals, evecs


def test_scale_mixture_loglik_matches_a_brute_force_gaussian_mixture(rng):
    mean, evals, evecs = _gsm_setup(rng)
    scales, weights = np.array([0.1, 0.7, 2.5]), np.array([0.2, 0.5, 0.3])
    x = rng.standard_normal((50, 4)) * 1.5
    ours = mixture_loglik(scale_mixture_components(x, mean, evals, evecs, 0.16, scales), weights)
    s = np.maximum(evals - 0.16, 0.0)
    dens = sum(w * multivariate_normal(mean, evecs @ np.diag(c**2 * s + 0.16) @ evecs.T).pdf(x)
               for c, w in zip(scales, weights))
    np.testing.assert_allclose(ours, np.log(dens), rtol=1e-10)


def test_scale_mixture_em_weights_sum_to_one_and_raise_the_likelihood(rng):
    mean, evals, evecs = _gsm_setup(rng)
    contrast = np.exp(rng.normal(0, 1, 3000))[:, None]  # heavy-tailed: a random contrast per sample
    x = mean + contrast * (rng.standard_normal((3000, 4)) * np.sqrt(np.maximum(evals - 0.16, 0))) @ evecs.T
    comps = scale_mixture_components(x, mean, evals, evecs, 0.16)
    weights = fit_mixture_weights(comps)
    uniform = np.full(comps.shape[1], 1 / comps.shape[1])
    assert weights.sum() == pytest.approx(1.0) and (weights >= 0).all()
    assert mixture_loglik(comps, weights).mean() > mixture_loglik(comps, uniform).mean() + 0.05
    one_step = fit_mixture_weights(comps, iters=1)
    assert mixture_loglik(comps, one_step).mean() >= mixture_loglik(comps, uniform).mean()


def test_scale_mixture_beats_the_floored_gaussian_on_contrast_varying_data(rng):
    scales = np.array([2.0, 1.0, 0.6, 0.5])
    contrast = np.exp(rng.normal(0, 1, (7000, 1)))
    data = rng.standard_normal((7000, 4)) * scales * contrast + 0.4 * rng.standard_normal((7000, 4))
    out = gaussian_baselines(data[:5000], data[5000:], obs_var=0.16, reference=500)
    assert out["scale_mixture"] > out["floored_gaussian"] + 0.1
    assert sum(out["scale_mixture_fit"]["weights"]) == pytest.approx(1.0, abs=1e-4)
    assert out["reference_batch"]["floored_gaussian"] == pytest.approx(
        gaussian_loglik(data[5000:5500], *covariance(data[:5000]), floor=0.16))
