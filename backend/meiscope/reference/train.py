"""Training TDVAE-40 on the whitened natural patch set: Adam, z2-KL warm-up, gradient clipping,
a metrics CSV, resumable safetensors checkpoints and a progress bar."""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from ..data.patches import PatchSetParams, build_natural
from .machine import machine_description
from ..model.checkpoint import (STATE_FILE, STATE_META, atomic_save_file, atomic_write_text, load_model,
                               load_training_state)
from .evaluate import elbo_terms_mean
from .dictionary import Dictionary, initialise_model
from ..model.tdvae import TDVAE, ELBOTerms, as_batch

METRICS_FILE = "metrics.csv"
FREE_BITS_PER = ("unit", "layer")  # where the z2 free-bits floor applies (training_loss)
SESSIONS_FILE = "sessions.jsonl"
METRIC_FIELDS = ["step", "wall_s", "beta", "lr", "free_bits", "elbo", "log_lik", "kl_z1", "kl_z2", "grad_norm",
                 "patches_per_s", "heldout_elbo", "heldout_z2_units"]


@dataclass
class TrainConfig:
    steps: int = 36_000
    batch: int = 512
    lr: float = 2e-4
    lr_decay_start: float = 0.25  # fraction of the run after which lr falls linearly ...
    lr_final_frac: float = 0.05  # ... to this fraction of lr at the end
    beta_start: float = 0.1  # weight of KL(q(z2|x) || N(0, I)) at the start ...
    beta_warmup_frac: float = 0.4  # ... rising linearly to 1 over this fraction of the run
    z2_free_bits: float = 0.0  # nats per z2 unit that its batch-mean KL is not charged below (against collapse) ...
    z2_free_bits_until: float = 1.0  # ... falling linearly to 0 at this fraction of the run
    z2_free_bits_per: str = "unit"  # or "layer": the floor is on the whole layer's KL (free_bits x units)
    freeze_decoder: bool = False  # keep W and its bias as they start (the recipe's inference stage)
    clip_norm: float = 1000.0
    precision: str = "float32"  # or "bfloat16": the nets' products under autocast, the ELBO's sums in float32
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 500  # steps between resumable checkpoints ...
    checkpoint_minutes: float = 1.0  # ... and at least this much time (on a GPU 500 steps take 3 s; the state, 400 MB)
    eval_every: int = 500
    eval_patches: int = 2048
    max_minutes: float | None = None  # stop (with a checkpoint) when the run's training time reaches this
    init_from: str | None = None  # start from these weights (a checkpoint or training folder), fresh optimiser
    init_dictionary: str | None = None  # or from a dictionary folder (W and the encoder's pass-through)
    encoder_start: str = "energy"  # how a dictionary starts the encoder: energy, signed or random (dictionary.py)
    data: PatchSetParams = field(default_factory=PatchSetParams)

    def progress(self, step: int, wall_s: float = 0.0) -> float:
        """How far through the run: steps done or training time spent, whichever budget is further along,
        so that the schedules finish when a time budget ends the run before its planned steps."""
        by_time = 0.0 if self.max_minutes is None else wall_s / (60.0 * self.max_minutes)
        return min(1.0, max(step / self.steps, by_time))

    def lr_at(self, step: int, wall_s: float = 0.0) -> float:
        p = self.progress(step, wall_s)
        if p <= self.lr_decay_start:
            return self.lr
        frac = (p - self.lr_decay_start) / max(1e-9, 1.0 - self.lr_decay_start)
        return self.lr * (1.0 - (1.0 - self.lr_final_frac) * frac)

    def beta(self, step: int, wall_s: float = 0.0) -> float:
        if self.beta_warmup_frac <= 0:
            return 1.0 if step > 0 else min(1.0, self.beta_start)
        return min(1.0, self.beta_start + (1.0 - self.beta_start) * self.progress(step, wall_s) / self.beta_warmup_frac)

    def free_bits(self, step: int, wall_s: float = 0.0) -> float:
        if self.z2_free_bits <= 0:
            return 0.0
        return self.z2_free_bits * max(0.0, 1.0 - self.progress(step, wall_s) / max(1e-9, self.z2_free_bits_until))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def save_training_state(folder: Path, model: TDVAE, opt: torch.optim.Adam, gen: torch.Generator,
                        noise: torch.Generator, step: int, config: TrainConfig, wall_s: float) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    names = dict(model.named_parameters())
    adam_step = 0
    for name, p in names.items():
        st = opt.state.get(p)
        if st:
            tensors[f"adam.exp_avg.{name}"] = st["exp_avg"].detach().cpu().contiguous()
            tensors[f"adam.exp_avg_sq.{name}"] = st["exp_avg_sq"].detach().cpu().contiguous()
            adam_step = int(st["step"])
    tensors["rng.batches"] = gen.get_state()
    tensors["rng.noise"] = noise.get_state()
    atomic_save_file(tensors, folder / STATE_FILE)
    meta = {"step": step, "adam_step": adam_step, "wall_s": wall_s, "machine": machine_description(str(config.device)),
            "sizes": model.sizes, "config": asdict(config)}
    atomic_write_text(folder / STATE_META, json.dumps(meta, indent=2))


