"""docker-compose.yml (no Docker engine here: it is parsed and checked, not run)."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_serves_the_dashboard_with_models_mounted_a_token_and_a_health_check():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    (name, service), = compose["services"].items()
    command = service["command"]
    assert command[:2] == ["meiscope", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0" and command[command.index("--port") + 1] == "8000"
    assert service["ports"] == ["127.0.0.1:8000:8000"]  # published on the host's loopback only
    assert "MEISCOPE_TOKEN:?" in service["environment"]["MEISCOPE_TOKEN"]  # 0.0.0.0 inside needs a token
    model = command[command.index("--model") + 1]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in service["volumes"]}
    assert mounts["./models"] == str(Path(model).parent)
    probe = " ".join(service["healthcheck"]["test"])
    assert "/api/health" in probe and "Bearer" in probe and "MEISCOPE_TOKEN" in probe
    assert service["build"] == "." and (ROOT / "Dockerfile").is_file()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "torch==2.13.0" in dockerfile and "EXPOSE 8000" in dockerfile
