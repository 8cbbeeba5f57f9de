"""meiscope versus the thesis' own code (meitorch 0.223) on our model, measured side by side in one process:
each tool's defaults for one unit and for the 250-unit atlas (meiscope in float32 and with bfloat16 readouts;
meitorch with the model as loaded and with its weights frozen), then the same update rule in both (the same
unit, start image, steps and optimizer): wall time and the activation each reaches.

    bash bench/setup_meitorch.sh && . bench/.venv-meitorch/bin/activate && python bench/bench_meitorch.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import types

os.environ.setdefault("TQDM_DISABLE", "1")  # meitorch wraps its loop in tqdm

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def _stub_torchvision() -> None:
    """meitorch imports torchvision only for transforms.CenterCrop (used with its `scaler`, which we leave
    off); the PyPI torchvision wheel does not import beside torch's CPU build."""
    try:
        import torchvision.transforms  # noqa: F401
        return
    except Exception:
        pass

    class CenterCrop:
        def __init__(self, size):
            self.h, self.w = (size, size) if isinstance(size, int) else tuple(size)

        def __call__(self, x):
            top, left = (x.shape[-2] - self.h) // 2, (x.shape[-1] - self.w) // 2
            return x[..., top:top + self.h, left:left + self.w]

    tv, tvt = types.ModuleType("torchvision"), types.ModuleType("torchvision.transforms")
    tvt.CenterCrop, tv.transforms = CenterCrop, tvt
    sys.modules["torchvision"], sys.modules["torchvision.transforms"] = tv, tvt


_stub_torchvision()
from meitorch.mei import MEI  # noqa: E402

from meiscope import AMConfig, load_model, run  # noqa: E402
from meiscope.engine.presets import ATLAS, plain_config  # noqa: E402
from meiscope.engine.randomness import RowRandom  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_engine import timed  # noqa: E402

UNIT, STEPS, LR, REPEATS = 50, 200, 0.01, 3  # unit 50: the most informative z2 unit of the shipped model


def meitorch_run(model, start: torch.Tensor, jitter: int | None, precond: float | None, unit: int = UNIT):
    def operation(inputs):
        act = model.z2_posterior(inputs)[0][:, unit].mean(0)
        return {"objective": -act, "activation": act}

    config = dict(iter_n=STEPS, n_samples=1, save_every=STEPS, bias=0, scale=1, optimizer="rmsprop",
                  optimizer_params=dict(lr=LR), jitter=jitter, scaler=None, precond=precond, blur=None,
                  norm=None, train_norm=None, clip=None)
    result = MEI(operation=operation, shape=(1, 40, 40), device="cpu").generate_pixel_mei(init=start.clone(), **config)
    return float(result.get_activation()), result.get_image().detach().numpy()[0, 0]


def meitorch_atlas(model, units: list[int], jitter: int, precond: float) -> list[float]:
    """What a meitorch user does for an atlas: one run per unit, one after another."""
    acts = []
    for u in units:
        start = RowRandom(0, [u], 1, torch.device("cpu")).normal(1, 40, 40) * 0.1
        acts.append(meitorch_run(model, start, jitter, precond, unit=u)[0])
    return acts


