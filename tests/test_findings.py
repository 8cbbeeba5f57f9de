"""meiscope reproduce: every finding F1-F16 is measured and gets a verdict, a short run on the shipped model."""

from typer.testing import CliRunner

from meiscope.cli import app


def test_reproduce_measures_all_sixteen_findings(tmp_path):
    import json

    # a previous model's record (the format before the model was named in it): F1's verdict differs
    (tmp_path / "findings.json").write_text(json.dumps([{"id": "F1", "verdict": "unheard-of", "observed": "old numbers"}]))
    result = CliRunner().invoke(app, ["reproduce", "--steps", "8", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "findings.json").read_text())
    assert record["model"].startswith("released ")
    findings = record["findings"]
    assert [f["id"] for f in findings] == [f"F{i}" for i in range(1, 17)]
    assert {f["verdict"] for f in findings} <= {"agrees", "mixed", "disagrees"}
    text = (tmp_path / "FINDINGS.md").read_text()
    assert "Not measured yet" not in text
    assert sum(line.startswith("| F") for line in text.splitlines()) == 16 + 1  # and F1 in the changes
    assert "## Verdicts that changed from the previous checkpoint (unrecorded)" in text
    assert "| F1 | unheard-of | " in text and "| old numbers |" in text
    for f in findings:
        if f["figure"]:
            assert (tmp_path / f["figure"]).is_file()
