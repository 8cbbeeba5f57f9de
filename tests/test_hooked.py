"""HookedModel (any torch module read through forward hooks), loading by factory, and the digits example."""

import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from meiscope.examples import digits
from meiscope.model.factory import is_factory_spec, load_factory
from meiscope.model.hooked import HookedModel
from meiscope.model.seam import Explorable


class Toy(nn.Module):
    """conv 1->4 (5x5 map), in-place ReLU, a (B, 2, 3) reshape layer, fc -> 3; `fail` makes forward raise."""

    def __init__(self, channels: int = 1, size: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4 * size * size, 6)
        self.shape = nn.Unflatten(1, (2, 3))
        self.head = nn.Linear(6, 3)
        self.fail = False

    def forward(self, x):
        y = self.act(self.conv(x))
        if self.fail:
            raise RuntimeError("boom")
        z = self.shape(self.fc(y.flatten(1)))
        return self.head(z.flatten(1))


@pytest.fixture
def toy() -> Toy:
    torch.manual_seed(0)
    return Toy()


def hooked(net: nn.Module, **kw) -> HookedModel:
    return HookedModel(net, kw.pop("layers", {"out": "head", "conv": "conv", "shape": "shape"}),
                       input_shape=kw.pop("input_shape", (1, 5, 5)), **kw)


def hook_count(net: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in net.modules())


@pytest.fixture(scope="session")
def digits_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def digits_model(digits_cache):
    return digits.build(digits_cache)


# ---- hooks and readouts ----------------------------------------------------------------------------


def test_hooks_are_removed_after_readouts_and_after_a_failing_forward(toy):
    model = hooked(toy)
    assert hook_count(toy) == 0  # the dry forward left none either
    out = model.readouts(torch.randn(2, 1, 5, 5), {("conv", "mean"), ("out", "mean")})
    assert set(out) == {("conv", "mean"), ("out", "mean")}  # only the layers needed
    assert hook_count(toy) == 0
    toy.fail = True
    with pytest.raises(RuntimeError, match="boom"):
        model.readouts(torch.randn(2, 1, 5, 5), {("conv", "mean")})
    assert hook_count(toy) == 0


def test_two_threads_sharing_the_module_each_read_their_own_forward():
    class Meet(nn.Module):
        """Two layers with a barrier between them, so both threads' hooks are registered at once."""

        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Identity(), nn.Flatten()
            self.barrier = threading.Barrier(1)  # the dry forward runs alone

        def forward(self, x):
            h = self.a(x)
            self.barrier.wait()
            return self.b(h)

    net = Meet()
    model = HookedModel(net, ["b", "a"], (1, 2, 2), spatial="mean")
    net.barrier = threading.Barrier(2, timeout=10)
    got = {}

    def read(value: float) -> None:
        out = model.readouts(torch.full((1, 1, 2, 2), value), {("a", "mean"), ("b", "mean")})
        got[value] = (out[("a", "mean")].item(), out[("b", "mean")].tolist())

    threads = [threading.Thread(target=read, args=(v,)) for v in (1.0, 2.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {1.0: (1.0, [[1.0] * 4]), 2.0: (2.0, [[2.0] * 4])}
    assert hook_count(net) == 0


def test_conv_units_at_the_centre_or_averaged_match_the_module_output(toy):
    x = torch.randn(3, 1, 5, 5)
    with torch.no_grad():
        conv = toy.conv(x)
    centre = hooked(toy).readouts(x, {("conv", "mean")})[("conv", "mean")]
    mean = hooked(toy, spatial="mean").readouts(x, {("conv", "mean")})[("conv", "mean")]
    assert centre.shape == mean.shape == (3, 4)
    torch.testing.assert_close(centre, conv[:, :, 2, 2])
    torch.testing.assert_close(mean, conv.mean(dim=(2, 3)))
    assert not torch.allclose(centre, mean)
    # the ReLU after conv works in place: the readout still holds the conv output, negatives included
    assert (centre < 0).any()
    per_layer = hooked(toy, spatial={"conv": "mean"})
    torch.testing.assert_close(per_layer.readouts(x, {("conv", "mean")})[("conv", "mean")], mean)


def test_gradients_flow_to_the_input_only(toy):
    model = hooked(toy)
    x = torch.randn(2, 1, 5, 5, requires_grad=True)
    out = model.readouts(x, {("out", "mean"), ("conv", "mean")})
    (grad,) = torch.autograd.grad(out[("out", "mean")][:, 1].sum() + out[("conv", "mean")][:, 0].sum(), [x])
    assert grad.shape == x.shape and grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in toy.parameters())  # left as they were


def test_units_labels_descriptions_and_the_module_as_submodule(toy):
    model = hooked(toy, labels={"out": ["a", "b", "c"]}, name="toy", input_range=(0, 1), centred=False)
    assert isinstance(model, Explorable) and model.default_layer == "out"
    assert {k: v.units for k, v in model.layers.items()} == {"out": 3, "conv": 4, "shape": 6}
    assert model.layers["out"].labels == ("a", "b", "c") and model.layers["conv"].labels is None
    assert "4 channels, at the centre of the 5x5 map" in model.layers["conv"].description
    assert "flattened to 6 units" in model.layers["shape"].description
    assert model.input.shape == (1, 5, 5) and model.input.range == (0.0, 1.0) and not model.input.centred
    assert [id(p) for p in model.parameters()] == [id(p) for p in toy.parameters()]
    assert not toy.training
    info = model.info()
    assert info.default_layer == "out" and info.layers[0]["labels"] == ["a", "b", "c"] and not info.has_elbo
    assert not any(m.startswith("latent_") for m in info.methods)
    # a path list names each readout by its path; a module may stand for its path
    assert list(HookedModel(toy, ["head", "fc"], (1, 5, 5)).layers) == ["head", "fc"]
    assert list(HookedModel(toy, {"h": toy.head}, (1, 5, 5)).layers) == ["h"]
    # (B, H, W) is taken for a 1-channel model
    assert model.readouts(torch.randn(2, 5, 5), {("out", "mean")})[("out", "mean")].shape == (2, 3)


@pytest.mark.parametrize("kw, message", [
    ({"layers": ["nope"]}, "no submodule 'nope'"),
    ({"layers": {"x": nn.Linear(2, 2)}}, "not a submodule"),
    ({"layers": []}, "at least one layer"),
    ({"labels": {"out": ["a", "b"]}}, "2 given for 3 units"),
    ({"labels": {"zz": ["a"]}}, "unknown layer 'zz'"),
    ({"spatial": "max"}, "'centre' or 'mean'"),
    ({"input_shape": (5, 5)}, "input_shape must be"),
    ({"census_data": torch.zeros(4, 1, 6, 6)}, "census_data must be"),
    ({"census_data": torch.zeros(0, 1, 5, 5)}, "census_data must be"),
])
def test_bad_wrapping_is_refused_in_one_line(toy, kw, message):
    with pytest.raises(ValueError, match=message):
        hooked(toy, **kw)


def test_bad_readout_requests_are_refused(toy):
    model = hooked(toy)
    with pytest.raises(ValueError, match="layer must be one of"):
        model.readouts(torch.randn(1, 1, 5, 5), {("nope", "mean")})
    with pytest.raises(ValueError, match="only the statistic 'mean'"):
        model.readouts(torch.randn(1, 1, 5, 5), {("out", "std")})
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 1, 5, 5\)"):
        model.readouts(torch.randn(1, 1, 6, 6), {("out", "mean")})