def log_session(out: Path, step: int, config: TrainConfig) -> None:
    """Append where this (re)start begins and what changed from the previous session's config."""
    path = out / SESSIONS_FILE
    sessions = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    previous = sessions[-1]["config"] if sessions else None
    now = asdict(config)
    if previous is None:
        change = "start" if step == 0 else "resumed (no record of the earlier sessions' config)"
    else:
        diffs = [f"{k} {previous.get(k)} -> {v}" for k, v in now.items() if previous.get(k) != v]
        change = "resumed, " + (", ".join(diffs) if diffs else "same config")
    with open(path, "a") as f:
        f.write(json.dumps({"start_step": step, "change": change, "config": now}) + "\n")


def training_loss(terms: ELBOTerms, beta: float, free_bits: float, per: str = "unit") -> Tensor:
    """The negative ELBO of a batch, its z2 KL weighted by beta; with free bits, each z2 unit's batch-mean
    KL is charged as max(KL, free_bits), so no unit gains by falling below it (free bits, Kingma et al. 2016);
    per "layer", the layer's batch-mean KL is charged as max(KL, free_bits x units) instead."""
    if free_bits <= 0:
        return -terms.elbo(beta).mean()
    per_unit = terms.kl_z2_units.mean(0)
    if per == "unit":
        kl_z2 = per_unit.clamp_min(free_bits).sum()
    elif per == "layer":
        kl_z2 = per_unit.sum().clamp_min(free_bits * per_unit.numel())
    else:
        raise ValueError(f"free bits are per 'unit' or 'layer', got {per!r}")
    return -(terms.log_lik - terms.kl_z1).mean() + beta * kl_z2


def heldout_row(model: TDVAE, eval_x: Tensor) -> dict:
    """The metrics row's held-out fields: the ELBO on the evaluation batch and the z2 units above 0.1 nats."""
    model.eval()
    held = elbo_terms_mean(model, eval_x)
    model.train()
    return {"heldout_elbo": held["elbo"], "heldout_z2_units": held["n_z2_above_0.1"]}


def starting_model(config: TrainConfig, resuming: bool) -> TDVAE:
    """The model a run starts from: fresh, a checkpoint's weights (init_from) or a dictionary's atoms
    (init_dictionary); a resumed run's weights are loaded later, over it. Called before the data build, so
    that a bad folder fails at once."""
    model = TDVAE()
    if config.init_from and config.init_dictionary:
        raise ValueError("init_from and init_dictionary are two different starts: give one")
    if config.init_from and not resuming:
        model.load_state_dict(load_model(config.init_from).state_dict())
    if config.init_dictionary and not resuming:
        initialise_model(model, Dictionary.load(Path(config.init_dictionary)), start=config.encoder_start)
    model.decoder.requires_grad_(not config.freeze_decoder)
    return model


def resume_state(out: Path, model: TDVAE, opt: torch.optim.Adam, gen: torch.Generator, noise: torch.Generator,
                 device: torch.device) -> tuple[int, float]:
    """Load the training state in `out` into the model, Adam's moments and both generators; returns the step
    and the wall time already spent."""
    st = load_training_state(out)
    model.load_state_dict(st["model"])
    for name, p in model.named_parameters():
        if name in st["adam"]:
            m, v = st["adam"][name]
            opt.state[p] = {"step": torch.tensor(float(st["meta"]["adam_step"])),
                            "exp_avg": m.to(device), "exp_avg_sq": v.to(device)}
    gen.set_state(st["rng"]["batches"])
    if "noise" in st["rng"]:  # absent in states written before the noise generator was saved
        noise.set_state(st["rng"]["noise"])
    return st["meta"]["step"], st["meta"]["wall_s"]


