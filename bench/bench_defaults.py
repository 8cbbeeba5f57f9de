"""Which configuration should be the default? Candidate presets measured side by side in one process on the
shipped TDVAE-40's z2 units of largest mean KL and on the digits CNN's class units; the table goes into
docs/METHODS.md ("The default configuration") by hand.

    python bench/bench_defaults.py               # 20 z2 units, 200 steps (about 3 minutes on 2 CPU cores)
    python bench/bench_defaults.py --units 8     # a quick look

Per candidate: the final activation over each unit's 99.9th percentile on held-out data (median, and how many
units reach 1x, i.e. are driven), the share of the input's power above 0.45 cycles/pixel against the held-out
patches' share, the final input's ELBO percentile among held-out patches, how many runs are converged and pass
every check that applies, and the time per step of the batched run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from meiscope import AMConfig, load_model, run
from meiscope.data.patches import build_split
from meiscope.engine.checks import trustworthy
from meiscope.engine.presets import plain
from meiscope.examples.digits import build as digits

# each over the regularisers-off start (PLAIN), except the default, which is AMConfig() itself
CANDIDATES = {
    "default (AMConfig())": None,
    "unregularised": {},
    "jitter 2 + gamma 1": {"pre": {"jitter": 2}, "grad": {"gamma": 1.0}},
    "jitter 2 + gamma 1 + ELBO 0.001": {"pre": {"jitter": 2}, "grad": {"gamma": 1.0}, "obj": {"elbo_weight": 0.001}},
    "jitter 2 + gamma 1.5, lr 0.02": {"pre": {"jitter": 2}, "grad": {"gamma": 1.5}, "optimizer": {"lr": 0.02}},
    "default without the blur": {"pre": {"jitter": "auto"}, "grad": {"gamma": 1.5}, "optimizer": {"lr": 0.03}},
    "default with blur 0.3": {"pre": {"jitter": "auto"}, "grad": {"gamma": 1.5}, "optimizer": {"lr": 0.03},
                              "post": {"blur_sigma": 0.3}},
    "default, 400 steps": {"pre": {"jitter": "auto"}, "grad": {"gamma": 1.5}, "optimizer": {"lr": 0.03},
                           "post": {"blur_sigma": 0.27}, "steps": 400},
}
HF_CUTOFF = 0.45  # cycles/pixel


def hf_share(images: np.ndarray) -> np.ndarray:
    """Per image: the share of its power (DC left out) above HF_CUTOFF cycles/pixel."""
    h, w = images.shape[-2:]
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    radius = np.hypot(fy, fx)
    power = np.abs(np.fft.fft2(images.reshape(-1, h, w))) ** 2
    power[:, 0, 0] = 0.0
    return power[:, radius > HF_CUTOFF].sum(1) / power.sum((1, 2))


def measure(model, layer: str, units: list[int], spec: dict | None, steps: int) -> dict:
    base = {} if spec is None else plain(spec)
    steps = base.pop("steps", steps)
    config = AMConfig.model_validate({**base, "layer": layer, "unit": units, "steps": steps})
    started = time.perf_counter()
    result = run(model, config)
    seconds = time.perf_counter() - started
    census = {r["unit"]: r for r in model.census(layer)}
    ratio = result.final_activation / np.array([census[u]["act_p999"] for u in units])
    checks = result.checks
    percentile = [c["in_distribution"]["value"] for c in checks]
    return {"ratio": ratio, "hf": hf_share(result.images), "percentile": percentile,
            "converged": sum(bool(c["converged"]["ok"]) for c in checks), "trust": sum(trustworthy(c) for c in checks),
            "ms_per_step": 1000 * seconds / steps}


def line(name: str, m: dict, data_hf: float | None, n: int) -> str:
    hf = f"{np.median(m['hf']):.2%} (max {np.max(m['hf']):.2%}" + (
        f", {np.max(m['hf']) / data_hf:.1f}x data)" if data_hf else ")")
    pct = [p for p in m["percentile"] if p is not None]
    elbo = f"{np.median(pct):5.1f}" if pct else "   - "
    return (f"  {name:34s} median {np.median(m['ratio']):6.2f}x (min {np.min(m['ratio']):5.2f}x), driven "
            f"{int((m['ratio'] >= 1).sum()):2d}/{n}, HF {hf}, ELBO pct {elbo}, converged {m['converged']:2d}/{n}, "
            f"all checks {m['trust']:2d}/{n}, {m['ms_per_step']:.1f} ms/step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=20, help="z2 units of largest mean KL")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()

    tdvae = load_model()
    census = sorted(tdvae.census("z2"), key=lambda r: -r["mean_kl"])
    units = [r["unit"] for r in census[: args.units]]
    heldout, _ = build_split("heldout", 2048, scale=None)
    power = np.abs(np.fft.fft2(heldout)) ** 2
    power[:, 0, 0] = 0.0
    h = heldout.shape[-1]
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(h), indexing="ij"))
    data_hf = float(power[:, radius > HF_CUTOFF].sum() / power.sum())
    run(tdvae, AMConfig(unit=units, steps=2))  # torch's one-time set-up, paid before anything is timed
    print(f"TDVAE-40: the {len(units)} z2 units of largest mean KL ({units}), {args.steps} steps; held-out patches "
          f"hold {data_hf:.2%} of their power above {HF_CUTOFF} cycles/pixel")
    for name, base in CANDIDATES.items():
        print(line(name, measure(tdvae, "z2", units, base, args.steps), data_hf, len(units)), flush=True)

    cnn = digits()
    print(f"digits CNN: the 10 class units (logits), {args.steps} steps (jitter auto is 0 px on 8x8)")
    for name, base in CANDIDATES.items():
        if "ELBO" in name:
            continue  # the CNN has no ELBO
        print(line(name, measure(cnn, "logits", list(range(10)), base, args.steps), None, 10), flush=True)


if __name__ == "__main__":
    main()
