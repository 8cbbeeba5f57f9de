"""Turn a training run (or imported weights, importers/tf_import.py) into a released checkpoint: float16 shards,
then the card measured on exactly those (rounded) weights, so the card's numbers are the shipped model's numbers."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..data.patches import PATCH as DATA_PATCH
from ..data.patches import PatchSetParams, build_natural
from .machine import machine_description
from .train import METRICS_FILE, SESSIONS_FILE, STATE_META, TrainConfig, load_training_state
from ..presentation.card import read_card, write_card, write_figures
from ..model.checkpoint import load_model, save_sharded
from .dictionary import DICTIONARY_META
from .evaluate import COV_PATCHES, evaluate
from ..model.tdvae import TDVAE


def train_command(config: dict) -> str:
    default = TrainConfig()
    optional = [(f" --max-minutes {config['max_minutes']}" if config.get("max_minutes") else ""),
                (f" --init-from {config['init_from']}" if config.get("init_from") else ""),
                (f" --init-dictionary {config['init_dictionary']}" if config.get("init_dictionary") else ""),
                (" --freeze-decoder" if config.get("freeze_decoder") else "")]
    if config.get("z2_free_bits", default.z2_free_bits) != default.z2_free_bits:
        optional.append(f" --z2-free-bits {config['z2_free_bits']} --z2-free-bits-until {config['z2_free_bits_until']:g}")
        if config.get("z2_free_bits_per", "unit") != "unit":
            optional.append(f" --z2-free-bits-per {config['z2_free_bits_per']}")
    if config.get("init_dictionary") and config.get("encoder_start", "energy") != "energy":
        optional.append(f" --encoder-start {config['encoder_start']}")
    return (f"meiscope train --steps {config['steps']} --batch {config['batch']} --lr {config['lr']} "
            f"--lr-decay-start {config['lr_decay_start']} --lr-final-frac {config['lr_final_frac']} "
            f"--beta-start {config['beta_start']} --beta-warmup-frac {config['beta_warmup_frac']} "
            f"--clip-norm {config['clip_norm']} --seed {config['seed']} --n-train {config['data']['n_train']}"
            + "".join(optional))


def read_sessions(train_dir: Path) -> list[dict]:
    path = train_dir / SESSIONS_FILE
    if not path.is_file():
        return []
    return [{k: v for k, v in json.loads(line).items() if k != "config"} for line in path.read_text().splitlines()]


def earlier_stages(config: dict) -> list[dict]:
    """The stages behind the weights a training run started from, oldest first: a dictionary
    (init_dictionary), a training folder of an earlier stage, or a released checkpoint's card (init_from);
    empty for a run from scratch or a start without a record."""
    if config.get("init_dictionary"):
        folder = Path(config["init_dictionary"])
        meta = json.loads((folder / DICTIONARY_META).read_text())
        return [{"stage": f"dictionary ({meta['method']}, {meta['n_atoms']} atoms from {meta['n_patches']:,} patches)",
                 "steps": 0, "wall_s": meta["seconds"], "device": "cpu", "machine": meta.get("machine"),
                 "command": meta.get("command")}]
    if not config.get("init_from"):
        return []
    folder = Path(config["init_from"])
    if (folder / STATE_META).is_file() and not (folder / "manifest.json").is_file():
        meta = json.loads((folder / STATE_META).read_text())
        c = meta["config"]
        name = "inference (W frozen)" if c.get("freeze_decoder") else "training"
        return [*earlier_stages(c), {"stage": name, "steps": meta["step"], "wall_s": meta["wall_s"],
                                     "device": c["device"], "machine": meta.get("machine"),
                                     "command": train_command(c), "sessions": read_sessions(folder),
                                     "folder": str(folder)}]
    try:
        card = read_card(folder)
        t = card["training"]
    except (FileNotFoundError, KeyError, ValueError):
        return []
    stage = {k: t.get(k) for k in ("steps", "wall_s", "device", "machine", "command", "sessions")}
    return [*t.get("earlier_stages", []), {**stage, "released": card.get("released")}]


def centre_crop(patches: np.ndarray, side: int) -> np.ndarray:
    """The central side x side pixels of each (N, 40, 40) patch (the patches themselves when side is 40): a
    smaller model's input, cut from the same whitened images at the same scale."""
    full = patches.shape[-1]
    if side > full:
        raise ValueError(f"the model takes {side}x{side} patches, larger than meiscope's {full}x{full} data")
    if side == full:
        return patches
    start = (full - side) // 2
    return np.ascontiguousarray(patches[:, start : start + side, start : start + side])


