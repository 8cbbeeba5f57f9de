import numpy as np
import pytest
import torch

from meiscope.model import TDVAE


@pytest.fixture(scope="session")
def random_model() -> TDVAE:
    """A randomly initialised TDVAE-40 (seeded), for tests that need the architecture, not the training."""
    torch.manual_seed(0)
    return TDVAE().eval()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
