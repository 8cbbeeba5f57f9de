"""A release that started from an earlier checkpoint (--init-from) keeps that checkpoint's training history."""

import json

from meiscope.presentation.card import read_card, render_markdown
from meiscope.model.checkpoint import DEFAULT_MODEL_DIR
from meiscope.reference.release import earlier_stages


def _card_with(tmp_path, name, training):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model_card.json").write_text(json.dumps({"released": f"{name}-date", "training": training}))
    return str(folder)


def _training(steps, command, **extra):
    return {"steps": steps, "wall_s": 60.0 * steps, "device": "cpu", "machine": "m", "command": command,
            "sessions": [{"start_step": 0, "change": "start"}], **extra}


def test_earlier_stages_chain_oldest_first(tmp_path):
    first = _card_with(tmp_path, "first", _training(10, "train A"))
    second = _card_with(tmp_path, "second", _training(5, "train B", earlier_stages=earlier_stages({"init_from": first})))
    stages = earlier_stages({"init_from": second})
    assert [(s["steps"], s["command"], s["released"]) for s in stages] == [
        (10, "train A", "first-date"), (5, "train B", "second-date")]
    assert earlier_stages({}) == [] and earlier_stages({"init_from": str(tmp_path / "missing")}) == []


def test_the_card_lists_earlier_stages_and_their_commands():
    card = read_card(DEFAULT_MODEL_DIR)
    t = card["training"]
    earlier = {**_training(7, "meiscope train --first"), "released": "then"}
    t = {**t, "earlier_stages": [earlier], "total_steps": t["steps"] + 7, "total_wall_s": t["wall_s"] + 420.0,
         "recipe": None}
    text = render_markdown({**card, "training": t})
    assert "Started from an earlier release (then): 7 steps" in text
    assert f"In all: {t['steps'] + 7:,} steps" in text
    assert "Reproduce: `meiscope train --first`, then `" + t["command"] + "`, then `meiscope release" in text
