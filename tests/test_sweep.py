"""Sweeps: spec expansion, the per-unit store keyed by config hash, resuming, the summary and sheets, and the
`meiscope sweep` command."""

import csv
import json
import sys
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from meiscope import AMConfig, run
from meiscope.cli import app
from meiscope.engine.options import ConfigError
from meiscope.engine.presets import PLAIN
from meiscope.sweep import SweepSpec, SweepStore, expand, plan, read_spec, run_sweep
from meiscope.sweep.spec import config_hash, run_id, unit_config
from meiscope.sweep.store import join_units, split_by_unit

# the regularisers off at lr 0.01 (a short unregularised transform at the default lr 0.03 reaches values of 30,
# where a batched and a single run part by float rounding beyond the comparison's 1e-3)
BASE = {**PLAIN, "steps": 4, "elbo_every": 2, "snapshot_every": 2}
runner = CliRunner()


def spec(**kw) -> SweepSpec:
    return SweepSpec(**{"name": "t", "base": BASE, "axes": {"grad.gamma": [0, 1.0]}, "units": [51, 3], **kw})


def test_axes_expand_to_the_cartesian_product_of_validated_configs(shipped):
    e = expand(spec(axes={"steps": {"range": [50, 200, 50]}, "optimizer.lr": {"geomspace": [0.001, 0.1, 3]},
                          "optimizer.name": ["mei", "adam"]}, units="active"), shipped)
    assert e.axes["steps"] == [50, 100, 150, 200] and e.axes["optimizer.lr"] == [0.001, 0.01, 0.1]
    assert len(e.points) == 4 * 3 * 2 and e.n_runs == 24 * len(e.units)
    active = [r["unit"] for r in shipped.census("z2") if r["status"] == "active"]
    assert e.units == active
    last = e.points[-1].config  # the last axis varies fastest
    assert (last.steps, last.optimizer.lr, last.optimizer.name, last.units) == (200, 0.1, "adam", active)
    assert e.points[1].values == {"steps": 50, "optimizer.lr": 0.001, "optimizer.name": "adam"}
    assert expand(spec(axes={"pre.scale": {"linspace": [0, 0.3, 4]}}), shipped).axes["pre.scale"] == [0, 0.1, 0.2, 0.3]
    assert expand(spec(units="2,5-7"), shipped).units == [2, 5, 6, 7]
    assert expand(spec(units=[1, "4-5"]), shipped).units == [1, 4, 5]
    assert len(expand(spec(units="all", axes={}), shipped).units) == 250


@pytest.mark.parametrize("kw, message", [
    ({"axes": {"grad.gamma": [0, 9]}}, "axis grad.gamma = 9: grad.gamma: must lie in [0, 4]"),
    ({"axes": {"optimizer.lrr": [0.1]}}, "axis optimizer.lrr"),
    ({"axes": {"steps": {"range": [10, 20]}}}, "axis steps: range takes [start, stop, step]"),
    ({"axes": {"steps": {"arange": [1, 2, 3]}}}, "axis steps: give a list"),
    ({"axes": {"seed": [1, 1]}}, "axis seed: values repeat"),
    ({"axes": {"seed": {"range": [0, 1e9, 1]}}}, "axis seed: range gives 1000000001 values, at most 1000"),
    ({"axes": {"seed": {"range": [0, 999, 1]}, "steps": {"range": [1, 100, 1]}}}, "= 100000 grid points"),
    ({"axes": {"unit": [1, 2]}}, "unit: a sweep's targets are its `units`"),
    ({"base": {"steps": 0}}, "base: steps"),
    ({"units": [300]}, "units: unit: must lie in 0..249 for layer z2, got [300]"),
    ({"units": "texture-sensitive"}, "lists no texture-sensitive units"),
    ({"units": "x"}, "units: expected indices"),
    ({"name": "../up"}, "name: '../up' must match"),
])
def test_a_bad_spec_names_what_is_wrong(shipped, kw, message, monkeypatch):
    # a census with no texture-sensitive unit, whatever the shipped model's has
    census = [{**r, "texture_sensitive": False} for r in shipped.census("z2")]
    monkeypatch.setattr(shipped, "unit_census", {"z2": census})
    with pytest.raises(ConfigError) as exc:
        expand(spec(**kw), shipped)
    assert message in str(exc.value)


def test_the_config_hash_is_the_canonical_json_of_the_single_unit_config():
    a = AMConfig(unit=[3, 5], steps=7, optimizer={"lr": 0.05})
    b = AMConfig.model_validate(json.loads(json.dumps({"optimizer": {"lr": 0.05}, "steps": 7, "unit": [3, 5]})))
    assert config_hash(a) == config_hash(b) and len(run_id(a)) == 16
    assert unit_config(a, 5).unit == 5 and run_id(unit_config(a, 3)) != run_id(unit_config(a, 5))
    assert run_id(a.model_copy(update={"seed": 1})) != run_id(a)


def test_a_batched_run_splits_into_the_single_unit_runs_and_joins_back(shipped):
    config = AMConfig(unit=[51, 3], method="transform", samples=2, **BASE)
    batched = run(shipped, config)
    parts = split_by_unit(batched)
    single = run(shipped, unit_config(config, 3))
    assert parts[3].config == single.config and parts[3].rows == single.rows
    np.testing.assert_allclose(parts[3].images, single.images, atol=1e-3)
    np.testing.assert_allclose(parts[3].arrays["kernels"], single.arrays["kernels"], atol=1e-3)
    assert parts[3].snapshots.shape == single.snapshots.shape
    joined = join_units([parts[51], parts[3]])
    assert joined.config == config and np.array_equal(joined.images, batched.images)
    assert all(np.array_equal(joined.metrics[k], batched.metrics[k], equal_nan=True) for k in batched.metrics)


