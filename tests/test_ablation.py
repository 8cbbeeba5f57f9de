"""Recipe ablations: the encoder starts each pass the code they promise, the layer-wide free bits charge what
they say, and an arm trains, measures itself and lands in the ablation table."""

import json

import numpy as np
import pytest
import torch

from meiscope.model.tdvae import OBS_STD, TDVAE, ELBOTerms
from meiscope.model.checkpoint import load_model, save_sharded
from meiscope.reference.ablation import (ABLATION_FILE, FACTOR_EIGENVALUE, FACTOR_NATS, collect, linear_factors,
                                         measure_released, run_arm, scale_mixture_reference, table, write_figure)
from meiscope.reference.dictionary import Dictionary, initialise_model
from meiscope.reference.recipe import JOINT_DIR, RecipeConfig
from meiscope.reference.train import training_loss

from test_recipe import tiny_recipe


def _dictionary(rng, n: int) -> Dictionary:
    atoms = rng.normal(size=(1600, n)) * np.linspace(1.0, 2.0, n)
    return Dictionary(atoms, np.linalg.pinv(atoms), rng.normal(size=1600) * 0.1, "ica_refined", 0.0, {})


def test_the_signed_start_passes_every_atoms_code_through(rng):
    d = _dictionary(rng, 1800)  # more atoms than the energy start has room for (1000)
    torch.manual_seed(0)
    model = initialise_model(TDVAE(), d, start="signed").eval()
    x = torch.as_tensor(rng.normal(size=(8, 1600)) * 0.3, dtype=torch.float32)
    with torch.no_grad():
        mu1, b1 = model.z1_posterior(x)
    code = torch.as_tensor(d.codes(x.numpy()), dtype=torch.float32)
    torch.testing.assert_close(mu1, code, atol=2e-3, rtol=1e-3)  # softplus(u + 8) - 8 = u to 1e-3 for |u| < 1.5
    assert float(code.abs().max()) < 1.5
    torch.testing.assert_close(b1[0], torch.as_tensor(OBS_STD * np.linalg.norm(d.filters, axis=1) / np.sqrt(2),
                                                      dtype=torch.float32), rtol=1e-4, atol=0)
    torch.testing.assert_close(model.W, torch.as_tensor(d.atoms, dtype=torch.float32))


def test_the_random_start_leaves_the_encoder_as_pytorch_made_it(rng):
    d = _dictionary(rng, 50)
    torch.manual_seed(0)
    fresh = TDVAE()
    torch.manual_seed(0)
    model = initialise_model(TDVAE(), d, start="random")
    for name, p in fresh.named_parameters():
        if not name.startswith("decoder"):
            assert torch.equal(p, dict(model.named_parameters())[name]), name
    torch.testing.assert_close(model.W[:, :50], torch.as_tensor(d.atoms, dtype=torch.float32))
    with pytest.raises(ValueError, match="encoder start"):
        initialise_model(TDVAE(), d, start="odd")


def test_layer_free_bits_floor_the_layers_kl_not_each_units():
    units = torch.tensor([[0.0, 0.5, 0.0, 0.1]])  # one patch, four z2 units: 0.6 nats in all
    terms = ELBOTerms(log_lik=torch.tensor([-10.0]), kl_z1=torch.tensor([2.0]), kl_z2_units=units)
    assert float(training_loss(terms, 1.0, 0.2, "unit")) == pytest.approx(12.0 + 0.2 + 0.5 + 0.2 + 0.2)
    assert float(training_loss(terms, 1.0, 0.2, "layer")) == pytest.approx(12.0 + 0.8)  # floor 0.2 x 4 > 0.6
    assert float(training_loss(terms, 1.0, 0.1, "layer")) == pytest.approx(12.0 + 0.6)  # above the floor 0.4
    with pytest.raises(ValueError, match="per"):
        training_loss(terms, 1.0, 0.1, "batch")


