"""Import the published TensorFlow TDVAE checkpoints (the paper's Sonnet 1 code) into meiscope's TDVAE.

The paper's code names its nets by Sonnet module, each a snt.nets.MLP of `linear_0`, `linear_1`, ... with
`w` of shape (in, out) and `b`, softplus between layers:

    mlp_shared_encoder              x -> h (activated)                  -> enc_a
    mlp_cluster_encoder             h -> (loc, raw) of z2               -> enc_b
    mlp_latent_encoder_y_to_concat  z2 -> g (activated)                 -> topdown_c
    mlp_latent_encoder_concat_to_z  [h, g] (h first) -> (loc, raw) of z1 -> enc_d
    mlp_latent_decoder              z2 -> (loc, raw) of p(z1 | z2)      -> prior_e
    mlp_data_decoder                z1 -> x (one linear layer)          -> decoder

Every (loc, raw) pair splits in that order with scale sqrt(exp(raw)) = exp(raw / 2), meiscope's convention.
The sizes (x, h, z1, z2 and the hidden widths) are read off the weights' shapes. global_step, beta1_power,
beta2_power and the Adam slots (`.../Adam`, `.../Adam_1`) are skipped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..model.checkpoint import CheckpointError, check_shapes, describe_sizes
from ..model.tdvae import TDVAE
from .tfcheckpoint import TFCheckpoint

# Sonnet module -> (our net, activated output)
MODULES = {
    "mlp_shared_encoder": "enc_a",
    "mlp_cluster_encoder": "enc_b",
    "mlp_latent_encoder_y_to_concat": "topdown_c",
    "mlp_latent_encoder_concat_to_z": "enc_d",
    "mlp_latent_decoder": "prior_e",
    "mlp_data_decoder": "decoder",
}
# NAME/linear_K/{w,b}, after any scope prefix; TF2 object-based checkpoints add /.ATTRIBUTES/VARIABLE_VALUE.
# Adam slots (.../w/Adam) and TF2 optimiser slots (.../w/.OPTIMIZER_SLOT/...) do not match.
WEIGHT_KEY = re.compile(r"(?:^|/)(" + "|".join(MODULES) + r")/linear_(\d+)/(w|b)(?:/\.ATTRIBUTES/VARIABLE_VALUE)?$")
STEP_KEY = re.compile(r"(?:^|/)global_step(?:/\.ATTRIBUTES/VARIABLE_VALUE)?$")
TRAINED_BY = "the paper's authors, with their own code"
ASSUMPTIONS = ("The checkpoint holds weights only; read with the paper's configuration as meiscope models it: "
               "softplus between layers, z2 Normal and z1 Laplace, every scale sqrt(exp(raw)), observation noise 0.4.")


@dataclass
class ImportedTDVAE:
    """A TDVAE built from a TensorFlow checkpoint, and where its weights came from."""

    model: TDVAE
    prefix: Path
    global_step: int | None
    tensors: dict[str, str]  # our state-dict name -> the TF tensor it came from
    n_skipped: int


def _find_layers(ckpt: TFCheckpoint) -> dict[str, dict[int, dict[str, str]]]:
    """module -> linear index -> {"w": tensor name, "b": tensor name}; one candidate per weight."""
    layers: dict[str, dict[int, dict[str, str]]] = {m: {} for m in MODULES}
    for name in ckpt.names():
        match = WEIGHT_KEY.search(name)
        if not match:
            continue
        module, k, param = match.group(1), int(match.group(2)), match.group(3)
        slot = layers[module].setdefault(k, {})
        if param in slot:
            raise CheckpointError(f"TensorFlow checkpoint {ckpt.prefix} holds two candidates for "
                                  f"{module}/linear_{k}/{param}: {slot[param]!r} and {name!r}")
        slot[param] = name
    return layers


Layer = tuple[str, np.ndarray, str, np.ndarray]  # (w's tensor name, w (in, out), b's tensor name, b (out,))


def _read_mlp(ckpt: TFCheckpoint, module: str, found: dict[int, dict[str, str]]) -> list[Layer]:
    """The layers of one MLP, checked one by one."""
    where = f"TensorFlow checkpoint {ckpt.prefix}"
    if not found:
        raise CheckpointError(f"{where} has no tensors of {module} (looked for {module}/linear_0/w and /b)")
    if sorted(found) != list(range(len(found))):
        gap = next(k for k in range(len(found) + 1) if k not in found)
        raise CheckpointError(f"{where} lacks tensor {module}/linear_{gap}/w (it holds layers {sorted(found)})")
    layers = []
    for k in range(len(found)):
        names = found[k]
        for param, other in (("w", "b"), ("b", "w")):
            if param not in names:
                sibling = names[other]
                raise CheckpointError(f"{where} lacks tensor {sibling[: sibling.rindex('/') + 1]}{param} "
                                      f"(beside {sibling!r})")
        w, b = ckpt.read(names["w"]), ckpt.read(names["b"])
        for name, arr in ((names["w"], w), (names["b"], b)):
            if arr.dtype.kind != "f":
                raise CheckpointError(f"{where}: tensor {name!r} has dtype {arr.dtype}, a weight must be floating point")
        if w.ndim != 2:
            raise CheckpointError(f"{where}: tensor {names['w']!r} has shape {w.shape}, a linear layer's w is (in, out)")
        if b.shape != (w.shape[1],):
            raise CheckpointError(f"{where}: tensor {names['b']!r} has shape {b.shape}, its w {names['w']!r} "
                                  f"needs ({w.shape[1]},)")
        if layers and w.shape[0] != layers[-1][1].shape[1]:
            raise CheckpointError(f"{where}: tensor {names['w']!r} has shape {w.shape}, but the layer before gives "
                                  f"{layers[-1][1].shape[1]} inputs")
        layers.append((names["w"], w, names["b"], b))
    return layers


def _need(ok: bool, ckpt: TFCheckpoint, tensor: str, shape: tuple, why: str) -> None:
    if not ok:
        raise CheckpointError(f"TensorFlow checkpoint {ckpt.prefix}: tensor {tensor!r} has shape {shape}: {why}")


def _sizes(ckpt: TFCheckpoint, nets: dict[str, list[Layer]]) -> dict:
    """TDVAE(**sizes) from the MLPs' shapes, checking that they fit together as the TDVAE wires them."""
    first = {m: (layers[0][0], layers[0][1].shape) for m, layers in nets.items()}  # (w name, w shape) of layer 0
    last = {m: (layers[-1][0], layers[-1][1].shape) for m, layers in nets.items()}
    (w_a, (x_dim, _)), (_, (_, h)) = first["mlp_shared_encoder"], last["mlp_shared_encoder"]
    patch = math.isqrt(x_dim)
    _need(patch * patch == x_dim, ckpt, w_a, first["mlp_shared_encoder"][1],
          f"x has {x_dim} pixels, not a square patch")
    w, shape = first["mlp_cluster_encoder"]
    _need(shape[0] == h, ckpt, w, shape, f"its input is h, of size {h}")
    w, shape = last["mlp_cluster_encoder"]
    _need(shape[1] % 2 == 0, ckpt, w, shape, "its output is (loc, raw) of z2, an even number")
    z2 = shape[1] // 2
    w, shape = first["mlp_latent_encoder_y_to_concat"]
    _need(shape[0] == z2, ckpt, w, shape, f"its input is z2, of size {z2}")
    w, shape = last["mlp_latent_encoder_y_to_concat"]
    _need(shape[1] == h, ckpt, w, shape, f"its output g is concatenated with h: meiscope's TDVAE needs g of h's size {h}")
    w, shape = first["mlp_latent_encoder_concat_to_z"]
    _need(shape[0] == 2 * h, ckpt, w, shape, f"its input is [h, g], {2 * h} = 2 x {h} rows")
    w, shape = last["mlp_latent_encoder_concat_to_z"]
    _need(shape[1] % 2 == 0, ckpt, w, shape, "its output is (loc, raw) of z1, an even number")
    z1 = shape[1] // 2
    w, shape = first["mlp_latent_decoder"]
    _need(shape[0] == z2, ckpt, w, shape, f"its input is z2, of size {z2}")
    w, shape = last["mlp_latent_decoder"]
    _need(shape[1] == 2 * z1, ckpt, w, shape, f"its output is (loc, raw) of p(z1 | z2), 2 x {z1}")
    if len(nets["mlp_data_decoder"]) != 1:
        raise CheckpointError(f"TensorFlow checkpoint {ckpt.prefix}: mlp_data_decoder has "
                              f"{len(nets['mlp_data_decoder'])} layers; meiscope's TDVAE decodes with one linear "
                              "layer (x = W z1 + bias)")
    w, shape = first["mlp_data_decoder"]
    _need(shape == (z1, x_dim), ckpt, w, shape, f"the decoder maps z1 ({z1}) to x ({x_dim})")

    def hidden(module: str) -> list[int]:
        return [int(layer[1].shape[1]) for layer in nets[module][:-1]]

    return {"patch": patch, "h_dim": int(h), "z1_dim": int(z1), "z2_dim": int(z2),
            "enc_a_hidden": hidden("mlp_shared_encoder"), "enc_b_hidden": hidden("mlp_cluster_encoder"),
            "topdown_hidden": hidden("mlp_latent_encoder_y_to_concat"),
            "enc_d_hidden": hidden("mlp_latent_encoder_concat_to_z"), "prior_hidden": hidden("mlp_latent_decoder")}


