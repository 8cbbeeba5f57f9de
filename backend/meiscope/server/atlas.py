"""The unit atlas for the browser: a preferred input for every z2 unit (engine/presets.py ATLAS), built as
one batched run in a background thread on first start and cached on disk under a key made of the model's
manifest and the config, so a restart with the same model and config loads it instead."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from pathlib import Path

import numpy as np

from ..engine import AMConfig, Frame, Run, run
from ..engine.presets import ATLAS
from ..model.checkpoint import MANIFEST
from ..model.tdvae import TDVAE, Z2_DIM
from ..plotting import FIGURE_LOCK, plt


def atlas_config() -> AMConfig:
    return AMConfig.model_validate({**ATLAS, "unit": list(range(Z2_DIM))})


def atlas_key(model_dir: Path, config: AMConfig) -> str:
    h = hashlib.sha256((Path(model_dir) / MANIFEST).read_bytes())
    h.update(config.model_dump_json().encode())
    return h.hexdigest()[:16]


def png_data_uri(image: np.ndarray) -> str:
    """A grey PNG of one image, symmetric about 0, as a data: URI (for <img src>)."""
    lim = float(np.abs(image).max()) or 1.0
    buffer = io.BytesIO()
    with FIGURE_LOCK:
        plt.imsave(buffer, image, cmap="gray", vmin=-lim, vmax=lim, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class Atlas:
    def __init__(self, model: TDVAE, model_dir: Path, cache_dir: Path) -> None:
        self.model = model
        self.config = atlas_config()
        self.folder = Path(cache_dir) / f"atlas-{atlas_key(model_dir, self.config)}"
        self.status = "building"
        self.step = 0
        self.error: str | None = None
        self.warning: str | None = None
        self.run: Run | None = None
        self.thumbnails: dict[int, str] = {}
        self.cancel = threading.Event()
        self.thread = threading.Thread(target=self._build, name="meiscope-atlas", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _on_step(self, frame: Frame) -> None:
        self.step = frame.step

    def _build(self) -> None:
        try:
            if (self.folder / "run.json").is_file():
                result = Run.load(self.folder)
            else:
                result = run(self.model, self.config, on_step=self._on_step, cancel=self.cancel)
                if result.info["status"] != "completed":
                    self.status = "cancelled"
                    return
                try:
                    result.save(self.folder)
                except OSError as exc:  # a full or read-only cache: the atlas is served from memory
                    self.warning = f"could not cache the atlas in {self.folder.parent}: {exc.strerror or exc}"
            self.thumbnails = {row["unit"]: png_data_uri(img) for row, img in zip(result.rows, result.images)}
            self.run = result
            self.step = self.config.steps
            self.status = "ready"
        except Exception as exc:  # the page shows it; the rest of the server keeps working
            self.error = f"{type(exc).__name__}: {exc}"
            self.status = "failed"

    def summary(self) -> dict:
        out = {"status": self.status, "step": self.step, "steps": self.config.steps, "error": self.error,
               "warning": self.warning,
               "config": self.config.model_dump(mode="json", exclude={"unit"})}
        if self.run is not None:
            out["activation"] = np.round(self.run.final_activation.astype(np.float64), 4).tolist()
        return out
