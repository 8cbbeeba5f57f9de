"""The shipped checkpoint: it loads by default, its card holds the targets' numbers, and the card's
held-out ELBO is reproduced on the reference batch rebuilt from the card's data recipe."""

import numpy as np
import pytest
from typer.testing import CliRunner

from meiscope.cli import app
from meiscope.data import build_split
from meiscope.model import DEFAULT_MODEL_DIR
from meiscope.reference.evaluate import elbo_terms_mean


def test_card_holds_every_target_number(card):
    m = card["metrics"]
    for key in ("elbo", "log_lik", "kl_z1", "kl_z2"):
        assert np.isfinite(m["heldout"][key])
    assert m["baselines"]["margin_over_floored_gaussian"] == pytest.approx(
        m["heldout"]["elbo"] - m["baselines"]["floored_gaussian"])
    census = m["units"]["census"]
    assert len(census) == 250 and {u["status"] for u in census} <= {"active", "collapsed"}
    assert m["units"]["n_kl_above_0.1"] == sum(u["mean_kl"] > 0.1 for u in census)
    assert m["projective_fields"]["n_fitted"] == 200
    assert 0.0 <= m["reconstruction_r2"] <= 1.0
    assert card["data"]["train_sha256"] and card["training"]["steps"] > 0
    for name in card["figures"]:
        assert (DEFAULT_MODEL_DIR / "figures" / name).is_file()


def test_card_elbo_is_reproduced_on_the_reference_batch(shipped, card):
    ref = card["metrics"]["reference_batch"]
    params = card["data"]["params"]
    batch, _ = build_split("heldout", ref["first_n_heldout_patches"], seed=params["seed"], f0=params["f0"],
                           scale=card["data"]["scale"])
    assert batch.mean(dtype=np.float64) == pytest.approx(ref["pixel_mean"], abs=1e-5)
    assert batch.std(dtype=np.float64) == pytest.approx(ref["pixel_std"], rel=1e-5)
    terms = elbo_terms_mean(shipped, batch, seed=ref["sampling_seed"])
    assert terms["elbo"] == pytest.approx(ref["elbo"], abs=0.05)


def test_shipped_model_beats_an_untrained_one_on_heldout(shipped, card):
    from meiscope.model import TDVAE

    batch, _ = build_split("heldout", 512, seed=1, scale=card["data"]["scale"])  # other patches than the card's
    trained = elbo_terms_mean(shipped, batch)["elbo"]
    untrained = elbo_terms_mean(TDVAE().eval(), batch)["elbo"]
    assert trained > untrained + 1000


def test_info_prints_the_card_summary():
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "shards verified" in result.output and "held-out ELBO" in result.output


def test_card_gabor_share_is_reproduced(shipped, card):
    from meiscope.reference.evaluate import GABOR_R2, projective_field_fits

    pf = card["metrics"]["projective_fields"]
    fits = projective_field_fits(shipped)
    assert [f["z1_unit"] for f in fits] == [f["z1_unit"] for f in pf["fits"]]
    assert sum(f["r2"] >= GABOR_R2 for f in fits) == pf["n_gabor_like"]
    assert np.median([f["r2"] for f in fits]) == pytest.approx(pf["median_r2"], abs=1e-6)


def test_the_shipped_model_meets_the_reference_targets(card):
    """What makes it the reference TDVAE (the card's numbers, re-measured by the tests above): a likelihood
    beyond second-order statistics, V1-like projective fields, a living top layer that carries texture."""
    m = card["metrics"]
    assert m["baselines"]["margin_over_floored_gaussian"] > 0
    assert m["projective_fields"]["fraction_gabor_like"] >= 0.5
    assert m["units"]["n_kl_above_0.1"] >= 20
    assert m["reconstruction_r2"] >= 0.9
    accuracy = m["texture"]["accuracy"]
    assert accuracy["z2"] > max(accuracy["z1"], accuracy["pixels"]) and m["texture"]["n_sensitive"] >= 5


def test_card_states_both_baselines_and_the_per_patch_numbers(shipped, card):
    from meiscope.reference.evaluate import LIVE_ATOM_FRACTION, live_atoms

    m = card["metrics"]
    base = m["baselines"]
    assert base["margin_over_scale_mixture"] == pytest.approx(m["heldout"]["elbo"] - base["scale_mixture"])
    assert base["floored_gaussian"] < base["scale_mixture"] < base["unconstrained_gaussian"]
    ref = base["reference_batch"]
    assert ref["margin_over_scale_mixture"] == pytest.approx(m["reference_batch"]["elbo"] - ref["scale_mixture"])
    assert sum(base["scale_mixture_fit"]["weights"]) == pytest.approx(1.0, abs=1e-4)
    pct = m["reconstruction_r2_percentiles"]
    assert pct["1"] <= pct["5"] <= pct["50"] <= 1.0
    pf = m["projective_fields"]
    assert pf["live_atom_fraction"] == LIVE_ATOM_FRACTION
    assert pf["n_live_atoms"] == live_atoms(shipped.W.detach().double().numpy(), LIVE_ATOM_FRACTION)
    tm = m["texture_modulation"]
    assert tm["n_active"] == m["units"]["n_kl_above_0.1"] == len(tm["per_unit"])
    assert tm["n_sensitive_active"] == sum(u["ci"][0] > 0 for u in tm["per_unit"])


def test_card_command_refuses_a_folder_without_a_card(tmp_path):
    result = CliRunner().invoke(app, ["card", "--model", str(tmp_path)])
    assert result.exit_code == 2 and "model_card.json" in result.output
