"""The TDVAE-40 itself: shapes of the public API, the analytic KLs, and the ELBO's gradient in x."""

import math

import pytest
import torch

from meiscope.model.tdvae import kl_laplace, kl_normal_std_normal, sample_laplace, sample_normal


def test_parameter_count_matches_spec(random_model):
    n = sum(p.numel() for p in random_model.parameters())
    assert abs(n - 34.4e6) < 0.1e6, n


def test_api_shapes(random_model):
    x = torch.randn(3, 1, 40, 40)
    mean, std = random_model.z2_posterior(x)
    assert mean.shape == std.shape == (3, 250) and (std > 0).all()
    mu1, b1 = random_model.z1_posterior(x)
    assert mu1.shape == b1.shape == (3, 1800) and (b1 > 0).all()
    pmu, pb = random_model.z1_prior(mean)
    assert pmu.shape == pb.shape == (3, 1800)
    assert random_model.decode(mu1).shape == (3, 1, 40, 40)
    assert random_model.generate(mean, sample_z1=True).shape == (3, 1, 40, 40)
    assert random_model.readout(x, "z1", "std").shape == (3, 1800)
    torch.testing.assert_close(random_model.readout(x, "z2", units=[7, 3]), mean[:, [7, 3]])
    with pytest.raises(ValueError, match=r"0\.\.249"):
        random_model.readout(x, "z2", units=[250])
    assert random_model.elbo(x).shape == (3,)
    # (B, 1600) and (B, 40, 40) are accepted too; anything else is refused with the expected shapes named
    assert random_model.z2_posterior(x.reshape(3, 1600))[0].shape == (3, 250)
    with pytest.raises(ValueError, match=r"\(B, 1, 40, 40\)"):
        random_model.z2_posterior(torch.randn(3, 1, 32, 32))


def test_decode_is_affine_in_z1(random_model):
    z = torch.randn(2, 1800)
    x0 = random_model.decode(torch.zeros(1, 1800))
    lhs = random_model.decode(2 * z) - x0
    rhs = 2 * (random_model.decode(z) - x0)
    torch.testing.assert_close(lhs, rhs, atol=1e-4, rtol=1e-4)


def test_normal_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([0.0, 1.5, -0.7])
    std = torch.tensor([1.0, 0.3, 2.0])
    z = sample_normal(mu.expand(200_000, 3), std.expand(200_000, 3), g)
    log_q = torch.distributions.Normal(mu, std).log_prob(z)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z)
    mc = (log_q - log_p).mean(0)
    torch.testing.assert_close(kl_normal_std_normal(mu, std), mc, atol=0.02, rtol=0.02)


def test_laplace_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(1)
    mu_q, b_q = torch.tensor([0.0, 1.0, -2.0, 0.3]), torch.tensor([1.0, 0.2, 0.5, 3.0])
    mu_p, b_p = torch.tensor([0.0, 0.0, -1.0, 0.3]), torch.tensor([1.0, 1.0, 2.0, 0.7])
    z = sample_laplace(mu_q.expand(400_000, 4), b_q.expand(400_000, 4), g)
    # the sampler draws from the right distribution: Laplace std = sqrt(2) b
    torch.testing.assert_close(z.std(0), math.sqrt(2) * b_q, rtol=0.02, atol=0.0)
    log_q = torch.distributions.Laplace(mu_q, b_q).log_prob(z)
    log_p = torch.distributions.Laplace(mu_p, b_p).log_prob(z)
    mc = (log_q - log_p).mean(0)
    exact = kl_laplace(mu_q, b_q, mu_p, b_p)
    assert exact[0].abs() < 1e-6  # identical distributions
    torch.testing.assert_close(exact, mc, atol=0.02, rtol=0.02)


def test_elbo_finite_and_differentiable_in_x(random_model):
    x = torch.randn(4, 1, 40, 40, requires_grad=True)
    elbo = random_model.elbo(x, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(elbo).all()
    elbo.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_elbo_is_reproducible_with_a_generator(random_model):
    x = torch.randn(4, 1600)
    a = random_model.elbo(x, generator=torch.Generator().manual_seed(5))
    b = random_model.elbo(x, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)


def test_elbo_terms_add_up(random_model):
    x = torch.randn(4, 1600)
    t = random_model.elbo_terms(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(t.elbo(), t.log_lik - t.kl_z1 - t.kl_z2)
    assert (t.kl_z1 > 0).all() and (t.kl_z2 > 0).all()
    # the log-likelihood of a perfect reconstruction is the Normal(0, 0.4^2) normaliser, summed over 1600 pixels
    assert (t.log_lik < -1600 * (math.log(0.4) + 0.5 * math.log(2 * math.pi))).all()
