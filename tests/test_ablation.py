"""Recipe ablations: the encoder starts each pass the code they promise, the layer-wide free bits charge what
they say, and an arm trains, measures itself and lands in the ablation table."""

import json

import numpy as np
import pytest
import torch

from meiscope.model.tdvae import OBS_STD, TDVAE, ELBOTerms
from meiscope.reference.ablation import (ABLATION_FILE, collect, run_arm, scale_mixture_reference, table,
                                         write_figure)
from meiscope.reference.dictionary import Dictionary, initialise_model
from meiscope.reference.recipe import RecipeConfig
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
    rows = [run_arm(name, out, dicts, 3, 4, base=base, gabor_sample=8, progress=False) for name in ("baseline", "refined_signed")]
    assert (dicts / "ica").is_dir() and (dicts / "ica_refined").is_dir()
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
    assert [r["arm"] for r in json.loads((out / ABLATION_FILE).read_text())] == ["baseline", "refined_signed"]
    gsm = scale_mixture_reference(_data(base), out)
    text = table(collect(out), gsm)
    assert text.count("\n") == 3 and "| refined_signed | 0 |" in text
    write_figure(collect(out), out, gsm, tmp_path / "ablation.png")
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
                          (["ablate", "--arm", "nope"], "unknown arm 'nope'")):
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
