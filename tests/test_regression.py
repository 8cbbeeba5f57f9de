"""The TDVAE through the model seam gives the arrays the engine gave before the seam went in
(tests/fixtures/regression, written by make_reference.py on the shipped model)."""

import json
from pathlib import Path

import numpy as np
import pytest

from meiscope import AMConfig, run

FIXTURES = Path(__file__).parent / "fixtures" / "regression"
CONFIGS = json.loads((FIXTURES / "configs.json").read_text())


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURES / "reference.npz") as f:
        return dict(f)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_arrays_as_before_the_seam(shipped, reference, name):
    r = run(shipped, AMConfig.model_validate(CONFIGS[name]))
    got = {"images": r.images, "best_images": r.best_images, **r.metrics,
           **{f"arrays/{k}": v for k, v in r.arrays.items()}}
    expected = {k.split("/", 1)[1]: v for k, v in reference.items() if k.startswith(name + "/")}
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        # float rounding only: a change of what is computed moves these by far more
        np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=1e-5, equal_nan=True, err_msg=f"{name}: {key}")
