import numpy as np
import pytest
import torch

from meiscope import load_model
from meiscope.model import DEFAULT_MODEL_DIR, TDVAE
from meiscope.presentation.card import read_card


@pytest.fixture(scope="session")
def random_model() -> TDVAE:
    """A randomly initialised TDVAE-40 (seeded), for tests that need the architecture, not the training."""
    torch.manual_seed(0)
    return TDVAE().eval()


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty data folder for this test (small patch sets are built into it)."""
    monkeypatch.setenv("MEISCOPE_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def shipped() -> TDVAE:
    """The shipped reference checkpoint (float16 shards loaded as float32)."""
    return load_model()


@pytest.fixture(scope="session")
def card() -> dict:
    return read_card(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="session")
def top_units(card) -> list[dict]:
    """Census records of the three z2 units with the largest mean KL on held-out data."""
    return sorted(card["metrics"]["units"]["census"], key=lambda r: -r["mean_kl"])[:3]
