"""HookedModel: any PyTorch module made explorable, its units read through forward hooks.

A layer is a submodule of the wrapped module, named by its path in `module.named_modules()` ("fc2",
"features.3"; "" is the module itself). Its units are:

- the neurons of a (B, N) output;
- the channels of a (B, C, H, W) output, read at the spatial centre (row H // 2, column W // 2) or
  averaged over space (`spatial`);
- the flattened elements of any other output, (B, ...) -> (B, N).

A module that runs several times in one forward pass is read at its last call.

Hooks live only while `readouts` runs the module (removed in a finally, also when the forward raises);
the wrapped module stays a submodule, so `.parameters()` and `.to(device)` see it.
"""

from __future__ import annotations

import math
import threading
from typing import Callable, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .natural import top_inputs
from .seam import Explorable, InputSpec, ReadoutKey, Readouts, ReadoutLayer

Spatial = Literal["centre", "mean"]
SPATIAL = ("centre", "mean")
CENSUS_CHUNK = 512
DEAD_STD = 1e-6  # a unit whose std on data is below this (relative to max(1, |mean|)) is "dead"


def _resolve(module: nn.Module, layers: Mapping[str, str | nn.Module] | Sequence[str]) -> dict[str, str]:
    """Readout name -> module path, checking that each layer is a submodule of `module`."""
    paths = {id(m): path for path, m in module.named_modules()}
    named = {path: path for path in layers} if not isinstance(layers, Mapping) else dict(layers)
    if not named:
        raise ValueError("HookedModel needs at least one layer")
    out = {}
    for name, target in named.items():
        if isinstance(target, nn.Module):
            if id(target) not in paths:
                raise ValueError(f"layer {name!r}: the module given is not a submodule of the wrapped module")
            out[name] = paths[id(target)]
        elif isinstance(target, str):
            if target not in dict(module.named_modules()):
                known = [p for p, _ in module.named_modules() if p][:12]
                raise ValueError(f"layer {name!r}: no submodule {target!r} in the wrapped module "
                                 f"(some there are: {', '.join(known)})")
            out[name] = target
        else:
            raise ValueError(f"layer {name!r}: give a module path (str) or a submodule, got {type(target).__name__}")
    return out


