"""The staged recipe on a small set: every stage runs and leaves its record, an interrupted recipe resumes
without redoing finished stages, and the card names every stage and the one command that reproduces them."""

import json

import pytest
import torch
from typer.testing import CliRunner

from meiscope.reference import recipe as recipe_module
from meiscope.cli import app
from meiscope.data.patches import PatchSetParams
from meiscope.presentation.card import render_markdown, read_card
from meiscope.model.checkpoint import DEFAULT_MODEL_DIR
from meiscope.reference.dictionary import Dictionary
from meiscope.reference.release import earlier_stages
from meiscope.reference.recipe import DICTIONARY_DIR, INFERENCE_DIR, JOINT_DIR, RecipeConfig, run_recipe
from meiscope.reference.train import load_training_state

TINY = PatchSetParams(n_train=2048, n_heldout=1024, seed=0)


def tiny_recipe(**kw) -> RecipeConfig:
    base = dict(minutes=30.0, dictionary_patches=2000, dictionary_atoms=24, inference_minutes=10.0, batch=16,
                max_steps=4, device="cpu", data=TINY)
    return RecipeConfig(**{**base, **kw})


def test_every_stage_runs_and_records_itself(tmp_path, data_root):
    out = tmp_path / "recipe"
    record = run_recipe(tiny_recipe(), out, progress=False)
    assert set(record["stages"]) == {"data", "dictionary", "inference", "joint"}
    assert json.loads((out / "recipe.json").read_text())["command"] == record["command"]
    d = Dictionary.load(out / DICTIONARY_DIR)
    assert d.method == "ica" and d.n_atoms == 24 and "command" in d.info and "machine" in d.info
    assert record["stages"]["dictionary"]["seconds"] == d.seconds  # each stage's own time
    inference, joint = load_training_state(out / INFERENCE_DIR), load_training_state(out / JOINT_DIR)
    assert inference["meta"]["step"] == joint["meta"]["step"] == 4
    assert inference["meta"]["config"]["freeze_decoder"] and not joint["meta"]["config"]["freeze_decoder"]
    # W stayed the dictionary's through the inference stage, then trained with the rest
    atoms = torch.as_tensor(d.atoms, dtype=torch.float32)
    torch.testing.assert_close(inference["model"]["decoder.weight"][:, :24], atoms)
    assert not torch.equal(joint["model"]["decoder.weight"][:, :24], atoms)
    # the joint stage's record reaches back through both earlier stages
    stages = earlier_stages(joint["meta"]["config"])
    assert [s["stage"].split(" ")[0] for s in stages] == ["dictionary", "inference"]
    assert "--init-dictionary" in stages[1]["command"] and "--freeze-decoder" in stages[1]["command"]


def test_an_interrupted_recipe_resumes_where_it_stopped(tmp_path, data_root, monkeypatch):
    out = tmp_path / "recipe"
    real_train = recipe_module.train

    def killed_in_joint(config, folder, progress=True):
        if folder.name == JOINT_DIR:
            raise KeyboardInterrupt
        return real_train(config, folder, progress=progress)

    monkeypatch.setattr(recipe_module, "train", killed_in_joint)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(tiny_recipe(), out, progress=False)
    first_inference = (out / INFERENCE_DIR / "state.safetensors").stat().st_mtime_ns
    monkeypatch.setattr(recipe_module, "train", real_train)
    monkeypatch.setattr(recipe_module, "fit_dictionary", lambda *a, **k: pytest.fail("the dictionary was refitted"))
    run_recipe(tiny_recipe(), out, progress=False)
    assert (out / INFERENCE_DIR / "state.safetensors").stat().st_mtime_ns == first_inference
    assert load_training_state(out / JOINT_DIR)["meta"]["step"] == 4


def test_the_card_names_each_stage_and_the_recipe_command():
    card = read_card(DEFAULT_MODEL_DIR)
    t = card["training"]
    stages = [{"stage": "dictionary (ica, 844 atoms from 40,000 patches)", "steps": 0, "wall_s": 600.0,
               "machine": "m", "command": "meiscope dictionary --method ica"},
              {"stage": "inference (W frozen)", "steps": 300, "wall_s": 900.0, "machine": "m",
               "command": "meiscope train --freeze-decoder"}]
    recipe = {"command": "meiscope recipe --out runs/recipe --minutes 90",
              "stages": {"data": {"seconds": 60.0}, "dictionary": {"seconds": 600.0}, "inference": {"seconds": 900.0},
                         "joint": {"seconds": 3600.0}, "release": {"seconds": 240.0}}}
    t = {**t, "earlier_stages": stages, "recipe": recipe, "total_steps": t["steps"] + 300,
         "total_wall_s": t["wall_s"] + 1500.0}
    text = render_markdown({**card, "training": t})
    assert "Stage dictionary (ica, 844 atoms from 40,000 patches): 10.0 minutes on m" in text
    assert "Stage inference (W frozen): 300 steps in 15.0 minutes" in text
    assert "Reproduce: `meiscope recipe --out runs/recipe --minutes 90` runs every stage" in text
    assert "Here it took 90 minutes (data 1.0, dictionary 10.0, inference 15.0, joint 60.0, release 4.0 minutes)" in text


def test_recipe_usage_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(app, ["recipe", "--out", str(tmp_path), "--minutes", "10", "--inference-minutes", "20"])
    assert result.exit_code == 2 and "leaves nothing" in result.output
    result = CliRunner().invoke(app, ["recipe", "--out", str(tmp_path), "--dictionary", "pca"])
    assert result.exit_code == 2 and "--dictionary must be one of" in result.output
