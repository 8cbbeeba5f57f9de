"""The command line: user errors exit 2 with one line naming the problem."""

import pytest
from typer.testing import CliRunner

from meiscope.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("data", "train", "release", "info"):
        assert command in result.output


def test_info_on_a_missing_model_exits_2(tmp_path):
    result = runner.invoke(app, ["info", "--model", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "manifest.json is missing" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_release_without_a_training_state_exits_2(tmp_path):
    result = runner.invoke(app, ["release", str(tmp_path)])
    assert result.exit_code == 2 and "no state.safetensors" in result.output


def test_bad_training_options_exit_2(tmp_path):
    assert runner.invoke(app, ["train", "--device", "tpu", "--out", str(tmp_path)]).exit_code == 2
    bad_init = runner.invoke(app, ["train", "--init-from", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert bad_init.exit_code == 2 and "--init-from" in bad_init.output
    bad_lr = runner.invoke(app, ["train", "--lr", "5", "--out", str(tmp_path)])
    assert bad_lr.exit_code == 2 and "--lr" in bad_lr.output


def test_am_writes_a_run_that_loads(tmp_path):
    from meiscope import Run

    config = tmp_path / "c.json"
    config.write_text('{"method": "distribution", "steps": 50, "distribution": {"draws": 2}}')
    result = runner.invoke(app, ["am", "--unit", "3,5-6", "--steps", "4", "--config", str(config), "--set",
                                 "post.blur_sigma=0.5", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    run = Run.load(tmp_path / "run")
    assert run.config.units == [3, 5, 6] and run.config.steps == 4  # the flag overrides the file
    assert run.config.method == "distribution" and run.config.post.blur_sigma == 0.5
    assert run.images.shape == (3, 40, 40) and (tmp_path / "run" / "figures" / "inputs.png").is_file()


def test_am_bad_input_exits_2_naming_the_field(tmp_path):
    cases = [(["--set", "grad.gamma=9"], "grad.gamma: must lie in [0, 4]"),
             (["--unit", "250"], "0..249"),
             (["--unit", "x1"], "--unit"),
             (["--config", str(tmp_path / "none.json")], "does not exist"),
             (["--set", "nonsense"], "NAME=VALUE")]
    for args, message in cases:
        result = runner.invoke(app, ["am", *args, "--out", str(tmp_path / "r")])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert not (tmp_path / "r").exists()


def test_am_help_documents_every_option_with_default_and_range():
    from meiscope.engine.options import option_table

    result = runner.invoke(app, ["am", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    for name, default, allowed, _ in option_table():
        line = next((ln for ln in result.output.splitlines() if f" {name} = " in ln), None)
        assert line is not None, name
        assert default in line and allowed in line, line


def test_atlas_is_one_batched_run(tmp_path):
    from meiscope import AMConfig, Run

    result = runner.invoke(app, ["atlas", "--unit", "0-5", "--steps", "3", "--no-figures", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    run = Run.load(tmp_path / "a")
    assert run.config.snapshot_every == 50 and run.config.pre == AMConfig().pre  # the default, recorded sparsely
    assert [r["unit"] for r in run.rows] == list(range(6))


def test_export_command_writes_a_zip_and_rejects_non_runs(tmp_path):
    import zipfile

    assert runner.invoke(app, ["am", "--unit", "5", "--steps", "3", "--no-figures", "--out", str(tmp_path / "u5")]).exit_code == 0
    result = runner.invoke(app, ["export", str(tmp_path / "u5"), "--out", str(tmp_path / "f.zip")])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "f.zip") as zf:
        assert {"u5-pixel-u5/config.json", "u5-pixel-u5/metrics.csv", "u5-pixel-u5/figures/inputs.svg",
                "sheet.pdf"} <= set(zf.namelist())
    bad = runner.invoke(app, ["export", str(tmp_path), "--out", str(tmp_path / "g.zip")])
    assert bad.exit_code == 2 and "not a saved run" in bad.output and not (tmp_path / "g.zip").exists()


def test_usage_errors_of_the_real_command_are_one_line(tmp_path):
    """Through the console entry point (cli.main), not typer's test runner: click's usage box becomes one line."""
    import subprocess
    import sys

    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    cases = [(["am", "--steps", "abc"], "--steps"), (["nonsense"], "No such command"),
             (["am", "--bogus"], "--bogus"), (["am", "--config", str(bad_json)], "not valid JSON"),
             (["am", "--config", str(tmp_path / "missing.json")], "missing.json"),
             (["am", "--set", "grad.gamma=9"], "grad.gamma"), (["serve", "--port", "0"], "--port")]
    for args, named in cases:
        done = subprocess.run([sys.executable, "-m", "meiscope.cli", *args], capture_output=True, text=True, timeout=120)
        lines = (done.stdout + done.stderr).strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), (args, lines)
        assert named in lines[0], (args, lines)


def test_help_and_argument_errors_do_not_import_torch():
    """`meiscope --help` and a bad option answer before torch (about 1.5 s to import) is loaded."""
    import subprocess
    import sys

    probe = ("import sys\nfrom meiscope.cli import main\nsys.argv = ['meiscope', *sys.argv[1:]]\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
             "print('torch' in sys.modules, 'numpy' in sys.modules, code)")
    for args in (["--help"], ["am", "--help"], ["am", "--steps", "0"], ["am", "--set", "optimizer.lr=abc"],
                 ["am", "--set", "steps=0"]):
        result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
        torch_loaded, numpy_loaded, code = result.stdout.strip().splitlines()[-1].split()
        assert (torch_loaded, numpy_loaded) == ("False", "False"), (args, result.stdout, result.stderr)
        assert code == ("0" if args[-1] == "--help" else "2"), (args, result.stdout, result.stderr)


def _one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("assignment, message", [
    ("obj.elbo_weight=abc", 'error: obj.elbo_weight: must be a number or a schedule ({"kind": "linear", '),
    ("optimizer.lr=[1, 2]", "error: optimizer.lr: must be a number or a schedule"),
    ('optimizer.lr={"kind": "linear", "start": 1}', "error: optimizer.lr.end: Field required"),
    ("unit=abc", 'error: unit: must be an integer or a list of integers, got "abc"'),
    ('unit=[1, "a"]', "error: unit.1: Input should be a valid integer"),
])
def test_a_field_of_several_kinds_is_named_once(assignment, message, tmp_path):
    """A field that takes a number or a schedule (or a unit or a list of them) is one message, not one per kind."""
    line = _one_line(runner.invoke(app, ["am", "--set", assignment, "--out", str(tmp_path / "r")]))
    assert line.startswith(message), line
    assert line.count(message.split()[1].rstrip(":").split(".")[0] + ".") <= 1 and ";" not in line, line


def test_outputs_that_cannot_be_written_are_one_line(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cases = [(["am", "--out", str(a_file)], f"--out {a_file} is a file, not a folder"),
             (["am", "--out", str(a_file / "run")], f"--out: {a_file} is a file, not a folder"),
             (["export", str(tmp_path), "--out", str(tmp_path)], "is a folder: give the zip's file name"),
             (["export", str(tmp_path), "--out", str(a_file / "f.zip")], f"--out: {a_file} is a file")]
    for args, message in cases:
        line = _one_line(runner.invoke(app, args))
        assert message in line, (args, line)
    assert a_file.read_text() == "not a folder"


def test_a_bad_sweep_axis_or_output_is_one_line(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("base: {steps: 2}\naxes: {grad.gamma: [0, x]}\nunits: [1]\n")
    line = _one_line(runner.invoke(app, ["sweep", str(spec), "--dry-run"]))
    assert 'axis grad.gamma = "x"' in line and "must be a number or a schedule" in line, line
    spec.write_text("base: {steps: 2}\nunits: [1]\n")
    (tmp_path / "a-file").write_text("")
    line = _one_line(runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "a-file")]))
    assert "is a file, not a folder" in line


def test_am_help_points_to_the_method_catalogue():
    from pathlib import Path

    result = runner.invoke(app, ["am", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and "docs/METHODS.md" in result.output and "docs/MODEL.md" in result.output
    root = Path(__file__).resolve().parents[1]
    assert (root / "docs" / "METHODS.md").is_file() and (root / "docs" / "MODEL.md").is_file()