def read_tf_tdvae(prefix: str | Path, name: str | None = None) -> ImportedTDVAE:
    """The TDVAE of a TensorFlow checkpoint, float32, in eval mode; a CheckpointError names what does not fit."""
    ckpt = TFCheckpoint(prefix)
    found = _find_layers(ckpt)
    nets = {module: _read_mlp(ckpt, module, found[module]) for module in MODULES}
    sizes = _sizes(ckpt, nets)
    model = TDVAE(**sizes, name=name)
    state: dict[str, torch.Tensor] = {}
    tensors: dict[str, str] = {}
    for module, ours in MODULES.items():
        for k, (w_name, w, b_name, b) in enumerate(nets[module]):
            key = ours if ours == "decoder" else f"{ours}.{2 * k}"  # Linear layers sit between the Softplus ones
            state[f"{key}.weight"] = torch.from_numpy(np.ascontiguousarray(w.T, dtype=np.float32))
            state[f"{key}.bias"] = torch.from_numpy(np.asarray(b, dtype=np.float32))
            tensors[f"{key}.weight"], tensors[f"{key}.bias"] = w_name, b_name
    check_shapes(model, state, f"{ckpt.prefix} ({describe_sizes(sizes)})")
    model.load_state_dict(state)
    steps = [n for n in ckpt.names() if STEP_KEY.search(n)]
    global_step = int(ckpt.read(steps[0]).reshape(-1)[0]) if len(steps) == 1 else None
    return ImportedTDVAE(model.eval(), ckpt.prefix, global_step, tensors, len(ckpt.entries) - len(tensors))


