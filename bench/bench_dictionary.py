"""The recipe's dictionary stage: its methods compared on the same whitened training patches, printed as
one table (Gabor share of the 200 largest atoms, pixel variance explained on held-out patches by the
linear code and by the MAP sparse code under the model's objective, time). Results go into
docs/TRAINING.md by hand.

    python bench/bench_dictionary.py                                  # ICA and sparse coding, 40,000 patches
    python bench/bench_dictionary.py --ica runs/recipe/1-dictionary   # reuse a fitted ICA (its recorded time)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from meiscope.data.patches import build_natural
from meiscope.reference.dictionary import (Dictionary, fit_ica, fit_sparse_coding, gabor_share, patches_for_dictionary,
                                       reconstruction_r2)


def row(name: str, d: Dictionary, heldout) -> str:
    share, median = gabor_share(d.atoms)
    r = reconstruction_r2(d, heldout)
    return (f"| {name} | {d.n_atoms} | {d.seconds:.0f} | {share:.0%} | {median:.2f} | {r['linear_r2']:.3f} | "
            f"{r['map_r2']:.3f} | {r['map_fraction_zero']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=40_000)
    parser.add_argument("--heldout", type=int, default=2048)
    parser.add_argument("--ica", type=Path, default=None, help="a fitted ICA dictionary folder to reuse")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    data = build_natural()
    x = patches_for_dictionary(data.train, args.patches)
    heldout = patches_for_dictionary(data.heldout, args.heldout)
    ica = Dictionary.load(args.ica) if args.ica else fit_ica(x)
    print("| method | atoms | seconds | Gabor-like (R² >= 0.7) | median R² | linear-code R² | MAP-code R² | MAP zeros |")
    print("|---|---|---|---|---|---|---|---|")
    print(row("ICA on the signal subspace", ica, heldout), flush=True)
    sc = fit_sparse_coding(x, epochs=args.epochs, progress=True)
    print(row(f"sparse coding, random start ({args.epochs} epochs)", sc, heldout), flush=True)
    refined = fit_sparse_coding(x, init=ica, epochs=args.epochs, progress=True)
    print(row(f"sparse coding from the ICA atoms ({args.epochs} epochs)", refined, heldout), flush=True)


if __name__ == "__main__":
    main()