def test_arms_train_measure_and_fill_the_table(tmp_path, data_root):
    base = tiny_recipe()
    out, dicts = tmp_path / "ablation", tmp_path / "dictionaries"
    rows = [run_arm(name, out, dicts, 3, 4, base=base, gabor_sample=8, progress=False)
            for name in ("baseline", "refined_signed", "cutoff_0.5")]
    assert len(list(dicts.glob("ica-*"))) == 2 and len(list(dicts.glob("ica_refined-*"))) == 1
    assert rows[0]["n_atoms"] == 1800 and rows[1]["config"]["encoder_start"] == "signed"
    # the refined dictionary fills W; ICA's 24 atoms leave the rest at the spare scale
    assert rows[1]["n_live_atoms"] > rows[0]["n_live_atoms"]
    assert rows[0]["n_live_atoms"] <= 24 + 5
    for row in rows:
        assert -1e5 < row["heldout_elbo"] < 0 and 0 <= row["z2_units_above_0.1"] <= row["z2_units_above_0.01"] <= 250
        assert 1 <= row["z2_units_with_half_the_kl"] <= 250 and 0 <= row["z1_units_above_0.1"] <= 1800
        assert row["odd_share_above_0.01"]["n_at_least_0.2"] <= row["z2_units_above_0.01"]
        assert set(row["r2_percentiles"]) == {"1", "5", "50"}
        assert row["start_correlation_live"]["median"] > 0.9  # four joint steps barely move W
        assert row["linear_factors"]["n_codes"] == row["n_live_atoms"]
        assert row["linear_factors"]["n_patches"] == len(_data(base).train)
    assert [r["arm"] for r in json.loads((out / ABLATION_FILE).read_text())] == ["baseline", "cutoff_0.5",
                                                                                "refined_signed"]
    # an arm on other patches: its own patch set (only the cutoff changed), dictionary and scale mixture
    other = rows[2]["config"]["data"]
    assert other == {**rows[0]["config"]["data"], "f0": 0.5}
    assert rows[2]["scale_mixture"] != rows[0]["scale_mixture"]
    # a released checkpoint is measured as one more row, its W compared with the shared ICA atoms
    released = tmp_path / "released"
    save_sharded(load_model(out / "baseline" / JOINT_DIR), released)
    (released / "model_card.json").write_text(json.dumps(
        {"training": {"config": {"seed": 0}, "steps": 4, "total_steps": 7, "total_wall_s": 1.0}}))
    row = measure_released(released, out, dicts, base=base, progress=False)
    assert row["arm"] == "released" and row["steps"] == {"inference": 3, "joint": 4}
    assert row["n_live_atoms"] == rows[0]["n_live_atoms"] and row["start_correlation_live"]["median"] > 0.9
    gsm = scale_mixture_reference(_data(base), out)
    assert all(r["scale_mixture"] == gsm for r in collect(out) if r["arm"] != "cutoff_0.5")  # one per patch set
    text = table(collect(out))
    assert text.count("\n") == 5 and "| refined_signed | 0 | 4 |" in text and "| released | 0 | 4 |" in text
    write_figure(collect(out), out, tmp_path / "ablation.png")  # the released row has no curves here
    assert (tmp_path / "ablation.png").stat().st_size > 10_000


def _data(base: RecipeConfig):
    from meiscope.data.patches import build_natural

    return build_natural(base.data, progress=False)


def test_the_new_choices_are_checked_and_recorded_in_the_stage_command(tmp_path):
    from typer.testing import CliRunner

    from meiscope.cli import app
    from meiscope.presentation.card import _schedule_text
    from meiscope.reference.release import train_command
    from meiscope.reference.train import TrainConfig
    from dataclasses import asdict

    for args, message in ((["recipe", "--encoder-start", "odd"], "--encoder-start must be one of"),
                          (["recipe", "--free-bits-per", "batch"], "--free-bits-per must be unit or layer"),
                          (["train", "--encoder-start", "odd"], "--encoder-start must be one of"),
                          (["ablate", "--arm", "nope"], "unknown arm 'nope'"),
                          (["ablate", "--released", str(tmp_path)], "holds no model_card.json")):
        result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x")])
        assert result.exit_code == 2 and message in result.output, result.output
    config = asdict(TrainConfig(init_dictionary="runs/d", encoder_start="signed", z2_free_bits=0.1,
                                z2_free_bits_per="layer"))
    command = train_command(config)
    assert "--encoder-start signed" in command and "--z2-free-bits-per layer" in command
    assert "--encoder-start" not in train_command(asdict(TrainConfig(init_dictionary="runs/d")))
    assert "one floor on the layer's KL" in _schedule_text({**config, "z2_free_bits_until": 0.6})


def test_an_orthonormal_dictionarys_linear_code_is_the_wiener_shrinkage(rng):
    from meiscope.reference.dictionary import linear_code_filters

    q, _ = np.linalg.qr(rng.normal(size=(1600, 30)))
    np.testing.assert_allclose(linear_code_filters(q), 2.0 / (2.0 + OBS_STD**2) * q.T, atol=1e-12)
    # small atoms nearly parallel to large ones: the pseudo-inverse's filters blow up, the noise-aware code's do not
    atoms = np.hstack([q, 0.05 * q + 0.001 * rng.normal(size=(1600, 30))])
    assert np.linalg.norm(np.linalg.pinv(atoms), axis=1).max() > 20
    assert np.linalg.norm(linear_code_filters(atoms), axis=1).max() < 2


def test_linear_factors_count_a_shared_factor_on_both_halves_and_one_half_s_only_on_its_own(rng):
    n, k, load = 20_000, 40, 0.4
    shared = load * rng.laplace(size=(n, 1)) / np.sqrt(2) + np.sqrt(1 - load**2) * rng.laplace(size=(n, k)) / np.sqrt(2)
    found = linear_factors(shared)
    # standardised codes with one common factor: correlation 1 - load^2 + k load^2 along it, 1 elsewhere
    assert found["n_worth_0.1_nats"] == found["n_worth_0.1_nats_other_half"] == 1
    assert found["largest_other_half"] == pytest.approx(1 - load**2 + k * load**2, rel=0.1)
    independent = linear_factors(rng.laplace(size=(n, k)))
    assert independent["n_worth_0.1_nats"] == independent["n_worth_0.1_nats_other_half"] == 0
    first_half_only = np.concatenate([shared[: n // 2], rng.laplace(size=(n // 2, k)) / np.sqrt(2)])
    split = linear_factors(first_half_only)
    assert split["n_worth_0.1_nats"] == 1 and split["n_worth_0.1_nats_other_half"] == 0
    assert split["largest_other_half"] < 1.3
    lam = FACTOR_EIGENVALUE  # a Gaussian factor along eigenvalue lam is worth (lam - 1 - log lam) / 2 nats
    assert (lam - 1 - np.log(lam)) / 2 == pytest.approx(FACTOR_NATS, rel=1e-6)
