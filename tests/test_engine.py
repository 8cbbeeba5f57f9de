"""The AM engine on the shipped model: every method drives units past the data's range, the regularisers do
what they say, batched runs equal single ones, runs are deterministic and round-trip through files."""

import threading

import numpy as np
import pytest
import torch

from meiscope import AMConfig, Run, run
from meiscope.engine import regularisers as R
from meiscope.engine.loop import _post_step
from meiscope.engine.bank import ObjectiveBank
from meiscope.engine.objectives import unit
from meiscope.engine.optimizers import build_optimizer
from meiscope.engine.parameterizations import Pixel
from meiscope.engine.presets import plain_config as plain
from meiscope.engine.randomness import RowRandom
from meiscope.presentation.figures import save_with_figures


STEPS = {"pixel": 60, "distribution": 60, "transform": 60, "transform_distribution": 60, "latent_z2": 150,
         "latent_z1": 150}


@pytest.mark.parametrize("method", list(STEPS))
def test_every_method_drives_the_most_active_units_past_the_data(shipped, top_units, method):
    units = [r["unit"] for r in top_units]
    result = run(shipped, plain(method=method, unit=units, steps=STEPS[method], elbo_every=0))
    start, reached = result.metrics["activation"][0], result.metrics["activation"].max(0)
    p999 = np.array([r["act_p999"] for r in top_units])
    assert (reached > start).all()
    if method != "latent_z2":  # a z2 code decodes to the mean image W E[z1 | z2], which the shipped model's
        # z2 units barely read (they act through the scales of p(z1 | z2)): it stays in the data's range
        assert (reached > 1.5 * p999).all(), (method, reached, p999)


