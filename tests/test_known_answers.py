"""Known answers: small models whose preferred inputs are known in closed form, so that each method and the
default configuration are checked against the truth rather than against earlier outputs.

- a linear unit w.x under an L2 penalty lam |x|^2: its preferred input is w / (2 lam);
- the same inside a declared input range (0, 1): each pixel clip(w / (2 lam), 0, 1), and never outside;
- a quadrature-pair energy unit (g_c.x)^2 + (g_s.x)^2 on a sphere: any Gabor of the pair's orientation and
  frequency, at any phase (the input lies in the pair's span, and the phase depends on the seed);
- a 5x5 convolution channel read at the centre of a 32x32 input: nothing changes outside its field, even with
  the gradient filter on (and the filter, made global, paints outside it); under an L2 penalty the input inside
  is its kernel / (2 lam);
- a non-square three-channel input: the answer comes back with its channels and axes where they were.
"""

import numpy as np
import pytest
import torch
from torch import nn

from meiscope import AMConfig, run
from meiscope.engine.presets import plain_config as plain
from meiscope.model.hooked import HookedModel

LAM = 0.5  # the L2 weight: the linear unit's preferred input is then w itself
IMAGE_METHODS = ("pixel", "distribution", "transform", "transform_distribution")


class Linear(nn.Module):
    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.flat = nn.Flatten()
        self.unit = nn.Linear(weights.numel(), 1, bias=False)
        with torch.no_grad():
            self.unit.weight.copy_(weights.reshape(1, -1))

    def forward(self, x):
        return self.unit(self.flat(x))


def linear_model(shape=(1, 12, 12), input_range=None, seed=0) -> tuple[HookedModel, np.ndarray]:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    model = HookedModel(Linear(w), {"unit": "unit"}, input_shape=shape, input_range=input_range,
                        centred=input_range is None, name="linear")
    return model, (w[0] if shape[0] == 1 else w).numpy()  # as Run.images holds it: (H, W) for one channel