def units_of(output: Tensor, spatial: str) -> Tensor:
    """A layer's output as (B, units): see the module docstring. Always a fresh tensor, so that a later
    in-place op in the forward (ReLU(inplace=True)) cannot change what was read."""
    if output.dim() == 4:
        if spatial == "centre":
            return output[:, :, output.shape[2] // 2, output.shape[3] // 2].clone()
        return output.mean(dim=(2, 3))
    return output.reshape(output.shape[0], -1).clone()


def _significant(value: float, digits: int = 5) -> float | None:
    return float(f"{value:.{digits}g}") if math.isfinite(value) else None


class HookedModel(Explorable):
    """Any `nn.Module` taking (B, C, H, W) images, its units read through forward hooks on `layers`.

    layers: module paths (the readout takes the path as its name) or {readout name: path or submodule};
        the first is the default layer.
    input_shape: (C, H, W) of the inputs; input_range: the values the data spans (None: unbounded);
        centred: values scatter around 0 with either sign meaningful.
    labels: {layer: one name per unit} (class names of a classifier's output).
    spatial: how a convolutional layer's channel becomes one number: "centre" or "mean"; one for all layers
        or {layer: choice}.
    census_data: a batch of real inputs (N, C, H, W); `census(layer)` then measures every unit on it.
    descriptions: {layer: text} replacing the generated description of a layer.
    """

    kind = "hooked"

    def __init__(self, module: nn.Module, layers: Mapping[str, str | nn.Module] | Sequence[str],
                 input_shape: tuple[int, int, int], input_range: tuple[float, float] | None = None,
                 centred: bool = True, name: str = "model", labels: Mapping[str, Sequence[str]] | None = None,
                 spatial: Spatial | Mapping[str, Spatial] = "centre", census_data: Tensor | None = None,
                 description: str = "", input_description: str = "",
                 descriptions: Mapping[str, str] | None = None) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (channels, height, width), got {tuple(input_shape)}")
        self.module = module.eval()
        self.name = name
        self.description = description
        c, h, w = (int(v) for v in input_shape)
        self.input = InputSpec(c, h, w, None if input_range is None else (float(input_range[0]), float(input_range[1])),
                               centred=centred, description=input_description)
        self.paths = _resolve(module, layers)
        spatial_of = dict(spatial) if isinstance(spatial, Mapping) else {n: spatial for n in self.paths}
        for layer, choice in spatial_of.items():
            if layer not in self.paths:
                raise ValueError(f"spatial names an unknown layer {layer!r}")
            if choice not in SPATIAL:
                raise ValueError(f"spatial must be 'centre' or 'mean', got {choice!r} for layer {layer!r}")
        self.spatial = {n: spatial_of.get(n, "centre") for n in self.paths}
        shapes = self._dry_shapes()
        self.layers = {}
        for layer, path in self.paths.items():
            units = units_of(torch.zeros(shapes[layer]), self.spatial[layer]).shape[1]
            text = (descriptions or {}).get(layer) or self._describe(layer, shapes[layer])
            names = None
            if labels and layer in labels:
                names = tuple(str(v) for v in labels[layer])
                if len(names) != units:
                    raise ValueError(f"labels of layer {layer!r}: {len(names)} given for {units} units")
            self.layers[layer] = ReadoutLayer(layer, units, ("mean",), text, names)
        for layer in labels or {}:
            if layer not in self.layers:
                raise ValueError(f"labels name an unknown layer {layer!r}")
        self.census_data = None if census_data is None else census_data.detach().cpu()
        if self.census_data is not None and (tuple(self.census_data.shape[1:]) != self.input.shape
                                             or not len(self.census_data)):
            raise ValueError(f"census_data must be (N >= 1, {c}, {h}, {w}), got {tuple(self.census_data.shape)}")
        self._census: dict[str, list[dict]] | None = None
        self._natural: dict[str, dict] = {}  # layer -> its units' top inputs among census_data

    # ---- construction ----------------------------------------------------------------------------
    def _dry_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each layer's output shape for one input of zeros."""
        shapes: dict[str, tuple[int, ...]] = {}

        def grab(layer: str):
            def hook(_module, _inputs, output):
                if not isinstance(output, Tensor):
                    raise ValueError(f"layer {layer!r} ({self.paths[layer] or 'the module itself'}) outputs "
                                     f"{type(output).__name__}, not a tensor: name a submodule that returns one")
                shapes[layer] = tuple(output.shape)
            return hook

        dtype = next((p.dtype for p in self.parameters() if p.is_floating_point()), torch.float32)
        x = torch.zeros(1, *self.input.shape, device=self.device, dtype=dtype)
        with torch.no_grad():
            self._forward_with(x, {layer: grab(layer) for layer in self.paths})
        missing = [layer for layer in self.paths if layer not in shapes]
        if missing:
            raise ValueError(f"layers {missing} never ran in a forward pass of the wrapped module")
        return shapes

    def _describe(self, layer: str, shape: tuple[int, ...]) -> str:
        kind = type(self.module.get_submodule(self.paths[layer])).__name__
        where = f"{self.paths[layer] or 'output'}, {kind}"
        if len(shape) == 4:
            how = "at the centre of" if self.spatial[layer] == "centre" else "averaged over"
            return f"{where}: {shape[1]} channels, {how} the {shape[2]}x{shape[3]} map"
        if len(shape) == 2:
            return f"{where}: {shape[1]} units"
        return f"{where}: output {tuple(shape[1:])} flattened to {math.prod(shape[1:])} units"

    # ---- hooks -----------------------------------------------------------------------------------
    def _forward_with(self, x: Tensor, hooks: dict[str, Callable]) -> None:
        """Run the module on x with `hooks` on their layers, for this call only."""
        owner = threading.get_ident()

        def only_ours(hook: Callable) -> Callable:
            # two runs (server threads) may share the module: each hook sees only its own thread's forward
            def guarded(module, inputs, output):
                if threading.get_ident() == owner:
                    hook(module, inputs, output)
            return guarded

        handles = []
        try:
            for layer, hook in hooks.items():
                handles.append(self.module.get_submodule(self.paths[layer]).register_forward_hook(only_ours(hook)))
            self.module(x)
        finally:
            for handle in handles:
                handle.remove()

    def _as_batch(self, x: Tensor) -> Tensor:
        c, h, w = self.input.shape
        if x.dim() == 3 and c == 1 and tuple(x.shape[1:]) == (h, w):
            x = x.unsqueeze(1)
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, h, w):
            raise ValueError(f"expected x of shape (B, {c}, {h}, {w}), got {tuple(x.shape)}")
        return x

    # ---- the model seam --------------------------------------------------------------------------
    def readouts(self, x: Tensor, needed: set[ReadoutKey]) -> Readouts:
        wanted = sorted({layer for layer, _ in needed})
        for layer, stat in needed:
            self.layer(layer)
            if stat != "mean":
                raise ValueError(f"layer {layer} of {self.name} offers only the statistic 'mean', got {stat!r}")
        out = Readouts()

        def grab(layer: str):
            def hook(_module, _inputs, output):
                out[(layer, "mean")] = units_of(output, self.spatial[layer])
            return hook

        if wanted:
            self._forward_with(self._as_batch(x), {layer: grab(layer) for layer in wanted})
        return out

    def _measured(self, layer: str) -> bool:
        """Whether there is census data; the first time, one pass measures every layer's census and top inputs."""
        self.layer(layer)
        if self.census_data is None:
            return False
        if self._census is None:
            self._census = self._measure()
        return True

    def census(self, layer: str) -> list[dict] | None:
        return [dict(record) for record in self._census[layer]] if self._measured(layer) else None

    @property
    def has_natural(self) -> bool:
        return self.census_data is not None

    def natural_top(self, layer: str) -> dict | None:
        """Each unit's top inputs among census_data (measured with the census)."""
        return self._natural[layer] if self._measured(layer) else None

    def data_sample(self, n: int) -> Tensor | None:
        return None if self.census_data is None else self.census_data[:n]

    @torch.no_grad()
    def _measure(self) -> dict[str, list[dict]]:
        """One pass over census_data for every layer: activation mean, std, 99.9th percentile, max."""
        keys = {(layer, "mean") for layer in self.layers}
        parts: dict[str, list[np.ndarray]] = {layer: [] for layer in self.layers}
        for start in range(0, len(self.census_data), CENSUS_CHUNK):
            chunk = self.census_data[start:start + CENSUS_CHUNK].to(self.device)
            got = self.readouts(chunk, keys)
            for layer in self.layers:
                parts[layer].append(got[(layer, "mean")].double().cpu().numpy())
        records = {}
        for layer, spec in self.layers.items():
            acts = np.concatenate(parts[layer])
            self._natural[layer] = top_inputs(self.census_data.numpy(), acts)
            mean, std = acts.mean(0), acts.std(0)
            p999, top = np.percentile(acts, 99.9, axis=0), acts.max(0)
            records[layer] = [{
                "unit": i,
                "status": "active" if std[i] > DEAD_STD * max(1.0, abs(mean[i])) else "dead",
                "act_mean": _significant(mean[i]), "act_std": _significant(std[i]),
                "act_p999": _significant(p999[i]), "act_max": _significant(top[i]),
                "label": spec.labels[i] if spec.labels else None,
            } for i in range(spec.units)]
        return records