def provenance_text(imported: ImportedTDVAE) -> str:
    step = f"global step {imported.global_step:,}" if imported.global_step is not None else "no global step recorded"
    return (f"These weights were trained elsewhere, on other data than meiscope's, by {TRAINED_BY}; meiscope did not "
            f"train them. They were imported from the TensorFlow checkpoint `{imported.prefix}` ({step}) by "
            "`meiscope import tdvae`.")


def import_tdvae(prefix: str | Path, out: Path, name: str | None = None, data_params=None,
                 progress: bool = True) -> dict:
    """Write the TDVAE of a TensorFlow checkpoint in meiscope's release format (float16 shards with its sizes)
    into `out`, with a model card measured on meiscope's held-out natural patches; returns the card.
    data_params: the PatchSetParams of those patches (default: `meiscope data natural`'s defaults)."""
    from ..data.patches import PATCH, PatchSetParams  # local: reading a checkpoint needs none of the data code
    from ..presentation.card import write_card
    from ..reference.release import measure_release

    imported = read_tf_tdvae(prefix, name)
    if imported.model.patch > PATCH:  # before anything is written
        side = imported.model.patch
        raise CheckpointError(f"TensorFlow checkpoint {imported.prefix}: the model takes {side}x{side} patches, "
                              f"larger than meiscope's {PATCH}x{PATCH} data to measure it on")
    command = f"meiscope import tdvae {imported.prefix} --out {out}" + (f" --name '{name}'" if name else "")
    training = {
        "imported": True,
        "source": str(imported.prefix),
        "global_step": imported.global_step,
        "trained_by": TRAINED_BY,
        "format": "TensorFlow tensor bundle (Sonnet 1 MLP variables)",
        "n_tensors_read": len(imported.tensors),
        "n_tensors_skipped": imported.n_skipped,
        "tensors": imported.tensors,
        "assumptions": ASSUMPTIONS,
        "command": command,
    }
    card = measure_release(imported.model, Path(out), data_params or PatchSetParams(), training, [], progress,
                           provenance=provenance_text(imported))
    write_card(Path(out), card)
    return card