def frozen(model, flag: bool) -> None:
    for p in model.parameters():
        p.requires_grad_(not flag)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--atlas-units", type=int, default=25,
                        help="units meitorch loops over (its time is scaled to 250: the units take alike long)")
    args = parser.parse_args()
    model = load_model()
    start = RowRandom(0, [UNIT], 1, torch.device("cpu")).normal(1, 40, 40) * 0.1  # meiscope's own start
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {STEPS} steps, RMSprop lr {LR}, "
          f"same start image; median of {REPEATS}\n")

    # ---- one unit: meiscope with its defaults (ELBO measured every 10 steps) in both precisions ----
    print(f"one unit ({UNIT}), each tool's defaults")
    ours = {p: AMConfig(unit=UNIT, steps=STEPS, precision=p) for p in ("float32", "bfloat16")}
    for config in ours.values():
        run(model, config)  # warm-up (and the bfloat16 copy of the weights)
    np.random.seed(0)
    meitorch_run(model, start, None, None)
    times = {p: timed(lambda c=c: run(model, c), REPEATS) for p, c in ours.items()}
    np.random.seed(0)
    t_mt, (act_mt, _) = timed(lambda: meitorch_run(model, start, None, None), REPEATS)
    frozen(model, True)
    t_mt_frozen, _ = timed(lambda: meitorch_run(model, start, None, None), REPEATS)
    frozen(model, False)
    for p, (t, result) in times.items():
        with torch.no_grad():  # on the final image, as meitorch reports it (the run's metrics precede the last step)
            act = model.z2_posterior(torch.as_tensor(result.images).view(1, 1, 40, 40))[0][0, UNIT].item()
        print(f"  meiscope.run, {p:8s}          {t:6.2f} s   activation {act:8.3f}   "
              f"meitorch / meiscope: {t_mt / t:.2f} (as loaded), {t_mt_frozen / t:.2f} (frozen)")
    print(f"  meitorch (model as loaded)      {t_mt:6.2f} s   activation {act_mt:8.3f}")
    print(f"  meitorch (model weights frozen) {t_mt_frozen:6.2f} s\n")

    # ---- the 250-unit atlas: one batched run against meitorch looping over the units ----
    n = args.atlas_units
    print(f"250-unit atlas (jitter 2, gradient filter gamma 1 / meitorch precond 0.5); meitorch over {n} units, x {250 / n:g}")
    atlas = {p: plain_config(**ATLAS, steps=STEPS, unit=list(range(250)), precision=p, pre={"jitter": 2},
                             grad={"gamma": 1.0})
             for p in ("float32", "bfloat16")}
    atlas_times = {p: timed(lambda c=c: run(model, c), 1) for p, c in atlas.items()}
    np.random.seed(0)
    t_loop, acts = timed(lambda: meitorch_atlas(model, list(range(n)), 2, 0.5), 1)
    frozen(model, True)
    np.random.seed(0)
    t_loop_frozen, _ = timed(lambda: meitorch_atlas(model, list(range(n)), 2, 0.5), 1)
    frozen(model, False)
    t_loop, t_loop_frozen = t_loop * 250 / n, t_loop_frozen * 250 / n
    for p, (t, result) in atlas_times.items():
        print(f"  meiscope atlas, {p:8s}        {t:6.1f} s   mean activation of units 0..{n - 1} "
              f"{result.final_activation[:n].mean():7.3f}   meitorch / meiscope: {t_loop / t:.1f} (as loaded), "
              f"{t_loop_frozen / t:.1f} (frozen)")
    print(f"  meitorch loop (as loaded)       {t_loop:6.1f} s   mean activation of units 0..{n - 1} {np.mean(acts):7.3f}")
    print(f"  meitorch loop (weights frozen)  {t_loop_frozen:6.1f} s\n")

    # ---- the same update rule in both tools: the images agree ----
    cases = [("plain pixel AM", None, None, {}),
             ("jitter 2 + gradient filter gamma 1 (meitorch precond 0.5)", 2, 0.5, {"pre": {"jitter": 2}, "grad": {"gamma": 1.0}})]
    for name, jitter, precond, extra in cases:
        np.random.seed(0)
        meitorch_run(model, start, jitter, precond)  # warm-up
        ours_cfg = plain_config(unit=UNIT, steps=STEPS, optimizer={"lr": LR}, elbo_every=0, snapshot_every=STEPS,
                                **extra)
        run(model, ours_cfg)
        t_ours, result = timed(lambda: run(model, ours_cfg), REPEATS)
        np.random.seed(0)
        t_mt, (act_mt, img_mt) = timed(lambda: meitorch_run(model, start, jitter, precond), REPEATS)
        frozen(model, True)
        t_mt_frozen, _ = timed(lambda: meitorch_run(model, start, jitter, precond), REPEATS)
        frozen(model, False)
        with torch.no_grad():
            act_ours = model.z2_posterior(torch.as_tensor(result.images).view(1, 1, 40, 40))[0][0, UNIT].item()
        print(name + ", ELBO not measured")
        print(f"  meiscope.run                    {t_ours:6.2f} s   activation {act_ours:8.3f}")
        print(f"  meitorch (model as loaded)      {t_mt:6.2f} s   activation {act_mt:8.3f}   time ratio {t_mt / t_ours:.2f}")
        print(f"  meitorch (model weights frozen) {t_mt_frozen:6.2f} s   time ratio {t_mt_frozen / t_ours:.2f}")
        if jitter is None:
            print(f"  largest pixel difference of the final images: {np.abs(result.images[0] - img_mt).max():.2e}")
        print()


if __name__ == "__main__":
    main()
