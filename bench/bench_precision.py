"""float32 against bfloat16 readouts (AMConfig.precision) and bfloat16 autocast training, side by side in one
process: speed, and how far the results move. Results go into docs/BENCHMARKS.md by hand.

    python bench/bench_precision.py              # about 5 minutes on 2 CPU cores
    python bench/bench_precision.py --steps 50   # shorter runs

1. one unit, the engine's defaults (200 steps);
2. the 250-unit atlas (the default configuration, recorded as engine/presets.py ATLAS), one batched run;
3. a run as the page drives it: a frame encoded for the websocket every 5 steps;
4. a training step of the TDVAE (batch 256; the nets under autocast, the ELBO's sums in float32).
For the AM runs: the correlation of each final image with the float32 one, the activation's relative change,
and the ELBO of the final images (always measured in float32).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from meiscope import AMConfig, load_model, run
from meiscope.engine.presets import ATLAS
from meiscope.server.encode import encode_frame


PRECISIONS = ("float32", "bfloat16")


def interleaved(fns: dict[str, callable], repeats: int) -> dict[str, tuple[float, object]]:
    """Each function `repeats` times, alternating, so that a change of the machine's load hits both alike;
    median seconds and the last result of each."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    out: dict[str, object] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            out[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {k: (statistics.median(times[k]), out[k]) for k in fns}


def correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(1, keepdims=True)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


@torch.no_grad()
def elbo_of(model, images: np.ndarray) -> np.ndarray:
    gen = torch.Generator().manual_seed(0)
    return model.elbo_terms(torch.as_tensor(images).view(len(images), 1, 40, 40), generator=gen).elbo().numpy()


def compare(model, name: str, configs: dict[str, AMConfig], repeats: int) -> None:
    results = interleaved({p: (lambda c=c: run(model, c)) for p, c in configs.items()}, repeats)
    (t32, r32), (t16, r16) = results["float32"], results["bfloat16"]
    corr = correlations(r32.images, r16.images)
    rel = np.abs(r16.final_activation - r32.final_activation) / np.maximum(np.abs(r32.final_activation), 1e-6)
    e32, e16 = elbo_of(model, r32.images), elbo_of(model, r16.images)
    print(f"{name}: float32 {t32:.2f} s, bfloat16 {t16:.2f} s, speed-up {t32 / t16:.2f}x")
    print(f"  final image r with float32: median {np.median(corr):.4f}, min {corr.min():.4f}, "
          f"> 0.99 for {np.mean(corr > 0.99):.0%} of {len(corr)}")
    print(f"  activation change: median {np.median(rel):.2%}, max {rel.max():.2%}, within 1% for {np.mean(rel < 0.01):.0%}; "
          f"mean activation {r32.final_activation.mean():.3f} vs {r16.final_activation.mean():.3f}")
    print(f"  ELBO of the final images (float32): mean {e32.mean():.1f} vs {e16.mean():.1f} nats, "
          f"median |difference| {np.median(np.abs(e16 - e32)):.2f} nats")


def page_run(model, config: AMConfig) -> int:
    frames = []
    run(model, config, on_step=lambda frame: frames.append(encode_frame(frame, "bench")))
    return len(frames)


def training_steps(precision: str, steps: int = 6, batch: int = 256) -> float:
    """Median seconds of a TDVAE training step (forward, backward, Adam) on random whitened-like patches."""
    from meiscope.model.tdvae import TDVAE

    torch.manual_seed(0)
    model = TDVAE().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 1600)
    gen = torch.Generator().manual_seed(1)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            loss = -model.elbo_terms(x, generator=gen).elbo().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = load_model()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU bfloat16 support: {torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()}\n")
    for p in PRECISIONS:  # warm-up: the first run in a process pays one-time set-up (and the bfloat16 copy)
        run(model, AMConfig(unit=[0, 1], steps=3, precision=p))

    compare(model, "one unit (50), defaults", {p: AMConfig(unit=50, steps=args.steps, precision=p) for p in PRECISIONS},
            args.repeats)
    compare(model, "one unit (50), jitter 2 + gamma 1",
            {p: AMConfig(unit=50, steps=args.steps, precision=p, pre={"jitter": 2}, grad={"gamma": 1.0}) for p in PRECISIONS},
            args.repeats)
    atlas = {p: AMConfig.model_validate({**ATLAS, "steps": args.steps, "unit": list(range(250)), "precision": p})
             for p in PRECISIONS}
    compare(model, "250-unit atlas", atlas, max(1, args.repeats - 1))

    page = {p: AMConfig(unit=50, steps=args.steps, precision=p, snapshot_every=5, elbo_every=5,
                        pre={"jitter": 2}, grad={"gamma": 1.0}) for p in PRECISIONS}
    timings = interleaved({p: (lambda c=c: page_run(model, c)) for p, c in page.items()}, args.repeats)
    (t32, n), (t16, _) = timings["float32"], timings["bfloat16"]
    print(f"page-attached run ({n} frames encoded): float32 {t32:.2f} s, bfloat16 {t16:.2f} s, speed-up {t32 / t16:.2f}x")

    train = {p: training_steps(p) for p in PRECISIONS}
    print(f"training step (batch 256): float32 {train['float32'] * 1000:.0f} ms, autocast bfloat16 "
          f"{train['bfloat16'] * 1000:.0f} ms, speed-up {train['float32'] / train['bfloat16']:.2f}x")


if __name__ == "__main__":
    main()
