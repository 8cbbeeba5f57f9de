"""Stage 1 of the training recipe: a sparse dictionary for W, learned directly from whitened patches.

The TDVAE's generative side is a sparse linear model: x = W z1 + bias + N(0, 0.4^2) noise with Laplace
codes. Its localised, oriented columns are cheap to find by the classic methods of sparse-coding work and
slow to find by gradient descent through the amortised encoder, so the recipe finds them first:

- "ica": FastICA (scikit-learn) on the principal subspace that carries signal, i.e. the covariance
  eigenvalues above the observation noise variance. Sources have unit variance; the atoms are scaled so
  that the codes have the Laplace prior's variance (2 for scale 1).
- "ica_refined": the ICA atoms refined and completed to all 1800 columns by one epoch of sparse coding.
- "sparse_coding": Olshausen-Field sparse coding: MAP codes under the model's own objective
  (||x - W z||^2 / (2 sigma^2) + sum |z|) by batched FISTA in torch, atoms updated by online dictionary
  learning and finally scaled so that their codes have the prior's mean magnitude. Starts from random
  atoms, or refines another dictionary (for example the ICA one) towards the full overcomplete size.

A dictionary also gives the encoder a start (`initialise_model`): codes = filters (x - mean) pass through
nets a and d unchanged (softplus(u) - softplus(-u) = u), so the posterior mean starts at the dictionary's
linear code and nets a-e then learn the rest on the ELBO.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from ..model.checkpoint import atomic_save_file, atomic_write_text
from ..model.tdvae import H_DIM, OBS_STD, TDVAE, Z1_DIM

LAPLACE_VAR = 2.0  # variance of the z1 prior Laplace(0, 1)
METHODS = ("ica", "sparse_coding", "ica_refined")
ENCODER_STARTS = ("energy", "signed", "random")
SIGNED_OFFSET = 8.0  # softplus(u + 8) - 8 differs from u by < 0.01 for u > -3.4 (a code's Laplace(0, 1) tail)
DICTIONARY_FILE = "dictionary.safetensors"
DICTIONARY_META = "dictionary.json"


@dataclass
class Dictionary:
    """atoms: (1600, K) columns of W; filters: (K, 1600) with codes = filters @ (x - mean)."""

    atoms: np.ndarray
    filters: np.ndarray
    mean: np.ndarray
    method: str
    seconds: float
    info: dict

    @property
    def n_atoms(self) -> int:
        return self.atoms.shape[1]

    def codes(self, patches: np.ndarray) -> np.ndarray:
        return (as_matrix(patches) - self.mean) @ self.filters.T

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {name: torch.from_numpy(np.ascontiguousarray(getattr(self, name), dtype=np.float32))
                   for name in ("atoms", "filters", "mean")}
        atomic_save_file(tensors, folder / DICTIONARY_FILE)
        meta = {"method": self.method, "seconds": self.seconds, "n_atoms": self.n_atoms, **self.info}
        atomic_write_text(folder / DICTIONARY_META, json.dumps(meta, indent=2))  # written last: marks it complete

    @classmethod
    def load(cls, folder: Path) -> "Dictionary":
        folder = Path(folder)
        meta_path = folder / DICTIONARY_META
        if not meta_path.is_file():
            raise FileNotFoundError(f"no dictionary at {folder} ({DICTIONARY_META} is missing)")
        meta = json.loads(meta_path.read_text())
        t = load_file(str(folder / DICTIONARY_FILE))
        info = {k: v for k, v in meta.items() if k not in ("method", "seconds", "n_atoms")}
        return cls(t["atoms"].double().numpy(), t["filters"].double().numpy(), t["mean"].double().numpy(),
                   meta["method"], meta["seconds"], info)


def as_matrix(patches: np.ndarray) -> np.ndarray:
    return np.asarray(patches, dtype=np.float64).reshape(len(patches), -1)


def signal_dimensions(patches: np.ndarray, noise_var: float = OBS_STD**2) -> int:
    """How many covariance eigenvalues of the patches lie above the observation noise variance."""
    from ..analysis.baselines import covariance

    return int((np.linalg.eigvalsh(covariance(patches)[1]) > noise_var).sum())


def fit_ica(patches: np.ndarray, n_components: int | None = None, seed: int = 0, max_iter: int = 400,
            tol: float = 1e-4) -> Dictionary:
    """FastICA on the principal subspace of `n_components` dimensions (default: the signal dimensions)."""
    from sklearn.decomposition import FastICA

    x = as_matrix(patches)
    t0 = time.perf_counter()
    k = signal_dimensions(x) if n_components is None else int(n_components)
    ica = FastICA(n_components=k, whiten="unit-variance", whiten_solver="eigh", fun="logcosh", max_iter=max_iter,
                  tol=tol, random_state=seed)
    ica.fit(x)
    scale = math.sqrt(LAPLACE_VAR)  # unit-variance sources -> codes with the prior's variance
    atoms = ica.mixing_ / scale
    filters = ica.components_ * scale
    return Dictionary(atoms, filters, ica.mean_, "ica", time.perf_counter() - t0,
                      {"n_patches": len(x), "iterations": int(ica.n_iter_), "seed": seed})


def fista(x: torch.Tensor, atoms: torch.Tensor, lam: float, iters: int) -> torch.Tensor:
    """MAP codes argmin_z 1/2 ||x - z A^T||^2 + lam ||z||_1 for a batch x (B, D), atoms A (D, K)."""
    gram = atoms.T @ atoms
    step = 1.0 / float(torch.linalg.matrix_norm(gram, ord=2))
    xa = x @ atoms
    z = torch.zeros(len(x), atoms.shape[1], dtype=x.dtype)
    y, t = z, 1.0
    for _ in range(iters):
        grad = y @ gram - xa
        z_next = torch.nn.functional.softshrink(y - step * grad, lam * step)
        t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y = z_next + ((t - 1.0) / t_next) * (z_next - z)
        z, t = z_next, t_next
    return z


def fit_sparse_coding(patches: np.ndarray, n_atoms: int = Z1_DIM, init: Dictionary | None = None, seed: int = 0,
                      epochs: int = 2, batch: int = 256, fista_iters: int = 60, forget: float = 0.9,
                      block_size: int = 16, noise_var: float = OBS_STD**2, progress: bool = False) -> Dictionary:
    """Olshausen-Field sparse coding under the model's own objective (Laplace(0, 1) codes, noise_var).

    Atoms are learned at unit norm with the L1 weight noise_var / g, g the atom norm at which Laplace(0, 1)
    codes carry the data's signal variance. The atoms follow online dictionary learning (Mairal et al.
    2009): running sums of z z^T and x z^T (older batches down-weighted by `forget`) and one sweep of block
    coordinate descent per batch. At the end each atom is scaled by its mean
    |code|, so that the codes have the prior's mean magnitude of 1."""
    from tqdm import tqdm

    x_all = as_matrix(patches)
    t0 = time.perf_counter()
    mean = x_all.mean(0)
    x_all = torch.from_numpy((x_all - mean).astype(np.float32))
    gen = torch.Generator().manual_seed(seed)
    atoms = torch.randn(x_all.shape[1], n_atoms, generator=gen)
    if init is not None:  # start from another dictionary; the atoms it lacks start random
        k = min(init.n_atoms, n_atoms)
        atoms[:, :k] = torch.from_numpy(init.atoms[:, :k].astype(np.float32))
    atoms /= atoms.norm(dim=0)
    signal = float(x_all.var(0).sum()) - noise_var * x_all.shape[1]
    gain = math.sqrt(max(signal, 1e-6) / (LAPLACE_VAR * n_atoms))
    lam = noise_var / gain
    n_batches = max(1, len(x_all) // batch)
    bar = tqdm(total=epochs * n_batches, desc="sparse coding", disable=not progress, unit="batch")
    magnitude = torch.zeros(n_atoms)
    zz = torch.zeros(n_atoms, n_atoms)  # running sums of z z^T and x z^T (online dictionary learning)
    xz = torch.zeros(x_all.shape[1], n_atoms)
    for epoch in range(epochs):
        order = torch.randperm(len(x_all), generator=gen)
        if epoch == epochs - 1:
            magnitude.zero_()
        for b in range(n_batches):
            xb = x_all[order[b * batch : (b + 1) * batch]]
            z = fista(xb, atoms, lam, fista_iters)
            zz.mul_(forget).add_(z.T @ z)
            xz.mul_(forget).add_(xb.T @ z)
            for block in torch.randperm(n_atoms, generator=gen).split(block_size):
                # one sweep of block coordinate descent: each atom's least-squares update given the others
                # (simultaneous within a block of a few random atoms), then back on the unit sphere
                diag = zz[block, block].clamp_min(1e-9)
                atoms[:, block] += (xz[:, block] - atoms @ zz[:, block]) / diag
                atoms[:, block] /= atoms[:, block].norm(dim=0).clamp_min(1e-8)
            if epoch == epochs - 1:
                magnitude += z.abs().sum(0)
            bar.update(1)
    bar.close()
    magnitude /= (n_batches * batch)
    used = magnitude > 0
    scale = torch.where(used, magnitude, 0.05 * gain)  # an atom that no code used stays small
    atoms_np = (atoms * scale).double().numpy()
    filters = linear_code_filters(atoms_np)  # a linear code for the encoder's start; MAP codes are sparser
    return Dictionary(atoms_np, filters, mean, "sparse_coding", time.perf_counter() - t0,
                      {"n_patches": len(x_all), "epochs": epochs, "fista_iters": fista_iters, "seed": seed,
                       "n_unused": int((~used).sum()), "init": None if init is None else init.method})


def linear_code_filters(atoms: np.ndarray, noise_var: float = OBS_STD**2, prior_var: float = LAPLACE_VAR) -> np.ndarray:
    """The best linear code of an overcomplete dictionary under the model's noise: the posterior mean of codes with
    the prior's variance, F = v A^T (v A A^T + noise_var I)^-1. The pseudo-inverse would be exact without noise,
    but with many small atoms its filters reach norms in the thousands and the codes it gives are mostly noise."""
    gram = prior_var * atoms @ atoms.T + noise_var * np.eye(atoms.shape[0])
    return prior_var * np.linalg.solve(gram, atoms).T


def dictionary_command(method: str, patches: int, seed: int, out: Path) -> str:
    """The `meiscope dictionary` command that fits this dictionary, for its record."""
    return f"meiscope dictionary --method {method} --patches {patches} --seed {seed} --out {out}"


def refine_ica(patches: np.ndarray, ica: Dictionary | None = None, n_atoms: int = Z1_DIM, seed: int = 0,
               epochs: int = 1, progress: bool = False) -> Dictionary:
    """ICA's atoms (fitted here unless given) completed to n_atoms and refined by sparse coding: every column of W
    gets an atom, where ICA gives at most the signal dimensions."""
    ica = fit_ica(patches, seed=seed) if ica is None else ica
    refined = fit_sparse_coding(patches, n_atoms=n_atoms, init=ica, seed=seed, epochs=epochs, progress=progress)
    refined.method, refined.seconds = "ica_refined", ica.seconds + refined.seconds
    refined.info.update(ica_atoms=ica.n_atoms, ica_seconds=ica.seconds)
    return refined


def fit_dictionary(method: str, patches: np.ndarray, seed: int = 0, progress: bool = False, **kw) -> Dictionary:
    if method == "ica":
        return fit_ica(patches, seed=seed, **kw)
    if method == "sparse_coding":
        return fit_sparse_coding(patches, seed=seed, progress=progress, **kw)
    if method == "ica_refined":
        return refine_ica(patches, seed=seed, progress=progress, **kw)
    raise ValueError(f"dictionary method must be one of {METHODS}, got {method!r}")


# ---- quality of a dictionary ---------------------------------------------------------------------------
def gabor_share(atoms: np.ndarray, n: int = 200, threshold: float = 0.7) -> tuple[float, float]:
    """Share of the n largest-norm atoms that a 2-D Gabor fits with R^2 >= threshold, and the median R^2."""
    from .evaluate import column_fits

    r2 = np.array([fit["r2"] for fit in column_fits(atoms, n)])
    return float((r2 >= threshold).mean()), float(np.median(r2))


def reconstruction_r2(dictionary: Dictionary, patches: np.ndarray, noise_var: float = OBS_STD**2,
                      fista_iters: int = 100) -> dict:
    """Pixel variance explained by the linear code and by the MAP (sparse) code, and the MAP code's sparsity."""
    x = as_matrix(patches)
    xc = torch.from_numpy((x - dictionary.mean).astype(np.float32))
    atoms = torch.from_numpy(dictionary.atoms.astype(np.float32))
    sst = float(((x - x.mean()) ** 2).sum())
    linear = torch.from_numpy(dictionary.codes(x).astype(np.float32)) @ atoms.T
    z = fista(xc, atoms, noise_var, fista_iters)
    return {"linear_r2": 1.0 - float((xc - linear).double().square().sum()) / sst,
            "map_r2": 1.0 - float((xc - z @ atoms.T).double().square().sum()) / sst,
            "map_fraction_zero": float((z == 0).double().mean())}


# ---- the model's start -----------------------------------------------------------------------------------
@torch.no_grad()
def initialise_model(model: TDVAE, dictionary: Dictionary, start: str = "energy", spare_scale: float = 0.05) -> TDVAE:
    """Write the dictionary into W and start the encoder by `start`:

    - "energy": net a's first K units read softplus(code), the next K softplus(-code) (their sum is each filter's
      local energy); net d's hidden layer does the same on their difference and its mean output is the
      difference again, so mu1 = code. Net a has room for the codes of 1000 atoms: a larger dictionary goes
      into W largest first, the others' posteriors start at the prior.
    - "signed": one unit of net a per atom reads softplus(code + 8), net d passes it on and subtracts the 8:
      mu1 = code for up to 2000 atoms, and net a carries the signed codes only (no energies).
    - "random": the encoder keeps PyTorch's random start; only W and its bias come from the dictionary.

    Posterior scales of the passed-through units start at sigma * |filter| / sqrt(2) (the linear code's noise, as
    a Laplace scale), the prior p(z1 | z2) at Laplace(0, 1). Columns of W beyond the dictionary keep PyTorch's
    random start, shrunk by `spare_scale`."""
    if start not in ENCODER_STARTS:
        raise ValueError(f"encoder start must be one of {ENCODER_STARTS}, got {start!r}")
    n = dictionary.n_atoms
    if n > Z1_DIM:
        raise ValueError(f"a dictionary of {n} atoms does not fit the {Z1_DIM} columns of W")
    k = min(n, H_DIM // 2 if start == "energy" else H_DIM)  # the atoms whose codes pass through
    by_norm = np.argsort(-np.linalg.norm(dictionary.atoms, axis=0), kind="stable") if n > k else np.arange(n)
    order = torch.from_numpy(by_norm.copy())
    model.decoder.weight[:, n:] *= spare_scale
    model.decoder.weight[:, :n] = torch.from_numpy(dictionary.atoms).float()[:, order]
    mean = torch.from_numpy(dictionary.mean).float()
    model.decoder.bias.copy_(mean)
    if start == "random":
        return model
    filters = torch.from_numpy(dictionary.filters).float()[order[:k]]
    a = model.enc_a[0]  # x -> h, softplus after
    d1, d2 = model.enc_d[0], model.enc_d[2]  # (h, g) -> hidden (softplus) -> (mu1, raw1)
    eye = torch.eye(k)
    d2.weight.zero_()
    d2.bias.zero_()
    if start == "energy":
        a.weight[:k], a.bias[:k] = filters, -(filters @ mean)
        a.weight[k : 2 * k], a.bias[k : 2 * k] = -filters, filters @ mean
        d1.weight[: 2 * k] = 0.0
        d1.bias[: 2 * k] = 0.0
        d1.weight[:k, :k], d1.weight[:k, k : 2 * k] = eye, -eye
        d1.weight[k : 2 * k, :k], d1.weight[k : 2 * k, k : 2 * k] = -eye, eye
        d2.weight[:k, :k], d2.weight[:k, k : 2 * k] = eye, -eye
    else:  # signed: softplus(softplus(code + c)) - c = code while code + c >> 1
        a.weight[:k], a.bias[:k] = filters, SIGNED_OFFSET - filters @ mean
        d1.weight[:k] = 0.0
        d1.bias[:k] = 0.0
        d1.weight[:k, :k] = eye
        d2.weight[:k, :k] = eye
        d2.bias[:k] = -SIGNED_OFFSET
    b0 = OBS_STD * filters.norm(dim=1) / math.sqrt(2.0)
    d2.bias[Z1_DIM : Z1_DIM + k] = 2.0 * torch.log(b0)  # raw = 2 log b

    e2 = model.prior_e[2]  # z2 -> hidden -> (pmu1, praw1): Laplace(0, 1), weakly dependent on z2 at first
    e2.weight.mul_(0.1)
    e2.bias.zero_()
    return model


def patches_for_dictionary(train: np.ndarray, n: int) -> np.ndarray:
    """The first n training patches (the set is shuffled when built), as float64 in memory."""
    if n > len(train):
        raise ValueError(f"the dictionary wants {n} patches, the training set has {len(train)}")
    return as_matrix(train[:n])

