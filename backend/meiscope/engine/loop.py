"""The optimisation loop: `run(model, config)` -> Run.

One step, for all rows (target x sample) and draws at once:
    x = G(theta) -> R_grad marker -> R_pre -> encoder readouts -> objective (+ ELBO, - penalties, + diversity)
    -> gradient w.r.t. theta only -> optimizer step -> R_post on the parameters themselves -> metrics
"""

from __future__ import annotations

import platform
import time
from typing import Callable, Protocol

import numpy as np
import torch
from torch import Tensor

from .. import __version__
from ..model.seam import Explorable
from . import regularisers as R
from . import schedules
from .bank import ObjectiveBank
from .checks import curve_references, row_checks, row_references
from .config import AMConfig
from .fields import dilate, field_masks, reach, receptive_fields
from .model_check import check_config
from .optimizers import build_optimizer, set_lr
from .parameterizations import Latent, as_images, build
from .precision import Reader
from .randomness import RowRandom
from .result import METRICS, Frame, Run


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


# every schedule of the config, in the order in which random schedules draw from one generator
SCHEDULED = ("optimizer.lr", "grad.gamma", "obj.elbo_weight", "obj.tv", "obj.l1", "obj.l2", "diversity.weight",
             "post.blur_sigma", "post.tv_denoise")


def schedule_values(config: AMConfig) -> dict[str, np.ndarray]:
    """Each scheduled option's value at every step, by dotted name."""
    rng = np.random.default_rng([config.seed, 7])
    out = {}
    for name in SCHEDULED:
        section, field = name.split(".")
        out[name] = schedules.values(getattr(getattr(config, section), field), config.steps, rng)
    return out


def _pre(x: Tensor, config: AMConfig, gamma: float, rand: RowRandom, draws: int, mask: Tensor | None) -> Tensor:
    """The gradient filter's marker (kept inside `mask`, the receptive fields), then R_pre (jitter, zoom,
    normalise): what the encoder sees."""
    pre = config.pre
    x_act = R.filter_gradient(x, gamma, mask)
    shift = pre.jitter_pixels(*x.shape[-2:])
    if shift:
        x_act = R.jitter(x_act, rand.integers(-shift, shift + 1, draws, 2).reshape(-1, 2))
    if pre.scale:
        x_act = R.zoom(x_act, rand.uniform(draws, low=1 - pre.scale, high=1 + pre.scale).reshape(-1))
    if pre.normalise:
        x_act = R.normalise(x_act)
    return x_act


def _penalised(objective: Tensor, x: Tensor, sched: dict[str, np.ndarray], step: int) -> Tensor:
    """R_obj's penalties (TV, L1, L2), subtracted where their weight is not zero."""
    for name, penalty in (("obj.tv", R.total_variation), ("obj.l1", R.l1), ("obj.l2", R.l2)):
        if sched[name][step] > 0:
            objective = objective - float(sched[name][step]) * penalty(x)
    return objective


class Recorder:
    """Metrics per step, each row's best input (a copy), snapshots and frames for `on_step`."""

    def __init__(self, rows: int, device: torch.device, config: AMConfig, param,
                 on_step: Callable[[Frame], None] | None, input_shape: tuple[int, int, int]) -> None:
        self.history: dict[str, list[Tensor]] = {name: [] for name in METRICS}
        self.best_objective = torch.full((rows,), float("-inf"), device=device)
        self.best_images = torch.zeros(rows, *input_shape, device=device)
        self.input_shape = input_shape
        self.best_step = torch.zeros(rows, dtype=torch.long, device=device)
        self.snapshots: list[Tensor] = []
        self.snapshot_steps: list[int] = []
        self.config, self.param, self.on_step, self.rows = config, param, on_step, rows

    @property
    def steps_done(self) -> int:
        return len(self.history["activation"])

    def record(self, step: int, current: Tensor, values: dict[str, Tensor]) -> None:
        for name, value in values.items():
            self.history[name].append(value)
        objective = values["objective"]
        improved = objective > self.best_objective
        self.best_objective = torch.where(improved, objective, self.best_objective)
        self.best_images = torch.where(improved.view(-1, 1, 1, 1), current, self.best_images)
        self.best_step = torch.where(improved, step, self.best_step)
        if step % self.config.snapshot_every == 0:
            self.snapshot(step, current.clone())

    def snapshot(self, step: int, image: Tensor) -> None:
        """Keep `image` (a tensor nobody changes later) and hand a frame to on_step; the frame holds copies, so
        a consumer on another thread may keep it."""
        self.snapshots.append(image)
        self.snapshot_steps.append(step)
        if self.on_step is not None and self.steps_done:
            last = {k: v[-1].tolist() for k, v in self.history.items()}
            self.on_step(Frame(step=step, steps=self.config.steps, metrics=last, images=as_images(image),
                               arrays={k: v.copy() for k, v in self.param.arrays().items()}))

    def result(self, final: Tensor, status: str, started: float, device: torch.device, model: Explorable) -> Run:
        rows, config = self.rows, self.config
        metrics = {k: (torch.stack(v).cpu().numpy() if v else np.zeros((0, rows), np.float32))
                   for k, v in self.history.items()}
        snaps = self.snapshots
        return Run(
            config=config,
            images=as_images(final),
            best_images=as_images(self.best_images),
            best_step=self.best_step.cpu().numpy(),
            metrics=metrics,
            arrays=self.param.arrays(),
            snapshots=np.stack([as_images(s) for s in snaps]) if snaps else np.zeros((0, rows, *as_images(
                self.best_images[:1]).shape[1:]), np.float32),
            snapshot_steps=np.array(self.snapshot_steps, dtype=np.int64),
            rows=[{"unit": key, "sample": s} for key in config.target_keys() for s in range(config.samples)],
            info={"status": status, "steps_done": self.steps_done, "wall_s": round(time.perf_counter() - started, 3),
                  "device": str(device), "torch": torch.__version__, "machine": platform.machine(),
                  "meiscope": __version__, "model": dict(model.source) or {"name": model.name},
                  "input": {"shape": list(model.input.shape), "range": model.input.range, "centred": model.input.centred}},
        )