def test_a_local_sweep_stores_summarises_draws_sheets_and_resumes(shipped, tmp_path):
    e = expand(spec(axes={"grad.gamma": [0, 1.0], "optimizer.name": ["rmsprop", "mei"]}), shipped)
    result = run_sweep(e, root=tmp_path, model=shipped, formats=("png", "svg"), progress=False)
    assert (result.total, result.skipped, result.stored, result.errors) == (8, 0, 8, [])
    folder = tmp_path / "t"
    assert {"grad_gamma.png", "grad_gamma.svg", "optimizer_name.png"} <= {p.name for p in (folder / "sheets").iterdir()}
    with open(folder / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and list(rows[0])[:3] == ["grad.gamma", "optimizer.name", "unit"]
    row = next(r for r in rows if r["grad.gamma"] == "1.0" and r["optimizer.name"] == "mei" and r["unit"] == "3")
    stored = SweepStore(tmp_path, "t").load(row["run_id"])
    assert stored.config.unit == 3 and stored.config.optimizer.name == "mei" and stored.config.grad.gamma == 1.0
    assert float(row["final_activation"]) == pytest.approx(float(stored.final_activation[0]))
    np.testing.assert_allclose(stored.images, run(shipped, stored.config).images, atol=1e-3)  # = its own run
    assert float(row["best_activation"]) >= float(row["final_activation"])
    summary = json.loads((folder / "summary.json").read_text())
    assert len(summary["rows"]) == 8 and summary["columns"][-1] == "run_id"
    manifest = json.loads((folder / "sweep.json").read_text())
    assert manifest["axes"]["optimizer.name"] == ["rmsprop", "mei"] and len(manifest["points"]) == 4

    # resumed with more units and another batch size: only the new unit runs, nothing stored is rewritten
    mtimes = {p.name: p.stat().st_mtime_ns for p in (folder / "runs").glob("*/*")}
    bigger = expand(spec(axes={"grad.gamma": [0, 1.0], "optimizer.name": ["rmsprop", "mei"]}, units=[51, 3, 7]), shipped)
    assert [t.config.units for t in plan(bigger, SweepStore(tmp_path, "t"), batch_size=1)] == [[7]] * 4
    again = run_sweep(bigger, root=tmp_path, model=shipped, batch_size=1, formats=("png",), progress=False)
    assert (again.total, again.skipped, again.stored) == (12, 8, 4)
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "runs").glob("*/*") if p.name in mtimes} == mtimes
    grid = SweepStore(tmp_path, "t").grid()
    assert grid["images"].shape == (4, 3, 40, 40) and np.isfinite(grid["activation"]).all()


def test_the_sweep_command_runs_resumes_and_rejects_a_bad_axis_without_ray(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # any `import ray` now fails: the local path must not need it
    path = tmp_path / "g.yaml"
    path.write_text("base: {steps: 3, elbo_every: 0}\naxes:\n  seed: {range: [0, 1, 1]}\nunits: '51'\n")
    out = tmp_path / "sweeps"
    first = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--formats", "png"])
    assert first.exit_code == 0, first.output
    assert "2 config(s) x 1 unit(s) = 2 runs; 0 stored, 2 to run" in first.output
    assert (out / "g" / "sheets" / "seed.png").is_file()
    second = runner.invoke(app, ["sweep", str(path), "--out", str(out)])
    assert "2 stored, 0 to run" in second.output and second.exit_code == 0
    listing = runner.invoke(app, ["sweeps", "--out", str(out)])
    assert "g: 1 units x seed (2); 2/2 runs stored" in listing.output
    exported = runner.invoke(app, ["export", str(out / "g"), "--out", str(tmp_path / "g.zip")])
    assert exported.exit_code == 0 and "sweep g" in exported.output
    with zipfile.ZipFile(tmp_path / "g.zip") as zf:
        assert {"summary.csv", "sheets/seed.png", "p01_seed=1/config.json"} <= set(zf.namelist())

    path.write_text("axes: {optimizer.lr: [0.01, 500]}\nunits: [1]\n")
    bad = runner.invoke(app, ["sweep", str(path), "--out", str(out)])
    assert bad.exit_code == 2 and bad.output.strip().splitlines() == [
        "error: axis optimizer.lr = 500: optimizer.lr: must lie in [1e-06, 100], got 500"]
    assert not (out / "bad").exists()
    missing = runner.invoke(app, ["sweep", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_read_spec_takes_the_name_from_the_file(tmp_path):
    path = tmp_path / "kernel-sizes.yaml"
    path.write_text("axes: {transform.kernel_size: [5, 9]}\nunits: [1]\n")
    assert read_spec(path).name == "kernel-sizes"
    path.write_text("units: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_spec(path)


def test_the_example_specs_expand(shipped):
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "examples" / "sweeps"
    sizes = {path.stem: len(expand(read_spec(path), shipped).points) for path in sorted(folder.glob("*.yaml"))}
    assert sizes == {"f12-kernel-size": 5, "f4-gamma-active": 10, "f6-iterations-optimizers": 20}


def test_a_failed_local_task_stops_the_sweep_and_a_rerun_finishes_it(shipped, tmp_path, monkeypatch):
    from meiscope.sweep.execute import FAIL_ONCE_ENV

    monkeypatch.setenv(FAIL_ONCE_ENV, str(tmp_path / "attempts"))  # each task's first attempt raises
    e = expand(spec(), shipped)
    with pytest.raises(RuntimeError, match="injected failure"):
        run_sweep(e, root=tmp_path, model=shipped, formats=("png",), progress=False)
    result = run_sweep(e, root=tmp_path, model=shipped, formats=("png",), progress=False)
    assert result.stored + result.skipped == 4 and len(list((tmp_path / "attempts").iterdir())) == 2
