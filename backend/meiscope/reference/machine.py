"""A one-line description of the machine that trains or measures, for model cards and stage records."""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path

import torch


@cache  # read once a process: a training run records it at every checkpoint
def machine_description(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if (device == "auto" or device.startswith("cuda")) and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{cpu}, {torch.get_num_threads()} threads (torch {torch.__version__})"