def open_metrics_log(out: Path, fresh: bool):
    """(file, csv writer) of out/metrics.csv: a new log with its header for a fresh run, else appended to."""
    new_log = fresh or not (out / METRICS_FILE).is_file()
    log_file = open(out / METRICS_FILE, "w" if new_log else "a", newline="")
    log = csv.DictWriter(log_file, fieldnames=METRIC_FIELDS)
    if new_log:
        log.writeheader()
    return log_file, log


def train(config: TrainConfig, out: Path, resume: bool = True, progress: bool = True) -> Path:
    """Train (or resume training) into `out`; returns the folder holding state.safetensors."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    resuming = resume and (out / STATE_FILE).is_file()
    model = starting_model(config, resuming).to(device)
    data = build_natural(config.data, progress=progress)
    train_x = as_batch(data.train)  # a copy in RAM: random batches from a memory-mapped file would be slow
    eval_x = as_batch(data.heldout[: config.eval_patches]).to(device)
    trained = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trained, lr=config.lr, fused=True)
    gen = torch.Generator().manual_seed(config.seed)  # batch indices
    noise = torch.Generator(device=device).manual_seed(config.seed + 1)  # the ELBO's latent samples
    step, wall_prev = 0, 0.0
    if resuming:
        step, wall_prev = resume_state(out, model, opt, gen, noise, device)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2))
    log_session(out, step, config)
    log_file, log = open_metrics_log(out, fresh=step == 0)

    if step == 0:  # where the run starts, for the curves
        log.writerow({"step": 0, "wall_s": 0.0, **heldout_row(model, eval_x)})
    t0 = time.perf_counter()
    deadline = None if config.max_minutes is None else t0 + 60 * config.max_minutes - wall_prev
    bar = tqdm(total=config.steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True)
    t_last, step_last, saved_at = t0, step, t0  # saved_at: the last resumable checkpoint

    def write_row(terms: ELBOTerms, beta: float, lr: float, floor: float, grad_norm: float, held_out: bool) -> None:
        nonlocal t_last, step_last
        now = time.perf_counter()
        rate = config.batch * (step - step_last) / max(now - t_last, 1e-9)
        t_last, step_last = now, step
        row = {"step": step, "wall_s": round(wall_prev + now - t0, 2), "beta": round(beta, 4),
               "lr": lr, "free_bits": floor, "elbo": terms.elbo().mean().item(),
               "log_lik": terms.log_lik.mean().item(), "kl_z1": terms.kl_z1.mean().item(),
               "kl_z2": terms.kl_z2.mean().item(), "grad_norm": grad_norm, "patches_per_s": round(rate, 1),
               "heldout_elbo": "", "heldout_z2_units": ""}
        if held_out:
            row.update(heldout_row(model, eval_x))
        log.writerow(row)
        log_file.flush()
        bar.set_postfix(elbo=f"{row['elbo']:.1f}", kl1=f"{row['kl_z1']:.1f}", kl2=f"{row['kl_z2']:.2f}",
                        beta=f"{beta:.2f}", pps=f"{rate:.0f}")

    def spent() -> bool:  # the run's steps or its time budget
        return step >= config.steps or (deadline is not None and time.perf_counter() >= deadline)

    final = spent()
    try:
        while not final:
            idx = torch.randint(len(train_x), (config.batch,), generator=gen)
            x = train_x[idx].to(device, non_blocking=True)
            wall = wall_prev + time.perf_counter() - t0
            beta, lr, floor = config.beta(step, wall), config.lr_at(step, wall), config.free_bits(step, wall)
            for group in opt.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bfloat16"):
                terms = model.elbo_terms(x, generator=noise)
            loss = training_loss(terms, beta, floor, config.z2_free_bits_per)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(trained, config.clip_norm))
            if math.isfinite(grad_norm):  # a rare non-finite batch is skipped, not applied
                opt.step()
            step += 1
            final = spent()  # decides both the end of the loop and the last row: the end is always evaluated
            if step % 50 == 0 or final:
                write_row(terms, beta, lr, floor, grad_norm, held_out=final or step % config.eval_every == 0)
            bar.update(1)
            now = time.perf_counter()
            if step % config.checkpoint_every == 0 and now - saved_at >= 60 * config.checkpoint_minutes:
                save_training_state(out, model, opt, gen, noise, step, config, wall_prev + now - t0)
                saved_at = now
    finally:
        bar.close()
        log_file.close()
        save_training_state(out, model, opt, gen, noise, step, config, wall_prev + time.perf_counter() - t0)
    return out
