"""A small CNN on scikit-learn's 8x8 digits, the worked example of bringing your own model.

`build()` (the factory `meiscope.examples.digits:build`) trains it on the CPU in a few seconds with a fixed
seed the first time, caches the weights as safetensors and returns it wrapped in a HookedModel:
layers "logits" (labels "0".."9"), "fc1", "conv2", "conv1", each read before its ReLU, with a census on the
held-out digits.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..model.hooked import HookedModel

# everything the trained weights depend on; its hash names the cache file
SETTINGS = {"version": 1, "seed": 0, "held_out": 360, "epochs": 30, "batch": 32, "lr": 3e-3,
            "weight_decay": 1e-4, "channels": (8, 16), "hidden": 32}


class DigitsCNN(nn.Module):
    """conv 1->8 3x3, ReLU, conv 8->16 3x3, ReLU, flatten, fc 1024->32, ReLU, fc 32->10 (logits)."""

    def __init__(self, channels: tuple[int, int] = (8, 16), hidden: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels[0], 3, padding=1)
        self.conv2 = nn.Conv2d(channels[0], channels[1], 3, padding=1)
        self.fc1 = nn.Linear(channels[1] * 64, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def digits_split(held_out: int = SETTINGS["held_out"],
                 seed: int = SETTINGS["seed"]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(train images, train labels, held-out images, held-out labels); images (N, 1, 8, 8) in 0..1."""
    from sklearn.datasets import load_digits  # local: only the example needs it

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    y = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(x)))
    test, train = order[:held_out], order[held_out:]
    return x[train], y[train], x[test], y[test]


def settings_hash() -> str:
    return hashlib.sha256(json.dumps(SETTINGS, sort_keys=True).encode()).hexdigest()[:12]


def cache_path(cache: str | os.PathLike | None = None) -> Path:
    root = Path(cache if cache is not None else os.environ.get("MEISCOPE_CACHE", "cache"))
    return root / "examples" / f"digits-{settings_hash()}.safetensors"


def train(x: Tensor, y: Tensor) -> DigitsCNN:
    """Adam on cross-entropy, seeded and single-threaded, so that every machine trains the same weights."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SETTINGS["seed"])
            net = DigitsCNN(SETTINGS["channels"], SETTINGS["hidden"])
            opt = torch.optim.Adam(net.parameters(), lr=SETTINGS["lr"], weight_decay=SETTINGS["weight_decay"])
            loss_fn = nn.CrossEntropyLoss()
            for _ in range(SETTINGS["epochs"]):
                for idx in torch.randperm(len(x)).split(SETTINGS["batch"]):
                    opt.zero_grad()
                    loss_fn(net(x[idx]), y[idx]).backward()
                    opt.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


@torch.no_grad()
def accuracy(net: nn.Module, x: Tensor, y: Tensor) -> float:
    return float((net(x).argmax(1) == y).float().mean())


def trained(cache: str | os.PathLike | None = None) -> DigitsCNN:
    """The trained CNN: from the cache, or trained now and cached (written to a temporary name, then renamed)."""
    path = cache_path(cache)
    net = DigitsCNN(SETTINGS["channels"], SETTINGS["hidden"])
    if path.is_file():
        try:
            net.load_state_dict(load_file(str(path)))
            return net.eval()
        except Exception:  # an unreadable cache file: train again and replace it
            pass
    x, y, _, _ = digits_split()
    net = train(x, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp),
              metadata={"settings": json.dumps(SETTINGS, sort_keys=True)})
    os.replace(tmp, path)
    return net


def build(cache: str | os.PathLike | None = None) -> HookedModel:
    """The digits CNN as an Explorable (the factory `meiscope.examples.digits:build`)."""
    net = trained(cache)
    x_train, _, x_test, y_test = digits_split()
    acc = accuracy(net, x_test, y_test)
    return HookedModel(
        net,
        layers={"logits": "fc2", "fc1": "fc1", "conv2": "conv2", "conv1": "conv1"},
        input_shape=(1, 8, 8), input_range=(0.0, 1.0), centred=False, name="digits-cnn",
        labels={"logits": [str(d) for d in range(10)]},
        census_data=x_test,
        description=(f"A small CNN (conv 1->8, conv 8->16, fc 1024->32, fc 32->10) trained on scikit-learn's 8x8 "
                     f"digits ({len(x_train)} images); held-out accuracy {100 * acc:.1f}% on {len(x_test)} digits"),
        input_description="scikit-learn's 8x8 handwritten digits, scaled from 0..16 to 0..1 (ink is 1)",
        descriptions={
            "logits": "fc2: the 10 class scores (logits), one per digit",
            "fc1": "fc1: 32 hidden units, before their ReLU",
            "conv2": "conv2: 16 channels before their ReLU, at the centre of the 8x8 map",
            "conv1": "conv1: 8 channels before their ReLU, at the centre of the 8x8 map",
        },
    )
