"""The reference model's recipe, from an empty data folder to a released checkpoint, in stages:

1. dictionary: W from whitened training patches by a sparse-coding method (dictionary.py);
2. inference: nets a-e on the ELBO with W frozen, started from the dictionary's pass-through, the z2 KL
   warmed up and each z2 unit given free bits against posterior collapse;
3. joint: every weight together at a lower learning rate until the time budget, free bits falling to 0;
4. release: float16 shards and the model card.

Each stage lives in its own folder under `out` and is skipped when complete, so an interrupted recipe
resumes where it stopped (a training stage from its last checkpoint).
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..data.patches import PatchSetParams, build_natural, default_data_root, params_key
from .machine import machine_description
from ..model.checkpoint import atomic_write_text
from .dictionary import (DICTIONARY_META, Dictionary, dictionary_command, fit_dictionary,
                               patches_for_dictionary)
from .train import STATE_META, TrainConfig, train

DICTIONARY_DIR, INFERENCE_DIR, JOINT_DIR = "1-dictionary", "2-inference", "3-joint"
RECIPE_FILE = "recipe.json"
RELEASE_RESERVE_MIN = 4.0  # minutes of the budget kept for the release's measurements


@dataclass
class RecipeConfig:
    minutes: float = 150.0  # the whole recipe, data build to release
    dictionary: str = "ica"
    dictionary_patches: int = 40_000
    dictionary_atoms: int | None = None  # ica: the signal dimensions; sparse_coding: 1800
    inference_minutes: float = 20.0
    batch: int = 256
    inference_lr: float = 2e-4
    joint_lr: float = 1e-4
    free_bits: float = 0.1  # nats per z2 unit, through the inference stage and the first part of the joint one
    free_bits_until: float = 0.6  # the share of the joint stage over which the free bits fall to 0
    free_bits_per: str = "unit"  # or "layer": one floor on the layer's KL (free_bits x 250)
    encoder_start: str = "energy"  # energy, signed or random (reference/dictionary.py initialise_model)
    seed: int = 0
    device: str = "auto"
    max_steps: int | None = None  # a cap on each training stage's steps besides its time (small test runs)
    data: PatchSetParams = field(default_factory=PatchSetParams)

    def command(self, out: Path, release_to: Path | None) -> str:
        default = RecipeConfig()
        flags = [f"--{name.replace('_', '-')} {value}" for name, value in asdict(self).items()
                 if name != "data" and value != getattr(default, name)]
        if self.data.n_train != default.data.n_train:
            flags.append(f"--n-train {self.data.n_train}")
        if release_to is not None:
            flags.append(f"--release {release_to}")
        return shlex.join(["meiscope", "recipe", "--out", str(out)]) + "".join(" " + f for f in flags)


def stage_done(folder: Path, config: TrainConfig) -> bool:
    """Whether a training stage has spent its steps or its time budget (then it is not run again)."""
    meta = folder / STATE_META
    if not meta.is_file():
        return False
    state = json.loads(meta.read_text())
    return state["step"] >= config.steps or state["wall_s"] >= 60.0 * config.max_minutes


def stage_dictionary(config: RecipeConfig, out: Path, data, progress: bool) -> Path:
    folder = out / DICTIONARY_DIR
    if (folder / DICTIONARY_META).is_file():
        return folder
    patches = patches_for_dictionary(data.train, config.dictionary_patches)
    size = {} if config.dictionary_atoms is None else (
        {"n_components": config.dictionary_atoms} if config.dictionary == "ica" else {"n_atoms": config.dictionary_atoms})
    dictionary = fit_dictionary(config.dictionary, patches, seed=config.seed, progress=progress, **size)
    dictionary.info.update(machine=machine_description("cpu"), command=dictionary_command(
        config.dictionary, config.dictionary_patches, config.seed, folder))
    dictionary.save(folder)
    return folder


def stage_configs(config: RecipeConfig, out: Path, spent_minutes: float) -> tuple[TrainConfig, TrainConfig]:
    """The inference and joint stages' training configs; the joint stage gets what the budget has left."""
    common = dict(batch=config.batch, seed=config.seed, device=config.device, data=config.data,
                  steps=config.max_steps or 10_000_000, z2_free_bits=config.free_bits,
                  z2_free_bits_per=config.free_bits_per)
    inference = TrainConfig(lr=config.inference_lr, lr_decay_start=1.0, beta_start=0.1, beta_warmup_frac=0.5,
                            z2_free_bits_until=1e9, freeze_decoder=True, max_minutes=config.inference_minutes,
                            init_dictionary=str(out / DICTIONARY_DIR), encoder_start=config.encoder_start, **common)
    joint_minutes = max(1.0, config.minutes - spent_minutes - config.inference_minutes - RELEASE_RESERVE_MIN)
    joint = TrainConfig(lr=config.joint_lr, lr_decay_start=0.5, lr_final_frac=0.1, beta_start=1.0,
                        beta_warmup_frac=0.0, z2_free_bits_until=config.free_bits_until,
                        max_minutes=round(joint_minutes, 1), init_from=str(out / INFERENCE_DIR), **common)
    return inference, joint


def run_recipe(config: RecipeConfig, out: Path, release_to: Path | None = None, progress: bool = True) -> dict:
    """Run (or resume) every stage; returns the recipe record (and the card when released)."""
    from .release import release

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / RECIPE_FILE
    record = json.loads(record_path.read_text()) if record_path.is_file() else {"stages": {}}
    record.update(config=asdict(config), command=config.command(out, release_to))

    def mark(stage: str, seconds: float) -> None:
        """A stage's own time: what it took when it ran (a skipped stage keeps its earlier record)."""
        record["stages"][stage] = {"seconds": seconds}
        atomic_write_text(record_path, json.dumps(record, indent=2))

    t0 = time.perf_counter()
    cached = (default_data_root() / f"natural-{params_key(config.data)}" / "meta.json").is_file()
    data = build_natural(config.data, progress=progress)
    if not cached or "data" not in record["stages"]:
        mark("data", time.perf_counter() - t0)
    stage_dictionary(config, out, data, progress)
    mark("dictionary", Dictionary.load(out / DICTIONARY_DIR).seconds)
    spent = (record["stages"]["data"]["seconds"] + record["stages"]["dictionary"]["seconds"]) / 60.0
    joint_path = out / JOINT_DIR / "config.json"
    inference, joint = stage_configs(config, out, spent)
    if joint_path.is_file():  # a resumed recipe keeps the joint budget it set when that stage began
        joint.max_minutes = json.loads(joint_path.read_text())["max_minutes"]
    for name, folder, stage in (("inference", INFERENCE_DIR, inference), ("joint", JOINT_DIR, joint)):
        if not stage_done(out / folder, stage):
            train(stage, out / folder, progress=progress)
        mark(name, json.loads((out / folder / STATE_META).read_text())["wall_s"])
    if release_to is not None:
        t0 = time.perf_counter()
        card = release(out / JOINT_DIR, Path(release_to), progress=progress, recipe=record)
        mark("release", card["training"]["recipe"]["stages"]["release"]["seconds"])
        record["card"] = card
    return record
