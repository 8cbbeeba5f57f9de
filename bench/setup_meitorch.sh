#!/usr/bin/env bash
# A separate virtual environment for bench/bench_meitorch.py: the thesis' own package (meitorch 0.223 on
# PyPI) beside meiscope. meitorch declares torchvision, whose PyPI wheel does not import beside the CPU
# torch build, so it is installed without dependencies (the benchmark stubs the one torchvision class it
# uses) and kornia is pinned to 0.7.4 (newer versions reject meitorch's blur call).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv bench/.venv-meitorch
. bench/.venv-meitorch/bin/activate
pip install -q torch==2.13.0
pip install -q -e .
pip install -q --no-deps meitorch==0.223
pip install -q kornia==0.7.4
echo "ready: . bench/.venv-meitorch/bin/activate && python bench/bench_meitorch.py"
