"""Sharded safetensors checkpoints: round trip, and a clear refusal of missing, corrupt or wrong files."""

import json

import pytest
import torch
from safetensors.torch import save_file

from meiscope.model import CheckpointError, load_model, save_sharded
from meiscope.model.checkpoint import MAX_SHARD_BYTES


@pytest.fixture(scope="module")
def saved(tmp_path_factory, random_model):
    folder = tmp_path_factory.mktemp("ckpt")
    manifest = save_sharded(random_model, folder)
    return folder, manifest


def test_round_trip_in_float16(saved, random_model):
    folder, manifest = saved
    assert all((folder / e["file"]).stat().st_size <= MAX_SHARD_BYTES + 4096 for e in manifest["shards"])
    loaded = load_model(folder)
    for name, p in random_model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], p.half().float())
    x = torch.randn(2, 1600)
    torch.testing.assert_close(loaded.z2_posterior(x)[0], random_model.z2_posterior(x)[0], atol=2e-2, rtol=2e-2)


def _copy(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="manifest.json is missing"):
        load_model(tmp_path / "nowhere")


def test_corrupt_shard_is_refused(saved, tmp_path):
    folder, manifest = saved
    bad = _copy(folder, tmp_path / "bad")
    shard = bad / manifest["shards"][1]["file"]
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{shard.name} is corrupt"):
        load_model(bad)


def test_truncated_shard_is_refused_even_without_hash_check(saved, tmp_path):
    folder, manifest = saved
    bad = _copy(folder, tmp_path / "trunc")
    shard = bad / manifest["shards"][0]["file"]
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(bad)
    from meiscope.model.checkpoint import load_sharded_state

    with pytest.raises(CheckpointError, match="cannot be read"):
        load_sharded_state(bad, verify=False)


def test_wrong_shape_is_refused(saved, tmp_path):
    folder, manifest = saved
    bad = _copy(folder, tmp_path / "shape")
    entry = next(e for e in manifest["shards"] if "decoder.bias" in e["tensors"])
    path = bad / entry["file"]
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    tensors["decoder.bias"] = torch.zeros(1599, dtype=torch.float16)
    save_file(tensors, str(path))
    new_manifest = json.loads((bad / "manifest.json").read_text())
    from meiscope.model.checkpoint import sha256_file

    for e in new_manifest["shards"]:
        e["sha256"] = sha256_file(bad / e["file"])
    (bad / "manifest.json").write_text(json.dumps(new_manifest))
    with pytest.raises(CheckpointError, match=r"decoder.bias.*\(1599,\).*\(1600,\)"):
        load_model(bad)


def test_garbled_manifest_is_refused(saved, tmp_path):
    folder, _ = saved
    bad = _copy(folder, tmp_path / "manifest")
    (bad / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt model manifest"):
        load_model(bad)
