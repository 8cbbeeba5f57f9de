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
from safetensors.torch import load_file
from tqdm import tqdm

from .data.patches import PatchSetParams, build_natural
from .model.checkpoint import atomic_save_file, atomic_write_text, load_model
from .model.evaluate import elbo_terms_mean
from .model.tdvae import TDVAE, as_batch

STATE_FILE = "state.safetensors"
STATE_META = "state.json"
METRICS_FILE = "metrics.csv"
SESSIONS_FILE = "sessions.jsonl"
METRIC_FIELDS = ["step", "wall_s", "beta", "lr", "elbo", "log_lik", "kl_z1", "kl_z2", "grad_norm",
                 "patches_per_s", "heldout_elbo"]


@dataclass
class TrainConfig:
    steps: int = 36_000
    batch: int = 512
    lr: float = 2e-4
    lr_decay_start: float = 0.25  # fraction of the steps after which lr falls linearly ...
    lr_final_frac: float = 0.05  # ... to this fraction of lr at the last step
    beta_start: float = 0.1  # weight of KL(q(z2|x) || N(0, I)) at step 0 ...
    beta_warmup_frac: float = 0.4  # ... rising linearly to 1 over this fraction of the steps
    clip_norm: float = 1000.0
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 500
    eval_every: int = 500
    eval_patches: int = 2048
    max_minutes: float | None = None  # stop (with a checkpoint) after this much wall time
    init_from: str | None = None  # start from these weights (a checkpoint folder) with a fresh optimiser
    data: PatchSetParams = field(default_factory=PatchSetParams)

    def lr_at(self, step: int) -> float:
        start = self.lr_decay_start * self.steps
        if step <= start:
            return self.lr
        progress = min(1.0, (step - start) / max(1.0, self.steps - start))
        return self.lr * (1.0 - (1.0 - self.lr_final_frac) * progress)

    def beta(self, step: int) -> float:
        warm = max(1, int(self.beta_warmup_frac * self.steps))
        return min(1.0, self.beta_start + (1.0 - self.beta_start) * step / warm)


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
    meta = {"step": step, "adam_step": adam_step, "wall_s": wall_s, "config": asdict(config)}
    atomic_write_text(folder / STATE_META, json.dumps(meta, indent=2))


def load_training_state(folder: Path) -> dict:
    """{'model': state dict, 'adam': {name: (exp_avg, exp_avg_sq)}, 'rng': {name: ByteTensor}, 'meta': dict}."""
    tensors = load_file(str(Path(folder) / STATE_FILE))
    meta = json.loads((Path(folder) / STATE_META).read_text())
    model = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    adam = {k.removeprefix("adam.exp_avg."): (v, tensors[f"adam.exp_avg_sq.{k.removeprefix('adam.exp_avg.')}"])
            for k, v in tensors.items() if k.startswith("adam.exp_avg.")}
    rng = {k.removeprefix("rng."): v for k, v in tensors.items() if k.startswith("rng.")}
    return {"model": model, "adam": adam, "rng": rng, "meta": meta}


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


def train(config: TrainConfig, out: Path, resume: bool = True, progress: bool = True) -> Path:
    """Train (or resume training) into `out`; returns the folder holding state.safetensors."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    resuming = resume and (out / STATE_FILE).is_file()
    model = TDVAE()
    if config.init_from and not resuming:  # before the data build, so a bad folder fails at once
        model.load_state_dict(load_model(config.init_from).state_dict())
    model = model.to(device)
    data = build_natural(config.data, progress=progress)
    train_x = as_batch(data.train)  # a copy in RAM: random batches from a memory-mapped file would be slow
    eval_x = as_batch(data.heldout[: config.eval_patches]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    gen = torch.Generator().manual_seed(config.seed)  # batch indices
    noise = torch.Generator(device=device).manual_seed(config.seed + 1)  # the ELBO's latent samples
    step, wall_prev = 0, 0.0
    if resuming:
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
        step, wall_prev = st["meta"]["step"], st["meta"]["wall_s"]
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2))
    log_session(out, step, config)
    new_log = not (out / METRICS_FILE).is_file() or step == 0
    log_file = open(out / METRICS_FILE, "w" if new_log else "a", newline="")
    log = csv.DictWriter(log_file, fieldnames=METRIC_FIELDS)
    if new_log:
        log.writeheader()

    t0 = time.perf_counter()
    deadline = None if config.max_minutes is None else t0 + 60 * config.max_minutes
    bar = tqdm(total=config.steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True)
    t_last, step_last = t0, step
    try:
        while step < config.steps:
            idx = torch.randint(len(train_x), (config.batch,), generator=gen)
            x = train_x[idx].to(device, non_blocking=True)
            beta = config.beta(step)
            lr = config.lr_at(step)
            for group in opt.param_groups:
                group["lr"] = lr
            terms = model.elbo_terms(x, generator=noise)
            loss = -terms.elbo(beta).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm))
            if math.isfinite(grad_norm):  # a rare non-finite batch is skipped, not applied
                opt.step()
            step += 1
            if step % 50 == 0 or step == config.steps:
                now = time.perf_counter()
                rate = config.batch * (step - step_last) / (now - t_last)
                t_last, step_last = now, step
                row = {"step": step, "wall_s": round(wall_prev + now - t0, 2), "beta": round(beta, 4),
                       "lr": lr, "elbo": terms.elbo().mean().item(), "log_lik": terms.log_lik.mean().item(),
                       "kl_z1": terms.kl_z1.mean().item(), "kl_z2": terms.kl_z2.mean().item(),
                       "grad_norm": grad_norm, "patches_per_s": round(rate, 1), "heldout_elbo": ""}
                if step % config.eval_every == 0 or step == config.steps:
                    model.eval()
                    row["heldout_elbo"] = elbo_terms_mean(model, eval_x)["elbo"]
                    model.train()
                log.writerow(row)
                log_file.flush()
                bar.set_postfix(elbo=f"{row['elbo']:.1f}", kl1=f"{row['kl_z1']:.1f}", kl2=f"{row['kl_z2']:.2f}",
                                beta=f"{beta:.2f}", pps=f"{rate:.0f}")
            bar.update(1)
            if step % config.checkpoint_every == 0:
                save_training_state(out, model, opt, gen, noise, step, config, wall_prev + time.perf_counter() - t0)
            if deadline is not None and time.perf_counter() > deadline:
                break
    finally:
        bar.close()
        log_file.close()
        save_training_state(out, model, opt, gen, noise, step, config, wall_prev + time.perf_counter() - t0)
    return out
