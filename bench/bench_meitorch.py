"""meiscope versus the thesis' own code (meitorch 0.223) on our model: the same unit, start image, steps
and optimizer; wall time and the activation each reaches, measured side by side in one process.

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
from meiscope.engine.randomness import RowRandom  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_engine import timed  # noqa: E402

UNIT, STEPS, LR, REPEATS = 51, 200, 0.01, 3


def meitorch_run(model, start: torch.Tensor, jitter: int | None, precond: float | None):
    def operation(inputs):
        act = model.z2_posterior(inputs)[0][:, UNIT].mean(0)
        return {"objective": -act, "activation": act}

    config = dict(iter_n=STEPS, n_samples=1, save_every=STEPS, bias=0, scale=1, optimizer="rmsprop",
                  optimizer_params=dict(lr=LR), jitter=jitter, scaler=None, precond=precond, blur=None,
                  norm=None, train_norm=None, clip=None)
    result = MEI(operation=operation, shape=(1, 40, 40), device="cpu").generate_pixel_mei(init=start.clone(), **config)
    return float(result.get_activation()), result.get_image().detach().numpy()[0, 0]


def main() -> None:
    model = load_model()
    start = RowRandom(0, [UNIT], 1, torch.device("cpu")).normal(1, 40, 40) * 0.1  # meiscope's own start
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; unit {UNIT}, {STEPS} steps, RMSprop lr {LR}, "
          f"same start image; median of {REPEATS}\n")
    cases = [("plain pixel AM", None, None, {}),
             ("jitter 2 + gradient filter gamma 1 (meitorch precond 0.5)", 2, 0.5, {"pre": {"jitter": 2}, "grad": {"gamma": 1.0}})]
    for name, jitter, precond, extra in cases:
        np.random.seed(0)
        meitorch_run(model, start, jitter, precond)  # warm-up
        ours_cfg = AMConfig(unit=UNIT, steps=STEPS, optimizer={"lr": LR}, elbo_every=0, snapshot_every=STEPS, **extra)
        run(model, ours_cfg)
        t_ours, ours = timed(lambda: run(model, ours_cfg), REPEATS)
        np.random.seed(0)
        t_mt, (act_mt, img_mt) = timed(lambda: meitorch_run(model, start, jitter, precond), REPEATS)
        frozen = [p.requires_grad_(False) for p in model.parameters()]
        t_mt_frozen, _ = timed(lambda: meitorch_run(model, start, jitter, precond), REPEATS)
        for p in frozen:
            p.requires_grad_(True)
        with torch.no_grad():
            act_ours = model.z2_posterior(torch.as_tensor(ours.images).view(1, 1, 40, 40))[0][0, UNIT].item()
        print(name)
        print(f"  meiscope.run                    {t_ours:6.2f} s   activation {act_ours:8.3f}")
        print(f"  meitorch (model as loaded)      {t_mt:6.2f} s   activation {act_mt:8.3f}   time ratio {t_mt / t_ours:.2f}")
        print(f"  meitorch (model weights frozen) {t_mt_frozen:6.2f} s   time ratio {t_mt_frozen / t_ours:.2f}")
        if jitter is None:
            print(f"  largest pixel difference of the final images: {np.abs(ours.images[0] - img_mt).max():.2e}")
        print()


if __name__ == "__main__":
    main()
