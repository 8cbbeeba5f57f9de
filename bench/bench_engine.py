"""Engine benchmark: measured side by side in one process, printed as ratios (the machine is shared and
noisy, so compare only numbers from the same run). Results go into docs/BENCHMARKS.md by hand.

    python bench/bench_engine.py                 # everything (about 10 minutes on 2 CPU cores)
    python bench/bench_engine.py --singles 25    # time 25 of the 250 single-unit runs and scale up

1. overhead: a pixel run through meiscope.run versus a bare torch loop doing the same forward, backward
   and RMSprop step (the final images are checked equal, so both did the same work);
2. batching: the atlas of all 250 z2 units as one batched run versus single-unit runs;
3. the cost of the ELBO term (obj.elbo_weight > 0) and of measuring the ELBO each step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from meiscope import load_model, run
from meiscope.engine.presets import plain_config as plain
from meiscope.engine.randomness import RowRandom

UNIT = 51
STEPS = 200
LR = 0.01


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def bare_loop(model, unit: int, steps: int, seed: int = 0) -> np.ndarray:
    """The hand-written baseline: the same start, forward, backward and RMSprop step, nothing else."""
    x = (RowRandom(seed, [unit], 1, torch.device("cpu")).normal(1, 40, 40) * 0.1).requires_grad_()
    optimizer = torch.optim.RMSprop([x], lr=LR)
    for _ in range(steps):
        mu2, _ = model.z2_posterior(x)
        loss = -mu2[:, unit].sum()
        (grad,) = torch.autograd.grad(loss, [x])  # input gradient only, as the engine does
        x.grad = grad
        optimizer.step()
    return x.detach().numpy()[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--singles", type=int, default=250, help="single-unit runs to time (scaled to 250)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = load_model()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, unit {UNIT}, {STEPS} steps\n")

    # 1. overhead -------------------------------------------------------------------------------
    # every regulariser off (PLAIN), so that the engine does exactly what the bare loop does
    engine_cfg = plain(unit=UNIT, steps=STEPS, elbo_every=0, snapshot_every=STEPS, optimizer={"lr": LR})
    run(model, engine_cfg)  # warm-up
    bare_t, engine_t = [], []
    for _ in range(args.repeats):  # interleaved, so that load on the machine hits both alike
        t, bare_img = timed(lambda: bare_loop(model, UNIT, STEPS), 1)
        bare_t.append(t)
        t, engine_run = timed(lambda: run(model, engine_cfg), 1)
        engine_t.append(t)
    same = np.allclose(bare_img, engine_run.images, atol=1e-5)
    b, e = statistics.median(bare_t), statistics.median(engine_t)
    print("1. engine overhead (pixel, RMSprop, ELBO not measured)")
    print(f"   bare torch loop   {b * 1e3 / STEPS:7.2f} ms/step")
    print(f"   meiscope.run      {e * 1e3 / STEPS:7.2f} ms/step   ratio {e / b:.3f}   (same final image: {same})")
    elbo_cfg = engine_cfg.model_copy(update={"elbo_every": 1})
    t_metric, _ = timed(lambda: run(model, elbo_cfg), args.repeats)
    print(f"   + ELBO measured every step (the default): {t_metric * 1e3 / STEPS:7.2f} ms/step, "
          f"ratio to bare {t_metric / b:.3f}\n")

    # 3. ELBO term ------------------------------------------------------------------------------
    weighted = engine_cfg.model_copy(update={"obj": engine_cfg.obj.model_copy(update={"elbo_weight": 0.01})})
    t_w, _ = timed(lambda: run(model, weighted), args.repeats)
    print("3. cost of the ELBO term in the objective (one unit)")
    print(f"   without {e * 1e3 / STEPS:7.2f} ms/step, with elbo_weight 0.01 {t_w * 1e3 / STEPS:7.2f} ms/step, ratio {t_w / e:.2f}")

    # 2. batching -------------------------------------------------------------------------------
    atlas_kw = dict(steps=STEPS, pre={"jitter": 2}, grad={"gamma": 1.0}, snapshot_every=50, elbo_every=0)
    units = list(range(250))
    t_atlas, atlas = timed(lambda: run(model, plain(unit=units, **atlas_kw)), 1)
    atlas_w = weighted.obj
    t_atlas_elbo, _ = timed(lambda: run(model, plain(unit=units, obj=atlas_w.model_dump(), **atlas_kw)), 1)
    print(f"   atlas of 250 units: without {t_atlas:.1f} s, with the ELBO term {t_atlas_elbo:.1f} s, "
          f"ratio {t_atlas_elbo / t_atlas:.2f}\n")
    chosen = units[:: max(1, 250 // args.singles)][: args.singles]
    start = time.perf_counter()
    worst = 0.0
    for u in chosen:
        single = run(model, plain(unit=u, **atlas_kw))
        worst = max(worst, float(np.abs(single.images[0] - atlas.images[u]).max()))
    t_singles = (time.perf_counter() - start) * 250 / len(chosen)
    print("2. batching: atlas of all 250 z2 units, 200 steps, jitter 2, gamma 1")
    print(f"   one batched run   {t_atlas:8.1f} s")
    scaled = "" if len(chosen) == 250 else f" (timed {len(chosen)}, scaled to 250)"
    print(f"   250 single runs   {t_singles:8.1f} s{scaled}")
    print(f"   speed-up          {t_singles / t_atlas:8.1f} x   (largest pixel difference batched vs single: {worst:.2e})")


if __name__ == "__main__":
    main()
