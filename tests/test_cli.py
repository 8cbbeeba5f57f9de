"""The command line: user errors exit 2 with one line naming the problem."""

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