def measure_release(model: TDVAE, out: Path, data_params: PatchSetParams, training: dict,
                    curves: list[tuple[str, Path]], progress: bool = True, provenance: str | None = None) -> dict:
    """Write float16 shards of `model` into `out`, measure the card on exactly those weights (held-out patches
    of `data_params`) and draw its figures; returns the card, which the caller writes with write_card.

    training: the card's record of where the weights come from; curves: (stage, metrics.csv) of the training
    curves figure; provenance: a sentence opening the card when the weights were not trained by meiscope."""
    save_sharded(model, out)
    shipped = load_model(out)
    data = build_natural(data_params, progress=progress)
    side = shipped.patch
    heldout = centre_crop(data.heldout, side)
    metrics = evaluate(shipped, centre_crop(data.train[:COV_PATCHES], side), heldout, scale=data.meta["scale"])
    figures = write_figures(shipped, heldout, metrics, curves, Path(out))
    data_record = {k: data.meta[k] for k in ("params", "scale", "train_sha256", "heldout_sha256", "sources")}
    if side != DATA_PATCH:
        data_record["crop"] = side  # measured on centre crops of the 40x40 patches
    card = {
        "model": shipped.name,
        "released": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_parameters": sum(p.numel() for p in shipped.parameters()),
        "weights_dtype": "float16",
        "sizes": shipped.sizes,
        **({"provenance": provenance} if provenance else {}),
        "training": training,
        "data": data_record,
        "metrics": metrics,
        "figures": figures,
    }
    return card


TEXTURE_CENSUS_KEYS = ("texture_f", "texture_eta2", "texture_accuracy", "texture_sensitive")


def remeasure(folder: Path, progress: bool = True) -> dict:
    """Measure the card of a released checkpoint again on its shipped weights (nothing is trained, the shards
    are untouched) and rewrite model_card.json, MODEL_CARD.md and the figures. Kept from the old card: where the
    weights come from (training, released, data, provenance), the texture-family record of `meiscope
    texture-units --write-card` and the training-curves figure (its metrics files belong to the training run).
    The data are rebuilt from the card's recipe and must hash as the card says."""
    folder = Path(folder)
    old = read_card(folder)
    model = load_model(folder)
    data = build_natural(PatchSetParams(**old["data"]["params"]), progress=progress)
    if data.meta["heldout_sha256"] != old["data"]["heldout_sha256"]:
        raise ValueError(f"the held-out patches rebuilt from {folder}'s card do not hash as the card says")
    side = model.patch
    heldout = centre_crop(data.heldout, side)
    metrics = evaluate(model, centre_crop(data.train[:COV_PATCHES], side), heldout, scale=data.meta["scale"])
    if "texture" in old["metrics"]:
        metrics["texture"] = old["metrics"]["texture"]
        before = {r["unit"]: r for r in old["metrics"]["units"]["census"]}
        for record in metrics["units"]["census"]:
            record.update({k: before[record["unit"]][k] for k in TEXTURE_CENSUS_KEYS if k in before[record["unit"]]})
    figures = write_figures(model, heldout, metrics, [], folder)
    if "training_curves.png" in old.get("figures", []) and (folder / "figures" / "training_curves.png").is_file():
        figures.append("training_curves.png")
    card = {**old, "remeasured": datetime.now(timezone.utc).isoformat(timespec="seconds"), "metrics": metrics,
            "figures": figures}
    write_card(folder, card)
    return card


def release(train_dir: Path, out: Path, interim_note: str | None = None, progress: bool = True,
            recipe: dict | None = None) -> dict:
    """recipe: the record of the `meiscope recipe` run that trained it (its command reproduces the model)."""
    started = time.perf_counter()
    state = load_training_state(train_dir)
    meta = state["meta"]
    config = meta["config"]
    earlier = earlier_stages(config)  # before the shards (maybe the same folder) are replaced
    model = TDVAE(**meta.get("sizes", {}))
    model.load_state_dict(state["model"])
    curves = [(st["stage"].split(" ")[0], Path(st["folder"]) / METRICS_FILE) for st in earlier if st.get("folder")]
    curves.append(("joint" if recipe is not None else "training", Path(train_dir) / METRICS_FILE))
    device = config["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    training = {
        "steps": meta["step"],
        "wall_s": meta["wall_s"],
        "device": device,
        "machine": meta.get("machine") or machine_description(device),  # the machine that trained it
        "config": config,
        "command": train_command(config),
        "interim_note": interim_note,
        "sessions": read_sessions(Path(train_dir)),
        "earlier_stages": earlier,
        "recipe": None if recipe is None else {"command": recipe["command"], "stages": dict(recipe["stages"])},
        "total_steps": meta["step"] + sum(st["steps"] for st in earlier),
        "stage": "joint" if recipe is not None else "training",
        "total_wall_s": meta["wall_s"] + sum(st["wall_s"] for st in earlier),
    }
    card = measure_release(model, out, PatchSetParams(**config["data"]), training, curves, progress)
    if recipe is not None:  # the release's own time, measurements and figures included
        card["training"]["recipe"]["stages"]["release"] = {"seconds": time.perf_counter() - started}
    write_card(out, card)
    return card