# long: the update rule reads top to bottom in one place, set-up then each step's stages in order (x = G(theta),
# R_pre, readouts, objective, metrics, gradient, step, R_post); split up, a step would be scattered over helpers
def run(model: Explorable, config: AMConfig, on_step: Callable[[Frame], None] | None = None,
        cancel: CancelFlag | None = None, progress: bool = False) -> Run:
    """Optimise the inputs of every target of `config` in one batched run; see AMConfig for the options.
    Raises ConfigMismatch (a ValueError) when the config asks `model` for what it does not have."""
    check_config(config, model)
    started = time.perf_counter()
    device = model.device
    model.eval()
    read = Reader(model, config.precision)
    objectives = config.objectives
    samples = config.samples
    bank = ObjectiveBank(objectives, {name: layer.units for name, layer in model.layers.items()}, device)
    rand = RowRandom(config.seed, config.target_keys(), samples, device)
    metric_rand = RowRandom(config.seed, config.target_keys(), samples, device, stream=1)
    rows = len(rand)
    param = build(config, model, rand)
    draws = param.draws
    target_of_row = torch.arange(len(objectives), device=device).repeat_interleave(samples)
    target_of_image = target_of_row.repeat_interleave(draws)
    # each target's receptive field grown by R_pre's reach: the gradient filter's mask and the field check's
    fields = dilate(receptive_fields(model, bank, config.seed), reach(config, *model.input.shape[1:]))

    def per_row(t: Tensor) -> Tensor:
        """Mean over each row's draws (images come row by row, `draws` at a time)."""
        return t if draws == 1 else t.view(rows, draws, *t.shape[1:]).mean(1)

    steps = config.steps
    sched = schedule_values(config)
    lr, elbo_w, div_w = sched["optimizer.lr"], sched["obj.elbo_weight"], sched["diversity.weight"]
    post = config.post
    post_active = bool(sched["post.blur_sigma"].any() or sched["post.tv_denoise"].any() or post.bilateral_sigma
                       or post.max_norm or post.clip)
    # x itself is the current input (so the weighted ELBO doubles as the measured one)
    x_is_current = draws == 1 and not (isinstance(param, Latent) and param.sample_z1)
    params = [p for p in param.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, config.optimizer, float(lr[0]))
    nan_rows = torch.full((rows,), float("nan"), device=device)
    mask = field_masks(fields, samples) if config.grad.confine and sched["grad.gamma"].any() else None
    if mask is not None and draws > 1:
        mask = mask.repeat_interleave(draws, 0)
    recorder = Recorder(rows, device, config, param, on_step, model.input.shape)
    measure_elbo = model.has_elbo and config.elbo_every > 0
    pre_moves = bool(config.pre.jitter_pixels(*model.input.shape[1:]) or config.pre.scale or config.pre.normalise)
    status = "completed"

    bar = None
    if progress:
        from tqdm.auto import tqdm  # a widget bar in Jupyter (with ipywidgets), text elsewhere

        bar = tqdm(total=steps, desc=f"{config.method} x{rows}", unit="step", leave=False)
    for step in range(steps):
        if cancel is not None and cancel.is_set():
            status = "cancelled"
            break
        # ---- forward: x = G(theta), R_grad marker, R_pre, readouts ----
        x = param(rand)
        x_act = _pre(x, config, float(sched["grad.gamma"][step]), rand, draws, mask)
        plain = x_act is x  # no R_pre and no gradient filter: what the model computed from x is shared
        readouts = read(x_act, bank.needed)
        shared = readouts.shared if plain else None
        activation = bank.activation(readouts, target_of_image)

        # ---- objective ----
        objective = activation
        elbo_value = None
        if elbo_w[step] > 0:
            elbo_value = model.elbo_rows(x, rand, draws, shared)
            objective = objective + float(elbo_w[step]) * elbo_value
        objective_row = per_row(_penalised(objective, x, sched, step))
        if div_w[step] > 0 and samples > 1:
            spread = x if draws == 1 else param.current()
            objective_row = objective_row + float(div_w[step]) * R.diversity(spread, samples, config.diversity.metric)

        # ---- current input and metrics (before the update: they describe x at this step) ----
        with torch.no_grad():
            current = x.detach() if x_is_current else param.current().detach()
            seen, act_row = readouts, per_row(activation.detach())
            if pre_moves:  # the readout saw a shifted (zoomed, normalised) copy: the metrics read x itself
                seen = read(x.detach(), bank.needed)
                act_row = per_row(bank.activation(seen, target_of_image))
                shared = seen.shared
            ru_value, ru_unit = bank.runner_up(per_row(seen[bank.main_key].detach()), target_of_row)
            if elbo_value is not None and x_is_current:
                elbo_row = elbo_value.detach()
            elif measure_elbo and step % config.elbo_every == 0:
                elbo_row = model.elbo_rows(current, metric_rand, 1, _detached(shared) if x_is_current else None)
            else:
                elbo_row = nan_rows
            recorder.record(step, current, {"activation": act_row, "runner_up": ru_value, "runner_up_unit": ru_unit,
                                            "elbo": elbo_row, "objective": objective_row.detach()})

        # ---- gradient w.r.t. theta only (never the model's weights), step, R_post ----
        grads = torch.autograd.grad(-objective_row.sum(), params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = torch.zeros_like(p) if g is None else g
        if step and lr[step] != lr[step - 1]:
            set_lr(optimizer, float(lr[step]))
        optimizer.step()
        if post_active and step % post.every == 0:
            _post_step(param, post, float(sched["post.blur_sigma"][step]), float(sched["post.tv_denoise"][step]))
        param.project()
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(act=f"{act_row.mean().item():.3g}")
    if bar is not None:
        bar.close()

    with torch.no_grad():
        final = param.current().detach().clone()
    if status == "completed":
        recorder.snapshot(steps, final)
    result = recorder.result(final, status, started, device, model)
    row_fields = fields.repeat_interleave(samples, 0).cpu().numpy()
    records, reference = row_references(model, config)
    result.checks = row_checks(result, model, row_fields, _final_elbo(model, final, config, rows), records, reference)
    result.info["references"] = curve_references(records, reference)
    result.natural = _natural_anchors(model, config)
    return result


def _natural_anchors(model: Explorable, config: AMConfig) -> dict[str, np.ndarray]:
    """Each row's unit's top real inputs (model.natural_top), where every target is a plain unit (of one layer)."""
    terms = [o.plain_unit for o in config.objectives]
    if None in terms:
        return {}
    top = model.natural_top(terms[0].layer)
    if top is None:
        return {}
    units = np.repeat([t.unit for t in terms], config.samples)
    images = top["images"][units]
    if images.ndim == 5 and images.shape[2] == 1:  # (rows, k, 1, H, W) -> (rows, k, H, W), as Run.images
        images = images[:, :, 0]
    return {"images": images, "activation": top["activation"][units]}


def _final_elbo(model: Explorable, final: Tensor, config: AMConfig, rows: int) -> np.ndarray | None:
    """The ELBO of each row's final input (a random stream of its own), for the in_distribution check."""
    if not model.has_elbo:
        return None
    noise = RowRandom(config.seed, config.target_keys(), config.samples, final.device, stream=2)
    with torch.no_grad():
        return model.elbo_rows(final, noise, 1).float().cpu().numpy()


def _detached(shared: object) -> object:
    return shared.detach() if isinstance(shared, Tensor) else shared


@torch.no_grad()
def _post_step(param, post, blur_sigma: float, tv_weight: float) -> None:
    """R_post, written into the optimised parameters themselves (never a copy)."""
    for p in param.image_params():
        value = p.data
        if blur_sigma > 0:
            value = R.gaussian_blur(value, blur_sigma)
        if post.bilateral_sigma > 0:
            value = R.bilateral(value, post.bilateral_sigma, post.bilateral_color)
        if tv_weight > 0:
            value = R.tv_denoise(value, tv_weight)
        if post.max_norm is not None:
            value = R.renorm(value, post.max_norm)
        if post.clip is not None:
            value = value.clamp(-post.clip, post.clip)
        if value is not p.data:
            p.data.copy_(value)
    for p in param.vector_params():
        if post.max_norm is not None:
            p.data.copy_(R.renorm(p.data, post.max_norm))
        if post.clip is not None:
            p.data.clamp_(-post.clip, post.clip)
