"""The unit atlas for the browser: a preferred input for every unit of a readout layer (engine/presets.py ATLAS),
built as one batched run in a background thread and cached on disk under a key made of the model's weights hash
and the config, so a restart with the same model and config loads it instead. The model's first layer (the
TDVAE's z2) is built on start; any other layer when the page asks for it (Atlases), one build at a time."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from pathlib import Path

import numpy as np

from ..engine import AMConfig, Frame, Run, run
from ..engine.presets import ATLAS
from ..model.seam import Explorable
from ..presentation.plotting import FIGURE_LOCK, as_rgb, plt


def atlas_config(model: Explorable, layer: str | None = None) -> AMConfig:
    layer = layer or model.default_layer
    return AMConfig.model_validate({**ATLAS, "layer": layer, "unit": list(range(model.layers[layer].units))})


def atlas_key(model: Explorable, config: AMConfig) -> str:
    h = hashlib.sha256((model.source.get("sha256") or model.name).encode())
    h.update(config.model_dump_json().encode())
    return h.hexdigest()[:16]


def png_data_uri(image: np.ndarray, centred: bool = True) -> str:
    """A PNG of one image as a data: URI (for <img src>): grey, symmetric about 0 when `centred`, else from
    its minimum to its maximum; a (3, H, W) image in colour, scaled to [0, 1] together."""
    buffer = io.BytesIO()
    with FIGURE_LOCK:
        if image.ndim == 3:
            plt.imsave(buffer, as_rgb(image), format="png")
        else:
            lim = float(np.abs(image).max()) or 1.0
            low, high = (-lim, lim) if centred else (float(image.min()), float(image.max()) or 1.0)
            plt.imsave(buffer, image, cmap="gray", vmin=low, vmax=high, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class Atlas:
    def __init__(self, model: Explorable, cache_dir: Path, layer: str | None = None) -> None:
        self.model = model
        self.layer = layer or model.default_layer
        self.config = atlas_config(model, self.layer)
        self.folder = Path(cache_dir) / f"atlas-{atlas_key(model, self.config)}"
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
            centred = self.model.input.centred
            self.thumbnails = {row["unit"]: png_data_uri(img, centred) for row, img in zip(result.rows, result.images)}
            self.run = result
            self.step = self.config.steps
            self.status = "ready"
        except Exception as exc:  # the page shows it; the rest of the server keeps working
            self.error = f"{type(exc).__name__}: {exc}"
            self.status = "failed"

    def summary(self) -> dict:
        out = {"status": self.status, "layer": self.layer, "units": len(self.config.objectives), "step": self.step,
               "steps": self.config.steps, "error": self.error, "warning": self.warning,
               "config": self.config.model_dump(mode="json", exclude={"unit"})}
        if self.run is not None:
            out["activation"] = np.round(self.run.final_activation.astype(np.float64), 4).tolist()
        return out


class Atlases:
    """An atlas per layer: the first layer's started with the server, another layer's when asked (`build`), while
    no other atlas is building (they would share the cores)."""

    def __init__(self, model: Explorable, cache_dir: Path) -> None:
        self.model, self.cache_dir = model, Path(cache_dir)
        self.by_layer: dict[str, Atlas] = {}
        self.lock = threading.Lock()

    def get(self, layer: str | None = None) -> Atlas | None:
        return self.by_layer.get(layer or self.model.default_layer)

    def build(self, layer: str | None = None) -> Atlas:
        """The layer's atlas, started now unless it exists; ValueError while another layer's is building."""
        layer = layer or self.model.default_layer
        with self.lock:
            if layer in self.by_layer and self.by_layer[layer].status not in ("failed", "cancelled"):
                return self.by_layer[layer]
            busy = [a.layer for a in self.by_layer.values() if a.status == "building"]
            if busy:
                raise ValueError(f"the {busy[0]} atlas is still building; one atlas is built at a time")
            self.by_layer[layer] = Atlas(self.model, self.cache_dir, layer)
            self.by_layer[layer].start()
            return self.by_layer[layer]

    def cancel(self) -> None:
        for atlas in self.by_layer.values():
            atlas.cancel.set()
