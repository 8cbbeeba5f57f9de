"""The checks on every result tell a failure from a success: on small models whose behaviour is known, each
check fails exactly where it should (the runner-up above the target, a run still rising, an input the model finds
improbable, a unit not driven), and passes where it should."""

import numpy as np
import torch
from torch import nn

from meiscope import run
from meiscope.engine.checks import summary, trustworthy
from meiscope.engine.presets import plain_config as plain
from meiscope.model.hooked import HookedModel


def twins() -> HookedModel:
    """Two linear units on one weight vector, the second twice the first: whatever drives unit 0 drives unit 1
    twice as much."""
    w = torch.randn(1, 10, 10, generator=torch.Generator().manual_seed(0)).reshape(1, -1)
    layer = nn.Linear(100, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.cat([w, 2 * w]))
    return HookedModel(nn.Sequential(nn.Flatten(), layer), {"units": "1"}, (1, 10, 10), name="twins")


def test_a_runner_up_above_the_target_is_flagged():
    result = run(twins(), plain(layer="units", unit=[0, 1], steps=50))
    low, high = result.checks
    assert low["target_wins"]["ok"] is False and low["target_wins"]["value"] < 0
    assert high["target_wins"]["ok"] is True
    assert not trustworthy(low) and "target_wins FAIL" in summary(low)


def test_a_run_still_rising_is_not_converged_and_a_penalised_one_is():
    rising = run(twins(), plain(layer="units", unit=1, steps=100))  # a linear unit grows without end
    settled = run(twins(), plain(layer="units", unit=1, steps=300, obj={"l2": 0.5}, optimizer={"name": "adam", "lr": 0.1}))
    assert rising.checks[0]["converged"]["ok"] is False and rising.checks[0]["converged"]["value"] > 0.02
    assert settled.checks[0]["converged"]["ok"] is True


def test_without_a_census_driven_compares_with_the_start():
    result = run(twins(), plain(layer="units", unit=1, steps=20))
    driven = result.checks[0]["driven"]
    assert driven["ok"] is True and "no census" in driven["detail"]
    assert driven["value"] == np.float32(result.metrics["activation"][-1, 0] - result.metrics["activation"][0, 0])
    assert result.checks[0]["in_range"]["ok"] is None and result.checks[0]["in_distribution"]["ok"] is None


def test_on_the_tdvae_an_exaggerated_input_is_out_of_distribution_and_an_elbo_bound_one_is_not_driven(shipped):
    loud = run(shipped, plain(unit=94, steps=100))  # unregularised: 10x beyond the data, far below its ELBO
    quiet = run(shipped, plain(unit=94, steps=40, obj={"elbo_weight": 10.0}))  # the ELBO outweighs the unit
    assert loud.checks[0]["driven"]["ok"] is True and loud.checks[0]["in_distribution"]["ok"] is False
    assert quiet.checks[0]["driven"]["ok"] is False and quiet.checks[0]["in_distribution"]["ok"] is True
    assert not trustworthy(loud.checks[0]) and not trustworthy(quiet.checks[0])
