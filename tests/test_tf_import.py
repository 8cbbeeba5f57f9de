"""Importing the paper's TensorFlow TDVAE checkpoints, checked against files written by real TensorFlow
(tests/fixtures/tf_tdvae/make_fixture.py; TensorFlow itself is not needed here)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from meiscope import load_model
from meiscope.cli import app
from meiscope.model import CheckpointError, TDVAE
from meiscope.model.checkpoint import DEFAULT_MODEL_DIR, read_manifest
from meiscope.model.tdvae import TDVAE_40_SIZES
from meiscope.importers.tf_import import read_tf_tdvae
from meiscope.importers.tfcheckpoint import TFCheckpoint, read_tf_checkpoint

FIXTURES = Path(__file__).parent / "fixtures" / "tf_tdvae"
PREFIX = FIXTURES / "tdvae-1235"
SIZES = {"patch": 4, "h_dim": 12, "z1_dim": 10, "z2_dim": 3, "enc_a_hidden": [], "enc_b_hidden": [8],
         "topdown_hidden": [6], "enc_d_hidden": [9], "prior_hidden": [7, 5]}
runner = CliRunner()


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURES / "expected.npz") as f:
        return {k: f[k] for k in f.files}


def _copy_checkpoint(src: Path, dst_dir: Path) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    for f in src.parent.glob(src.name + ".*"):
        shutil.copy(f, dst_dir / f.name)
    return dst_dir / src.name


# ---- the reader --------------------------------------------------------------------------------------------
def test_the_reader_returns_what_tensorflow_wrote(expected):
    arrays = read_tf_checkpoint(PREFIX)
    names = list(expected["var_names"])
    assert sorted(arrays) == names
    assert {"global_step", "beta1_power", "beta2_power", "mlp_shared_encoder/linear_0/w/Adam_1"} <= set(names)
    for i, name in enumerate(names):
        want = expected[f"var_{i:03d}"]
        assert arrays[name].dtype == want.dtype and arrays[name].shape == want.shape, name
        np.testing.assert_array_equal(arrays[name], want, err_msg=name)
    assert arrays["global_step"].dtype == np.int64 and int(arrays["global_step"]) == int(expected["global_step"])


def test_the_reader_takes_a_tf2_checkpoint_and_its_folder():
    ckpt = TFCheckpoint(FIXTURES / "tf2")  # a folder with a `checkpoint` state file
    assert ckpt.prefix.name == "ckpt-1"
    w = ckpt.read("model/mlp_shared_encoder/linear_0/w/.ATTRIBUTES/VARIABLE_VALUE")
    np.testing.assert_array_equal(w, read_tf_checkpoint(PREFIX)["mlp_shared_encoder/linear_0/w"])
    graph = ckpt.read("_CHECKPOINTABLE_OBJECT_GRAPH")  # a string tensor, CRC-checked
    assert graph.shape == () and isinstance(graph.item(), bytes) and len(graph.item()) > 100
    assert TFCheckpoint(Path(f"{PREFIX}.index")).prefix == PREFIX


def test_a_truncated_data_file_names_the_file_and_a_tensor(tmp_path):
    prefix = _copy_checkpoint(PREFIX, tmp_path)
    data = Path(f"{prefix}.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"data file .*tdvae-1235\.data-00000-of-00001 is truncated: tensor '"):
        read_tf_tdvae(prefix)


def test_a_missing_data_file_or_index_is_named(tmp_path):
    prefix = _copy_checkpoint(PREFIX, tmp_path)
    Path(f"{prefix}.data-00000-of-00001").unlink()
    with pytest.raises(CheckpointError, match=r"data file tdvae-1235\.data-00000-of-00001 is missing"):
        TFCheckpoint(prefix)
    with pytest.raises(CheckpointError, match=r"nowhere\.index is missing"):
        TFCheckpoint(tmp_path / "nowhere")


@pytest.mark.parametrize("keep, message", [(1000, "footer's magic number is wrong"),
                                           (20, "shorter than a table footer")])
def test_a_truncated_index_names_the_file(tmp_path, keep, message):
    prefix = _copy_checkpoint(PREFIX, tmp_path)
    index = Path(f"{prefix}.index")
    index.write_bytes(index.read_bytes()[:keep])
    with pytest.raises(CheckpointError, match=rf"index .*tdvae-1235\.index is truncated or corrupt: .*{message}"):
        TFCheckpoint(prefix)


def test_a_corrupt_index_block_or_tensor_fails_its_crc(tmp_path):
    prefix = _copy_checkpoint(PREFIX, tmp_path)
    index = Path(f"{prefix}.index")
    raw = bytearray(index.read_bytes())
    raw[100] ^= 0xFF  # inside the data block
    index.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="fails its CRC check"):
        TFCheckpoint(prefix)
    prefix = _copy_checkpoint(PREFIX, tmp_path / "data")
    ckpt = TFCheckpoint(prefix)
    entry = ckpt.entries["mlp_data_decoder/linear_0/w"]
    data = Path(f"{prefix}.data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[entry.offset + 3] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="tensor 'mlp_data_decoder/linear_0/w' fails its CRC check"):
        ckpt.read("mlp_data_decoder/linear_0/w")


# ---- the import --------------------------------------------------------------------------------------------
def test_the_import_reproduces_tensorflow(expected):
    imported = read_tf_tdvae(PREFIX)
    model = imported.model
    assert model.sizes == SIZES and imported.global_step == 1235
    assert imported.n_skipped == len(expected["var_names"]) - 22  # Adam slots, beta powers, global_step
    x = torch.from_numpy(expected["x"])
    noise = (torch.from_numpy(expected["eps"]), torch.from_numpy(expected["u"]))
    with torch.no_grad():
        mu2, s2 = model.z2_posterior(x)
        mu1, b1 = model.z1_posterior(x)  # at the z2 posterior mean
        terms = model.elbo_terms(x, noise=noise)
        got = {"mu2": mu2, "std2": s2, "mu1": mu1, "b1": b1, "log_lik": terms.log_lik, "kl_z1": terms.kl_z1,
               "kl_z2_units": terms.kl_z2_units, "reconstruction": model.reconstruct(x).reshape(len(x), -1)}
    for key, value in got.items():
        np.testing.assert_allclose(value.numpy(), expected[key], rtol=1e-5, atol=1e-5, err_msg=key)


def test_weights_are_transposed_into_our_nets():
    imported = read_tf_tdvae(PREFIX)
    arrays = read_tf_checkpoint(PREFIX)
    m = imported.model
    pairs = [("enc_a.0", "mlp_shared_encoder/linear_0"), ("enc_b.2", "mlp_cluster_encoder/linear_1"),
             ("topdown_c.2", "mlp_latent_encoder_y_to_concat/linear_1"),
             ("enc_d.0", "mlp_latent_encoder_concat_to_z/linear_0"), ("prior_e.4", "mlp_latent_decoder/linear_2"),
             ("decoder", "mlp_data_decoder/linear_0")]
    state = m.state_dict()
    for ours, theirs in pairs:
        np.testing.assert_array_equal(state[f"{ours}.weight"].numpy(), arrays[f"{theirs}/w"].T)
        np.testing.assert_array_equal(state[f"{ours}.bias"].numpy(), arrays[f"{theirs}/b"])
        assert imported.tensors[f"{ours}.weight"] == f"{theirs}/w"


def test_a_tf2_checkpoint_imports_to_the_same_model():
    a, b = read_tf_tdvae(PREFIX).model.state_dict(), read_tf_tdvae(FIXTURES / "tf2").model.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_a_missing_tensor_or_a_wrong_shape_is_named():
    with pytest.raises(CheckpointError, match=r"missing-7 lacks tensor mlp_cluster_encoder/linear_1/b"):
        read_tf_tdvae(FIXTURES / "missing-7")
    with pytest.raises(CheckpointError, match=r"tensor 'curl/mlp_latent_encoder_concat_to_z/linear_0/w' has shape "
                                              r"\(25, 9\): its input is \[h, g\], 24 = 2 x 12 rows"):
        read_tf_tdvae(FIXTURES / "badshape-7")


# ---- the command and the release format ----------------------------------------------------------------
def test_import_command_writes_a_release_that_loads(tmp_path, data_root, expected):
    out = tmp_path / "models" / "tiny"
    result = runner.invoke(app, ["import", "tdvae", str(PREFIX), "--out", str(out), "--name", "tiny TDVAE",
                                 "--n-train", "2048", "--n-heldout", "1024"])
    assert result.exit_code == 0, result.output
    assert "global step 1,235" in result.output
    manifest = read_manifest(out)
    assert manifest["sizes"] == SIZES and manifest["name"] == "tiny TDVAE" and manifest["dtype"] == "float16"
    model = load_model(out)
    assert model.name == "tiny TDVAE" and model.sizes == SIZES and model.input.shape == (1, 4, 4)
    assert [r["unit"] for r in model.census("z2")] == [0, 1, 2]  # the card's census, read by load_model
    x = torch.from_numpy(expected["x"])
    with torch.no_grad():
        np.testing.assert_allclose(model.z2_posterior(x)[0].numpy(), expected["mu2"], atol=0.05, rtol=0.05)
    card = json.loads((out / "model_card.json").read_text())
    t = card["training"]
    assert t["imported"] and t["global_step"] == 1235 and t["source"] == str(PREFIX)
    assert "trained elsewhere, on other data" in card["provenance"] and str(PREFIX) in card["provenance"]
    assert card["data"]["crop"] == 4 and card["metrics"]["heldout"]["n_patches"] == 1024
    text = (out / "MODEL_CARD.md").read_text()
    assert "# tiny TDVAE: model card" in text and "## Provenance" in text and "at global step 1,235" in text
    info = runner.invoke(app, ["info", "--model", str(out)])
    assert info.exit_code == 0, info.output
    assert "tiny TDVAE from" in info.output and "imported from" in info.output
    _serves(out, tmp_path)


def _serves(folder, tmp_path):
    """The imported model behind the dashboard's API: described as what it is, and runs to completion."""
    import time

    from fastapi.testclient import TestClient

    from meiscope.server.app import create_app

    with TestClient(create_app(str(folder), runs_dir=tmp_path / "runs", cache_dir=None)) as client:
        described = client.get("/api/model").json()
        assert described["name"] == "tiny TDVAE" and described["input"]["shape"] == [1, 4, 4]
        assert [layer["units"] for layer in described["layers"]] == [3, 10] and described["has_elbo"]
        assert len(client.get("/api/units").json()) == 3
        assert client.post("/api/runs", json={"unit": 5, "steps": 5}).status_code == 422  # z2 has 3 units
        run_id = client.post("/api/runs", json={"unit": 2, "steps": 20, "obj": {"elbo_weight": 0.1},
                                                "method": "latent_z2"}).json()["run_id"]
        deadline = time.monotonic() + 60
        while (body := client.get(f"/api/runs/{run_id}").json())["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert body["status"] == "completed", body


@pytest.mark.parametrize("target, message", [("missing-7", "lacks tensor mlp_cluster_encoder/linear_1/b"),
                                             ("nothing-here", "nothing-here.index is missing")])
def test_import_command_errors_are_one_line_exit_2(tmp_path, target, message):
    result = runner.invoke(app, ["import", "tdvae", str(FIXTURES / target), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


# ---- TDVAE-40 is unchanged ---------------------------------------------------------------------------------
def test_the_default_tdvae_is_tdvae_40():
    model = TDVAE()
    assert model.name == "TDVAE-40" and model.sizes == TDVAE_40_SIZES
    shapes = read_manifest(DEFAULT_MODEL_DIR)["shapes"]  # the shipped model, written before sizes were recorded
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == shapes
    assert "sizes" not in read_manifest(DEFAULT_MODEL_DIR)
    other = TDVAE(**SIZES)
    assert other.name == "TDVAE (x 16, z1 10, z2 3)" and other.layers["z2"].units == 3


def test_the_shipped_model_loads_as_tdvae_40_with_its_census(shipped):
    assert shipped.name == "TDVAE-40" and shipped.sizes == TDVAE_40_SIZES
    assert len(shipped.census("z2")) == 250


def test_shape_errors_say_the_sizes(tmp_path):
    from meiscope.model.checkpoint import check_shapes

    model = TDVAE(**SIZES)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["decoder.bias"] = torch.zeros(15)
    with pytest.raises(CheckpointError, match=r"decoder.bias.*\(15,\), TDVAE \(x 16, z1 10, z2 3\) "
                                              r"\(x 16, h 12, z1 10, z2 3\) needs \(16,\)"):
        check_shapes(model, state, "here")