def test_a_layer_that_outputs_no_tensor_is_refused():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pair = Pair()

        def forward(self, x):
            return self.pair(x)[0]

    with pytest.raises(ValueError, match="outputs tuple, not a tensor"):
        HookedModel(Net(), ["pair"], (1, 4, 4))


def test_three_channel_model():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    model = HookedModel(net, {"logits": "6", "block2": "2", "block1": "0"}, (3, 16, 16), input_range=(0, 1))
    assert {k: v.units for k, v in model.layers.items()} == {"logits": 5, "block2": 8, "block1": 6}
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    out = model.readouts(x, {(name, "mean") for name in model.layers})
    with torch.no_grad():
        h1 = net[0](x)
        h2 = net[2](net[1](h1))
        torch.testing.assert_close(out[("block1", "mean")], h1[:, :, 8, 8])
        torch.testing.assert_close(out[("block2", "mean")], h2[:, :, 4, 4])
        torch.testing.assert_close(out[("logits", "mean")], net(x))
    (grad,) = torch.autograd.grad(out[("block2", "mean")][:, 3].sum(), [x])
    assert grad.shape == (4, 3, 16, 16) and grad.abs().sum() > 0


# ---- census ----------------------------------------------------------------------------------------


def test_census_matches_numpy_and_finds_dead_units(toy):
    with torch.no_grad():
        toy.head.weight[1] = 0.0
        toy.head.bias[1] = 2.0  # unit 1 of "out" is constant: dead
    data = torch.randn(700, 1, 5, 5)  # more than one census chunk
    model = hooked(toy, census_data=data, labels={"out": ["a", "b", "c"]})
    assert hooked(toy).census("out") is None
    records = model.census("out")
    with torch.no_grad():
        acts = toy(data).double().numpy()
    assert [r["unit"] for r in records] == [0, 1, 2]
    assert [r["status"] for r in records] == ["active", "dead", "active"]
    assert [r["label"] for r in records] == ["a", "b", "c"]
    for i, r in enumerate(records):
        for key, value in (("act_mean", acts[:, i].mean()), ("act_std", acts[:, i].std()),
                           ("act_p999", np.percentile(acts[:, i], 99.9)), ("act_max", acts[:, i].max())):
            assert r[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
            assert r[key] == float(f"{r[key]:.5g}")  # rounded to 5 significant digits
    conv = model.census("conv")
    with torch.no_grad():
        centre = toy.conv(data)[:, :, 2, 2].double().numpy()
    assert [r["act_mean"] for r in conv] == pytest.approx(centre.mean(0), rel=1e-4)
    records[0]["status"] = "changed"
    assert model.census("out")[0]["status"] == "active"  # the cache hands out copies


# ---- loading by factory ----------------------------------------------------------------------------

FACTORY_FILE = """
import torch
from torch import nn
from meiscope.model.hooked import HookedModel

def net():
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))

def build():
    return HookedModel(net(), {"out": "1"}, (1, 4, 4))

def broken():
    raise RuntimeError("no weights here")

answer = 42
"""


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    (tmp_path / "my_models_xyz.py").write_text(FACTORY_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path / "my_models_xyz.py"


def test_load_factory_from_a_module_or_a_file(factory_module):
    model = load_factory("my_models_xyz:build")
    assert isinstance(model, HookedModel) and model.layers["out"].units == 3 and not model.training
    model = load_factory(f"{factory_module}:build")
    assert isinstance(model, HookedModel)


@pytest.mark.parametrize("spec, message", [
    ("no_such_package_xyz.models:build", "cannot import 'no_such_package_xyz.models'.*ModuleNotFoundError"),
    ("/nowhere/models.py:build", "cannot import '/nowhere/models.py'"),
    ("my_models_xyz:nope", "'my_models_xyz' has no attribute 'nope'"),
    ("my_models_xyz:net", "returned a plain torch module \\(Sequential\\): wrap it in .*HookedModel"),
    ("my_models_xyz:answer", "returned int, not an Explorable"),
    ("my_models_xyz:broken", "factory 'my_models_xyz:broken' failed: RuntimeError: no weights here"),
    (":build", "package.module:factory"),
    ("my_models_xyz:", "package.module:factory"),
])
def test_load_factory_errors_say_what_is_wrong_in_one_line(factory_module, spec, message):
    with pytest.raises(ValueError, match=message) as err:
        load_factory(spec)
    assert "\n" not in str(err.value)


def test_is_factory_spec(tmp_path):
    assert is_factory_spec("meiscope.examples.digits:build")
    assert is_factory_spec("models/net.py:build")
    assert not is_factory_spec("models/tdvae40")
    odd = tmp_path / "a:b"
    odd.mkdir()
    assert not is_factory_spec(str(odd))


# ---- the digits example ----------------------------------------------------------------------------


def test_digits_model_trains_once_and_classifies(digits_model, digits_cache, monkeypatch):
    model = digits_model
    assert model.name == "digits-cnn" and model.input.shape == (1, 8, 8) and model.input.range == (0.0, 1.0)
    assert {k: v.units for k, v in model.layers.items()} == {"logits": 10, "fc1": 32, "conv2": 16, "conv1": 8}
    assert model.default_layer == "logits" and model.layers["logits"].labels == tuple("0123456789")
    _, _, x_test, y_test = digits.digits_split()
    assert digits.accuracy(model.module, x_test, y_test) >= 0.95
    assert "held-out accuracy" in model.description
    census = model.census("logits")
    assert [r["label"] for r in census] == list("0123456789") and all(r["status"] == "active" for r in census)
    # the second build loads the cached weights, from $MEISCOPE_CACHE through the factory too
    cache = digits.cache_path(digits_cache)
    assert cache.is_file() and not list(cache.parent.glob(".*.tmp"))
    monkeypatch.setenv("MEISCOPE_CACHE", str(digits_cache))
    started = time.perf_counter()
    again = load_factory("meiscope.examples.digits:build")
    assert time.perf_counter() - started < 2.0
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def class_means() -> np.ndarray:
    x, y, _, _ = digits.digits_split()
    return np.stack([x[y == c, 0].mean(0).numpy() for c in range(10)])


def class_wins(images: np.ndarray) -> tuple[int, np.ndarray]:
    """How many of the 10 images correlate best with their own class's mean digit, and the correlations."""
    corr = np.corrcoef(np.concatenate([images.reshape(10, -1), class_means().reshape(10, -1)]))[:10, 10:]
    return int((corr.argmax(1) == np.arange(10)).sum()), corr


# the settings docs/OWN_MODEL.md gives for the digits logits
DIGITS_AM = {"layer": "logits", "obj": {"l2": 1.0}}  # the default configuration with an L2 penalty


def test_preferred_inputs_of_the_class_units_look_like_their_digits(digits_model):
    """The point of HookedModel: the engine, through the hooks, draws each class unit's digit; an untrained
    network of the same architecture does not."""
    from meiscope import AMConfig, run

    config = AMConfig(unit=list(range(10)), **DIGITS_AM)
    result = run(digits_model, config)
    assert result.images.shape == (10, 8, 8)
    wins, corr = class_wins(result.images)
    assert wins >= 7, np.round(corr, 2)
    torch.manual_seed(0)
    untrained = HookedModel(digits.DigitsCNN(), {"logits": "fc2"}, (1, 8, 8), input_range=(0, 1), centred=False)
    wins, corr = class_wins(run(untrained, config).images)
    assert wins <= 3, np.round(corr, 2)
