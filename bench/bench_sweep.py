"""Sweep benchmark: a 250-unit x 4-config grid (F6: the four optimizers, atlas settings) run by the local
backend and by Ray on the same cores, side by side in one process; printed as a ratio, plus the unit-step
throughput that docs/BENCHMARKS.md uses for its cluster estimate. Results go into the docs by hand.

    python bench/bench_sweep.py                  # about 4 minutes on 2 idle CPU cores
    python bench/bench_sweep.py --steps 50       # a quicker look
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from meiscope import AMConfig, load_model
from meiscope.engine.presets import ATLAS
from meiscope.sweep import SweepSpec, SweepStore, expand, plan
from meiscope.sweep.execute import run_local, run_ray
from meiscope.sweep.spec import run_id, unit_config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=AMConfig().steps)
    parser.add_argument("--units", type=int, default=250)
    parser.add_argument("--batch-size", type=int, default=None, help="units per task (default: all)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved local/Ray rounds (the best counts)")
    args = parser.parse_args()
    cpus = os.cpu_count()
    spec = SweepSpec(name="bench", base={**ATLAS, "steps": args.steps},
                     axes={"optimizer.name": ["sgd", "mei", "rmsprop", "adam"]}, units=f"0-{args.units - 1}",
                     batch_size=args.batch_size)
    expansion = expand(spec)
    unit_steps = expansion.n_runs * args.steps
    print(f"grid: {len(expansion.points)} configs x {len(expansion.units)} units x {args.steps} steps "
          f"({unit_steps:,} unit-steps); {cpus} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads")

    import ray

    model = load_model()
    times: dict[str, list[float]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        t_init = time.perf_counter() - start
        # interleaved rounds, fresh stores each time: the machine is shared, so drift hits both backends
        for r in range(args.rounds):
            local, ray_store = SweepStore(tmp, f"local{r}"), SweepStore(tmp, f"ray{r}")
            start = time.perf_counter()
            run_local(plan(expansion, local), local, model)
            times["local"].append(time.perf_counter() - start)
            tasks = plan(expansion, ray_store)
            start = time.perf_counter()
            _, errors = run_ray(tasks, ray_store, None)
            times["ray"].append(time.perf_counter() - start)
            assert not errors, errors
            print(f"round {r + 1}: local {times['local'][-1]:.1f} s, ray {times['ray'][-1]:.1f} s"
                  + (" (workers load the model)" if r == 0 else " (workers keep the model)"))
        ray.shutdown()
        t_local, t_ray = min(times["local"]), min(times["ray"])
        print(f"local: {t_local:.1f} s ({unit_steps / t_local:,.0f} unit-steps/s); ray: init {t_init:.1f} s, "
              f"{len(tasks)} tasks in {t_ray:.1f} s ({unit_steps / t_ray:,.0f} unit-steps/s); best of {args.rounds}")
        print(f"ratio ray / local: {t_ray / t_local:.3f} (with ray.init: {(t_ray + t_init) / t_local:.3f})")

        worst = 0.0
        for point in expansion.points:
            for unit in expansion.units:
                rid = run_id(unit_config(point.config, unit))
                worst = max(worst, float(np.abs(local.load(rid).images - ray_store.load(rid).images).max()))
        print(f"largest pixel difference between the two backends: {worst:.2e}")


if __name__ == "__main__":
    main()
