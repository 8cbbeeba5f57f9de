"""Training: the ELBO rises, the z2-KL warm-up follows its schedule, and a resumed run equals an unbroken one."""

import csv

import numpy as np
import pytest
import torch

from meiscope.data.patches import PatchSetParams
from meiscope.model import load_model
from meiscope.reference.evaluate import elbo_terms_mean
from meiscope.reference.train import TrainConfig, load_training_state, train

TINY = PatchSetParams(n_train=2048, n_heldout=1024, seed=0)


def tiny_config(**kw) -> TrainConfig:
    base = dict(steps=40, batch=32, lr=1e-3, checkpoint_every=10, eval_every=20, eval_patches=256, data=TINY,
                device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def test_beta_warms_up_linearly_to_one():
    cfg = TrainConfig(steps=1000, beta_start=0.1, beta_warmup_frac=0.4)
    assert cfg.beta(0) == pytest.approx(0.1)
    assert cfg.beta(200) == pytest.approx(0.55)
    assert cfg.beta(400) == cfg.beta(999) == 1.0


def test_lr_is_constant_then_falls_linearly():
    cfg = TrainConfig(steps=1000, lr=1e-3, lr_decay_start=0.5, lr_final_frac=0.1)
    assert cfg.lr_at(0) == cfg.lr_at(500) == 1e-3
    assert cfg.lr_at(750) == pytest.approx(0.55e-3)
    assert cfg.lr_at(1000) == pytest.approx(1e-4)


def test_training_raises_the_heldout_elbo(tmp_path, data_root):
    out = train(tiny_config(), tmp_path / "run", progress=False)
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 40]  # the start, a row every 50 steps and the end
    assert rows[0]["heldout_elbo"] and rows[-1]["heldout_elbo"] and float(rows[-1]["heldout_elbo"]) > float(
        rows[0]["heldout_elbo"])
    torch.manual_seed(0)
    from meiscope.model import TDVAE

    heldout = np.load(next(data_root.glob("natural-*")) / "heldout.npy")[:256]
    before = elbo_terms_mean(TDVAE().eval(), heldout)["elbo"]
    after = elbo_terms_mean(load_model(out), heldout)["elbo"]
    assert after > before + 200, (before, after)


def test_resumed_run_equals_an_unbroken_one(tmp_path, data_root):
    # schedules that do not depend on the planned step count, so that a 6-step run is the first half of a 12-step one
    flat = dict(beta_start=1.0, lr_decay_start=1.0)
    cfg = tiny_config(steps=12, **flat)
    whole = train(cfg, tmp_path / "whole", progress=False)
    train(tiny_config(steps=6, **flat), tmp_path / "parts", progress=False)
    parts = train(cfg, tmp_path / "parts", progress=False)  # resumes at step 6
    a, b = load_training_state(whole), load_training_state(parts)
    assert a["meta"]["step"] == b["meta"]["step"] == 12
    for name, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][name], tensor, rtol=0, atol=0)


def test_init_from_starts_at_the_given_weights(tmp_path, data_root, random_model):
    from meiscope.model import save_sharded

    save_sharded(random_model, tmp_path / "start")
    out = train(tiny_config(steps=1, lr=1e-7, init_from=str(tmp_path / "start")), tmp_path / "run", progress=False)
    after = load_training_state(out)["model"]
    for name, p in random_model.state_dict().items():
        torch.testing.assert_close(after[name], p.half().float(), atol=1e-5, rtol=0)


def test_a_time_budget_ends_the_run_and_its_schedules(tmp_path, data_root):
    cfg = tiny_config(steps=10**6, max_minutes=0.03, lr_decay_start=0.0, lr_final_frac=0.1)
    out = train(cfg, tmp_path / "run", progress=False)
    state = load_training_state(out)
    assert 0 < state["meta"]["step"] < 10**6 and state["meta"]["wall_s"] >= 0.03 * 60
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["heldout_elbo"] and int(rows[-1]["step"]) == state["meta"]["step"]  # the end is evaluated
    # the learning rate fell with the time spent, not the steps: by the last step's steps alone (a millionth of the
    # run) it would still be at its start. (The logged rate is the last step's, set when that step began: on a
    # loaded machine one step can take much of the 1.8 s budget, so no fixed level below the start holds.)
    assert float(rows[-1]["lr"]) < 0.99 * cfg.lr_at(int(rows[-1]["step"]))
    assert cfg.lr_at(10, wall_s=0.03 * 60) == pytest.approx(0.1 * cfg.lr)


def test_free_bits_keep_a_silent_unit_uncharged():
    from meiscope.model.tdvae import ELBOTerms
    from meiscope.reference.train import training_loss

    kl = torch.tensor([[0.0, 0.5], [0.0, 1.5]])  # unit 0 silent, unit 1 at 1 nat on average
    terms = ELBOTerms(log_lik=torch.tensor([-10.0, -10.0]), kl_z1=torch.tensor([2.0, 2.0]), kl_z2_units=kl)
    assert float(training_loss(terms, 1.0, 0.0)) == pytest.approx(12.0 + 1.0)
    assert float(training_loss(terms, 1.0, 0.2)) == pytest.approx(12.0 + 0.2 + 1.0)  # the silent unit at the floor
    assert float(training_loss(terms, 0.5, 0.2)) == pytest.approx(12.0 + 0.5 * 1.2)
    cfg = TrainConfig(steps=100, z2_free_bits=0.2, z2_free_bits_until=0.5)
    assert cfg.free_bits(0) == 0.2 and cfg.free_bits(25) == pytest.approx(0.1) and cfg.free_bits(60) == 0.0


def test_bfloat16_training_raises_the_elbo_with_float32_sums(tmp_path, data_root):
    """precision bfloat16: the nets' products under autocast, the ELBO's terms still float32."""
    out = train(tiny_config(precision="bfloat16"), tmp_path / "bf16", progress=False)
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[-1]["heldout_elbo"]) > float(rows[0]["heldout_elbo"])
    model = load_model(out)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the master weights stay float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = model.elbo_terms(torch.randn(4, 1600), generator=torch.Generator().manual_seed(0))
    assert terms.log_lik.dtype == terms.kl_z1.dtype == terms.kl_z2_units.dtype == torch.float32


@pytest.mark.parametrize("minutes, saves", [(0.0, [10, 20, 30, 40, 40]), (1e6, [40])])
def test_checkpoints_are_spaced_in_steps_and_in_time(tmp_path, data_root, monkeypatch, minutes, saves):
    # every checkpoint_every steps, but not more often than checkpoint_minutes (a GPU would otherwise write its
    # 400 MB state every few seconds); the end is always saved
    import meiscope.reference.train as training

    steps, real = [], training.save_training_state

    def counted(folder, model, opt, gen, noise, step, *rest):
        steps.append(step)
        real(folder, model, opt, gen, noise, step, *rest)

    monkeypatch.setattr(training, "save_training_state", counted)
    train(tiny_config(checkpoint_minutes=minutes), tmp_path / "run", progress=False)
    assert steps == saves
