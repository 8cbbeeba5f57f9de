"""The Ray backend on this machine (a local Ray instance with 2 CPUs): a lost worker's task is retried,
stored runs are never submitted again, and the results equal the local backend's."""

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from meiscope import run  # noqa: E402
from meiscope.sweep import SweepSpec, SweepStore, expand, run_sweep  # noqa: E402
from meiscope.sweep.execute import FAIL_MODE_ENV, FAIL_ONCE_ENV  # noqa: E402
from meiscope.sweep.spec import run_id, unit_config  # noqa: E402


@pytest.fixture
def local_ray(tmp_path, monkeypatch):
    # workers inherit the environment of the Ray instance started here: the first attempt of every task
    # kills its worker (a lost task, as when a node goes away)
    monkeypatch.setenv(FAIL_ONCE_ENV, str(tmp_path / "attempts"))
    monkeypatch.setenv(FAIL_MODE_ENV, "exit")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    monkeypatch.delenv(FAIL_ONCE_ENV)  # ... but not this process, which runs the local sweep
    yield tmp_path / "attempts"
    ray.shutdown()


def test_ray_retries_lost_tasks_and_skips_stored_runs(local_ray, shipped, tmp_path):
    def spec(gammas):
        return expand(SweepSpec(name="r", base={"steps": 3, "elbo_every": 0}, axes={"grad.gamma": gammas},
                                units=[51, 3], batch_size=1), shipped)

    root = tmp_path / "sweeps"
    first = run_sweep(spec([0]), root=root, model=shipped, formats=("png",), progress=False)  # locally
    runs = root / "r" / "runs"
    before = {p.name: p.stat().st_mtime_ns for p in runs.glob("*/*")}
    assert first.stored == 2 and len(before) == 2

    full = spec([0, 1.0])
    result = run_sweep(full, root=root, ray_address="local", formats=("png",), progress=False)
    assert (result.total, result.skipped, result.stored, result.errors) == (4, 2, 2, [])
    new = [unit_config(full.points[1].config, u) for u in (51, 3)]
    # only the two missing unit runs were submitted, each failed once and was retried
    assert sorted(p.name for p in local_ray.iterdir()) == sorted(run_id(c.model_copy(update={"unit": [c.unit]}))
                                                                 for c in new)
    assert {p.name: p.stat().st_mtime_ns for p in runs.glob("*/*") if p.name in before} == before
    store = SweepStore(root, "r")
    for config in new:
        np.testing.assert_allclose(store.load(run_id(config)).images, run(shipped, config).images, atol=1e-3)


def test_a_bad_ray_address_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from meiscope.cli import app

    path = tmp_path / "s.yaml"
    path.write_text("base: {steps: 2}\nunits: [1]\n")
    result = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path), "--ray", "nonsense"])
    assert result.exit_code == 2 and "error: --ray nonsense: Invalid address format" in result.output
    assert not ray.is_initialized() and not list((tmp_path / "s").glob("runs/*/*"))
