"""Turn a training run into the shipped checkpoint: float16 shards, then the card measured on exactly
those (rounded) weights, so the card's numbers are the shipped model's numbers."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..data.patches import PatchSetParams, build_natural
from ..train import METRICS_FILE, SESSIONS_FILE, load_training_state
from .card import read_card, write_card, write_figures
from .checkpoint import load_model, save_sharded
from .evaluate import evaluate
from .tdvae import TDVAE


def machine_description(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{cpu}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def train_command(config: dict) -> str:
    return (f"meiscope train --steps {config['steps']} --batch {config['batch']} --lr {config['lr']} "
            f"--lr-decay-start {config['lr_decay_start']} --lr-final-frac {config['lr_final_frac']} "
            f"--beta-start {config['beta_start']} --beta-warmup-frac {config['beta_warmup_frac']} "
            f"--clip-norm {config['clip_norm']} --seed {config['seed']} --n-train {config['data']['n_train']}"
            + (f" --max-minutes {config['max_minutes']}" if config.get("max_minutes") else "")
            + (f" --init-from {config['init_from']}" if config.get("init_from") else ""))


def read_sessions(train_dir: Path) -> list[dict]:
    path = train_dir / SESSIONS_FILE
    if not path.is_file():
        return []
    return [{k: v for k, v in json.loads(line).items() if k != "config"} for line in path.read_text().splitlines()]


def earlier_stages(init_from: str | None) -> list[dict]:
    """The training stages behind the weights a run started from (--init-from), oldest first, read from
    that checkpoint's card; empty for a run from scratch or a start without a card."""
    if not init_from:
        return []
    try:
        card = read_card(Path(init_from))
        t = card["training"]
    except (FileNotFoundError, KeyError, ValueError):
        return []
    stage = {k: t.get(k) for k in ("steps", "wall_s", "device", "machine", "command", "sessions")}
    return [*t.get("earlier_stages", []), {**stage, "released": card.get("released")}]


def release(train_dir: Path, out: Path, interim_note: str | None = None, progress: bool = True) -> dict:
    state = load_training_state(train_dir)
    meta = state["meta"]
    config = meta["config"]
    earlier = earlier_stages(config.get("init_from"))  # before the shards (maybe the same folder) are replaced
    model = TDVAE()
    model.load_state_dict(state["model"])
    save_sharded(model, out)
    shipped = load_model(out)
    data = build_natural(PatchSetParams(**config["data"]), progress=progress)
    metrics = evaluate(shipped, data.train, data.heldout)
    figures = write_figures(shipped, data.heldout, metrics, Path(train_dir) / METRICS_FILE, Path(out))
    device = config["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    card = {
        "model": "TDVAE-40",
        "released": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_parameters": sum(p.numel() for p in shipped.parameters()),
        "weights_dtype": "float16",
        "training": {
            "steps": meta["step"],
            "wall_s": meta["wall_s"],
            "device": device,
            "machine": machine_description(device),
            "config": config,
            "command": train_command(config),
            "interim_note": interim_note,
            "sessions": read_sessions(Path(train_dir)),
            "earlier_stages": earlier,
            "total_steps": meta["step"] + sum(st["steps"] for st in earlier),
            "total_wall_s": meta["wall_s"] + sum(st["wall_s"] for st in earlier),
        },
        "data": {k: data.meta[k] for k in ("params", "scale", "train_sha256", "heldout_sha256", "sources")},
        "metrics": metrics,
        "figures": figures,
    }
    write_card(out, card)
    return card