def correlation(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def method_config(method: str, **extra) -> AMConfig:
    """`method` with an L2 penalty and no regulariser, long enough to converge on these small models."""
    fields = {"method": method, "layer": "unit", "unit": 0, "steps": 400, "obj": {"l2": LAM}, **extra}
    if method in ("distribution", "transform_distribution"):
        fields["distribution"] = {"sigma": 0.05, "draws": 8}
    return plain(**fields)


@pytest.mark.parametrize("method", IMAGE_METHODS)
def test_a_linear_unit_prefers_its_weight_vector(method):
    model, w = linear_model()
    result = run(model, method_config(method))
    x = result.images[0]
    assert correlation(x, w) > 0.99, correlation(x, w)
    assert np.linalg.norm(x) / np.linalg.norm(w) == pytest.approx(1.0, abs=0.05)  # w / (2 lam), lam = 1/2


def test_the_default_configuration_keeps_inputs_in_range_and_inside_the_field():
    # its gradient filter and blur smooth the optimum (a white-noise w is not its answer): what it guarantees is
    # a driven unit, an input inside the range, and no change outside the field
    model, w = linear_model(input_range=(0.0, 1.0))
    result = run(model, AMConfig(layer="unit", unit=0, obj={"l2": LAM}, steps=400))
    assert result.images.min() >= 0.0 and result.images.max() <= 1.0
    assert result.checks[0]["in_range"]["ok"] is True and result.checks[0]["driven"]["ok"] is True
    conv = run(centre_model(), AMConfig(layer="conv", unit=1))
    assert conv.checks[0]["inside_receptive_field"]["value"] < 0.1


@pytest.mark.parametrize("method", ("pixel", "distribution"))
def test_inside_a_declared_range_each_pixel_is_clipped_to_it(method):
    model, w = linear_model(input_range=(0.0, 1.0))
    result = run(model, method_config(method))
    x = result.images[0]
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_allclose(x, np.clip(w, 0.0, 1.0), atol=0.05)  # the box-constrained optimum
    assert result.checks[0]["in_range"]["ok"] is True


@pytest.mark.parametrize("method", ("transform", "transform_distribution"))
def test_a_transform_stays_inside_a_declared_range(method):
    model, w = linear_model(input_range=(0.0, 1.0))
    result = run(model, method_config(method))
    x = result.images[0]
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert correlation(x, np.clip(w, 0.0, 1.0)) > 0.9
    assert result.checks[0]["in_range"]["ok"] is True


def test_lifting_the_range_lets_inputs_leave_it_and_the_check_says_so():
    model, w = linear_model(input_range=(0.0, 1.0))
    result = run(model, method_config("pixel", keep_in_range=False))
    assert result.images.min() < -0.5 and result.images.max() > 1.5  # the unconstrained optimum, w itself
    assert result.checks[0]["in_range"]["ok"] is False


def gabor_pair(size: int = 16, frequency: float = 0.2, theta: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    along = x * np.cos(theta) + y * np.sin(theta)
    envelope = np.exp(-(x**2 + y**2) / (2 * 3.0**2))
    even, odd = envelope * np.cos(2 * np.pi * frequency * along), envelope * np.sin(2 * np.pi * frequency * along)
    return even / np.linalg.norm(even), odd / np.linalg.norm(odd)


class Energy(nn.Module):
    def __init__(self, even: np.ndarray, odd: np.ndarray) -> None:
        super().__init__()
        self.pair = nn.Linear(even.size, 2, bias=False)
        with torch.no_grad():
            self.pair.weight.copy_(torch.tensor(np.stack([even.ravel(), odd.ravel()]), dtype=torch.float32))
        self.energy = nn.Identity()

    def forward(self, x):
        return self.energy(self.pair(x.flatten(1)).square().sum(1, keepdim=True))


@pytest.mark.parametrize("method", ("pixel", "distribution"))
def test_an_energy_unit_prefers_its_gabor_at_any_phase(method):
    even, odd = gabor_pair()
    model = HookedModel(Energy(even, odd), {"energy": "energy"}, input_shape=(1, 16, 16), name="energy")
    phases = []
    for seed in (0, 1, 2):
        # projected gradient ascent on a sphere (plain SGD: RMSprop's sign-like steps have another fixed point there)
        config = plain(method=method, layer="energy", unit=0, steps=300, seed=seed, post={"max_norm": 5.0},
                       optimizer={"name": "sgd", "lr": 0.2}, distribution={"sigma": 0.02, "draws": 4})
        x = run(model, config).images[0].ravel()
        a, b = float(x @ even.ravel()), float(x @ odd.ravel())
        assert (a * a + b * b) / float(x @ x) > 0.95  # x lies in the span of the pair: a Gabor of that orientation
        phases.append(np.arctan2(b, a))
    spread = np.ptp(np.unwrap(np.sort(phases)))
    assert spread > 0.3, phases  # the phase is whatever the start gave: the unit ignores it


class CentreConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5, padding=2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(4, 1, 5, 5, generator=torch.Generator().manual_seed(3)))

    def forward(self, x):
        return self.conv(x)


def centre_model() -> HookedModel:
    return HookedModel(CentreConv(), {"conv": "conv"}, input_shape=(1, 32, 32), spatial="centre", name="conv")


FIELD = np.zeros((32, 32), bool)
FIELD[14:19, 14:19] = True  # the 5x5 kernel around the centre pixel (16, 16)


@pytest.mark.parametrize("gamma", (0.0, 1.0, 2.0))
def test_a_centre_read_channel_changes_nothing_outside_its_field(gamma):
    result = run(centre_model(), plain(layer="conv", unit=1, steps=100, grad={"gamma": gamma}))
    change = result.images[0] - result.snapshots[0][0]
    assert np.abs(change[~FIELD]).max() < 1e-6
    assert np.abs(change[FIELD]).max() > 0.5
    assert result.checks[0]["inside_receptive_field"]["ok"] is True


def test_a_centre_read_channel_under_an_l2_penalty_prefers_its_kernel():
    # without a gradient filter: the filter preconditions the activation's gradient and not the penalty's, so
    # with it the optimum is a smoothed kernel
    model = centre_model()
    result = run(model, plain(layer="conv", unit=1, steps=300, obj={"l2": LAM}))
    kernel = model.module.conv.weight[1, 0].detach().numpy()
    # RMSprop's steps of about lr leave an error of a few hundredths, against kernel values of about 1
    np.testing.assert_allclose(result.images[0][FIELD].reshape(5, 5), kernel, atol=0.05)  # kernel / (2 lam)
    assert np.abs(result.images[0][~FIELD]).max() < 0.05  # the penalty alone acts there: towards 0


def test_a_global_gradient_filter_paints_outside_the_field_and_the_check_says_so():
    result = run(centre_model(), plain(layer="conv", unit=1, steps=100, grad={"gamma": 1.0, "confine": False}))
    assert result.checks[0]["inside_receptive_field"]["ok"] is False
    assert result.checks[0]["inside_receptive_field"]["value"] > 0.5


@pytest.mark.parametrize("method", IMAGE_METHODS)
def test_a_non_square_colour_input_keeps_its_channels_and_axes(method):
    model, w = linear_model(shape=(3, 12, 20), seed=4)
    x = run(model, method_config(method)).images[0]
    assert x.shape == (3, 12, 20)
    for c in range(3):
        assert correlation(x[c], w[c]) > 0.99, (c, correlation(x[c], w[c]))