def _shift_robustness(model, image: np.ndarray, u: int, radius: int = 3) -> float:
    """Mean activation over all shifts up to `radius` px, relative to the unshifted activation."""
    x = torch.as_tensor(image).view(1, 1, 40, 40)
    shifts = torch.tensor([(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)])
    with torch.no_grad():
        shifted = R.jitter(x.expand(len(shifts), 1, 40, 40), shifts)
        act = model.readout(shifted, units=[u])[:, 0]
        return float(act.mean() / act[len(shifts) // 2])


def test_jitter_makes_the_input_robust_to_shifts(shipped, top_units):
    u = top_units[0]["unit"]
    still = run(shipped, plain(unit=u, steps=80, elbo_every=0))
    jittered = run(shipped, plain(unit=u, steps=80, elbo_every=0, pre={"jitter": 3}))
    assert _shift_robustness(shipped, jittered.images[0], u) > _shift_robustness(shipped, still.images[0], u) + 0.05


def _high_frequency_fraction(images: np.ndarray) -> float:
    power = np.abs(np.fft.fft2(images)) ** 2
    f = np.fft.fftfreq(40) * 40
    high = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2) > 8
    return float(power[..., high].sum() / power.sum())


def test_gradient_filter_removes_high_frequencies(shipped, top_units):
    x = torch.randn(2, 1, 40, 40, requires_grad=True)
    shipped.readout(x, units=[top_units[0]["unit"]]).sum().backward()
    raw = x.grad.clone()
    x.grad = None
    shipped.readout(R.filter_gradient(x, 1.5), units=[top_units[0]["unit"]]).sum().backward()
    assert torch.allclose(torch.fft.rfft2(x.grad)[..., 0, 0], torch.fft.rfft2(raw)[..., 0, 0], atol=1e-4)  # DC kept
    assert _high_frequency_fraction(x.grad.numpy()) < 0.5 * _high_frequency_fraction(raw.numpy())
    u = top_units[1]["unit"]
    unfiltered = run(shipped, plain(unit=u, steps=60, elbo_every=0, optimizer={"name": "sgd", "lr": 0.5}))
    filtered = run(shipped, plain(unit=u, steps=60, elbo_every=0, optimizer={"name": "sgd", "lr": 0.5},
                                  grad={"gamma": 1.5}))
    assert _high_frequency_fraction(filtered.images) < _high_frequency_fraction(unfiltered.images)


def test_post_step_blur_changes_the_parameter_the_optimizer_holds():
    config = AMConfig(post={"blur_sigma": 1.0, "clip": 0.5})
    rand = RowRandom(0, [0, 1], 1, torch.device("cpu"))
    param = Pixel(config, rand, (1, 40, 40))
    optimizer = build_optimizer(list(param.parameters()), config.optimizer, 0.01)
    held = optimizer.param_groups[0]["params"][0]
    before = param.x.detach().clone()
    _post_step(param, config.post, 1.0, 0.0)
    expected = R.gaussian_blur(before, 1.0).clamp(-0.5, 0.5)
    assert held is param.x and torch.allclose(held.detach(), expected)


def test_post_step_denoisers_smooth(rng):
    noisy = torch.as_tensor(rng.normal(size=(3, 1, 40, 40)), dtype=torch.float32)
    for smooth in (R.gaussian_blur(noisy, 1.0), R.bilateral(noisy, 1.0, 2.0), R.tv_denoise(noisy, 0.3)):
        assert (R.total_variation(smooth) < 0.7 * R.total_variation(noisy)).all()
    renormed = R.renorm(noisy * 10, 5.0)
    assert torch.allclose(renormed.flatten(1).norm(dim=1), torch.full((3,), 5.0), atol=1e-4)


def _mean_pairwise_distance(images: np.ndarray) -> float:
    flat = images.reshape(len(images), -1)
    d = np.sqrt(((flat[:, None] - flat[None]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(images), 1)].mean())


def test_diversity_pushes_samples_apart(shipped, top_units):
    base = dict(unit=top_units[0]["unit"], samples=3, steps=60, elbo_every=0, post={"max_norm": 40.0})
    alone = run(shipped, plain(**base))
    diverse = run(shipped, plain(**base, diversity={"metric": "euclidean", "weight": 0.5}))
    assert _mean_pairwise_distance(diverse.images) > 1.1 * _mean_pairwise_distance(alone.images)


@pytest.mark.parametrize("method, extra", [
    ("pixel", {"pre": {"jitter": 2, "scale": 0.05}, "grad": {"gamma": 1.0}, "obj": {"elbo_weight": 0.01}}),
    ("distribution", {"distribution": {"learn_sigma": True, "draws": 4}}),
    ("transform", {"transform": {"kind": "cnn", "kernel_size": 5}, "optimizer": {"name": "mei", "lr": 0.01}}),
    ("latent_z2", {"latent": {"z1": "sample"}}),
])
def test_a_unit_in_a_batch_matches_its_single_run(shipped, top_units, method, extra):
    units = [r["unit"] for r in top_units]
    batch = run(shipped, plain(method=method, unit=units, steps=30, samples=2, **extra))
    single = run(shipped, plain(method=method, unit=units[1], steps=30, samples=2, **extra))
    rows = [batch.row(units[1], s) for s in range(2)]
    # equal up to float rounding: summation order differs between batch sizes, and a normalised step (MEI) can
    # carry a rounding difference in a pixel where the gradient is near zero; the image as a whole stays put
    difference = np.linalg.norm(batch.images[rows] - single.images) / np.linalg.norm(single.images)
    assert difference < 1e-4, difference
    np.testing.assert_allclose(batch.metrics["activation"][:, rows], single.metrics["activation"], rtol=1e-3, atol=1e-3)


def test_runs_are_deterministic_and_replay_from_saved_files(shipped, tmp_path):
    config = AMConfig(method="transform_distribution", unit=[5, 51], steps=15, snapshot_every=5,
                      pre={"jitter": 1}, optimizer={"lr": {"kind": "random", "low": 0.005, "high": 0.02}})
    first = run(shipped, config)
    save_with_figures(first, tmp_path / "run")
    loaded = Run.load(tmp_path / "run")
    again = run(shipped, loaded.config)
    assert loaded.config == config
    for a, b in ((first.images, loaded.images), (first.images, again.images),
                 (first.arrays["kernels"], again.arrays["kernels"]), (first.snapshots, loaded.snapshots)):
        np.testing.assert_array_equal(a, b)
    for name in first.metrics:
        np.testing.assert_array_equal(first.metrics[name], loaded.metrics[name])
    assert list(loaded.snapshot_steps) == [0, 5, 10, 15]
    assert {"inputs.png", "spectra.png", "kernels.png", "metrics.png"} <= {p.name for p in (tmp_path / "run" / "figures").iterdir()}


def test_saving_over_a_run_leaves_no_temporary_folders(shipped, tmp_path):
    result = run(shipped, plain(unit=3, steps=3))
    result.save(tmp_path / "r")
    result.save(tmp_path / "r")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_metrics_track_runner_up_elbo_and_best(shipped, top_units):
    u = top_units[0]["unit"]
    result = run(shipped, plain(unit=u, steps=20, elbo_every=5))
    m = result.metrics
    assert m["activation"].shape == (20, 1)
    assert (m["runner_up_unit"] != u).all()
    assert np.isfinite(m["elbo"][::5]).all() and np.isnan(m["elbo"][1::5]).all()
    best = result.best_step[0]
    with torch.no_grad():
        again = shipped.readout(torch.as_tensor(result.best_images), units=[u])[0, 0].item()
    assert again == pytest.approx(m["activation"][best, 0], rel=1e-4)
    assert not np.shares_memory(result.best_images, result.images)


def test_learned_sigma_moves_and_fixed_sigma_stays(shipped):
    fixed = run(shipped, plain(method="distribution", unit=51, steps=20, distribution={"sigma": 0.3}))
    learned = run(shipped, plain(method="distribution", unit=51, steps=20,
                                    distribution={"sigma": 0.3, "learn_sigma": True}))
    assert np.allclose(fixed.arrays["sigma"], 0.3)
    assert not np.allclose(learned.arrays["sigma"], 0.3)


def test_latent_one_hot_start_and_decoding(shipped):
    result = run(shipped, plain(method="latent_z2", unit=51, steps=1, optimizer={"lr": 1e-6},
                                   latent={"one_hot_scale": 4.0}))
    code = result.arrays["latents"][0]
    assert code[51] == pytest.approx(4.0, abs=1e-3) and np.abs(np.delete(code, 51)).max() < 1e-3
    with torch.no_grad():
        expected = shipped.generate(torch.as_tensor(code)[None]).numpy()[0, 0]
    np.testing.assert_allclose(result.images[0], expected, atol=1e-4)


def test_direction_objective_is_the_weighted_sum(shipped):
    objective = unit(51) - 0.5 * unit(94)
    bank = ObjectiveBank([objective], {"z2": 250, "z1": 1800})
    x = torch.randn(4, 1, 40, 40)
    with torch.no_grad():
        mu = shipped.readout(x)
        value = bank.activation({("z2", "mean"): mu}, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(value, mu[:, 51] - 0.5 * mu[:, 94])
    result = run(shipped, plain(objective=objective, steps=10))
    assert result.rows == [{"unit": 51, "sample": 0}]
    assert not np.isin(result.metrics["runner_up_unit"], [51, 94]).any()


def test_frames_arrive_and_cancel_stops_the_run(shipped):
    frames, cancel = [], threading.Event()

    def on_step(frame):
        frames.append(frame)
        if len(frames) == 3:
            cancel.set()

    result = run(shipped, plain(unit=[1, 2], steps=100, snapshot_every=5), on_step=on_step, cancel=cancel)
    assert [f.step for f in frames] == [0, 5, 10]
    for f, snapshot in zip(frames, result.snapshots):  # frames hold copies, not views of the live parameter
        np.testing.assert_array_equal(f.images, snapshot)
    assert not np.array_equal(frames[0].images, frames[2].images)
    assert frames[0].images.shape == (2, 40, 40) and len(frames[0].metrics["activation"]) == 2
    assert result.info["status"] == "cancelled" and result.info["steps_done"] == 11
    assert result.metrics["activation"].shape == (11, 2)


def test_bfloat16_readouts_follow_float32_and_leave_the_model_alone(shipped):
    """precision bfloat16 reads the units through a bfloat16 copy of the weights: the run lands where the float32
    run does (docs/BENCHMARKS.md has the 200-step atlas numbers), and the model keeps its float32 weights."""
    from meiscope.engine.precision import low_precision_copy

    config = {"unit": [50, 101], "steps": 40, "pre": {"jitter": 2}, "grad": {"gamma": 1.0}, "elbo_every": 10}
    full = run(shipped, AMConfig.model_validate(config))
    low = run(shipped, AMConfig.model_validate({**config, "precision": "bfloat16"}))
    assert all(p.dtype == torch.float32 for p in shipped.parameters())
    assert low_precision_copy(shipped) is low_precision_copy(shipped)  # made once per model
    assert next(low_precision_copy(shipped).parameters()).dtype == torch.bfloat16
    for a, b in zip(full.images, low.images):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98
    np.testing.assert_allclose(low.final_activation, full.final_activation, rtol=0.05)
    assert not np.array_equal(low.images, full.images)  # it did run in another precision
    assert np.isfinite(low.metrics["elbo"][::10]).all()  # the ELBO is still measured, in float32
