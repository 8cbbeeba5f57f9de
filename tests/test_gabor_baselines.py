"""The Gabor fit and the Gaussian baselines that the model card relies on."""

import numpy as np
from scipy.stats import multivariate_normal

from meiscope.analysis.baselines import covariance, gaussian_baselines, gaussian_loglik
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
