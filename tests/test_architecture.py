"""The layout stays readable: the import contracts in pyproject.toml hold (layers, model/ at the bottom, no
plotting or web code in the engine, no import circles), and fail when an upward import or a circle is
planted; no module is over 400 lines and no function over 80 without a reason written above it."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "backend" / "meiscope"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
REASON = "# long:"  # a comment directly above a longer function's def (or its decorators) says why


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """import-linter on the `meiscope` package found in `package_parent`, with the project's contracts."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    command = [str(Path(sys.executable).with_name("lint-imports")), "--config", str(ROOT / "pyproject.toml"),
               "--no-cache"]
    return subprocess.run(command, cwd=package_parent, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    result = lint_imports(ROOT / "backend")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout, result.stdout


@pytest.fixture
def package_copy(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "meiscope", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def plant(package_parent: Path, module: str, line: str) -> None:
    path = package_parent / "meiscope" / module
    path.write_text(path.read_text() + f"\n{line}  # planted by the test\n")


def test_an_upward_import_in_the_model_breaks_the_contracts(package_copy):
    plant(package_copy, "model/seam.py", "from ..presentation import plotting")
    result = lint_imports(package_copy)
    assert result.returncode != 0
    out = result.stdout
    assert "Layers, highest first: a room imports only from the rooms below it BROKEN" in out, out
    assert "model/ says what a model is and imports nothing of meiscope above it BROKEN" in out, out
    assert "meiscope.model.seam -> meiscope.presentation.plotting" in out, out


def test_plotting_in_the_engine_breaks_the_contracts(package_copy):
    plant(package_copy, "engine/bank.py", "import matplotlib")
    result = lint_imports(package_copy)
    assert result.returncode != 0
    assert "know nothing of HTTP or the command\nline BROKEN" in result.stdout or \
        "know nothing of HTTP or the command line BROKEN" in result.stdout, result.stdout


def test_an_import_circle_breaks_the_contracts(package_copy):
    # engine.loop imports engine.config; config importing loop back closes a circle inside one room
    plant(package_copy, "engine/config.py", "from . import loop")
    result = lint_imports(package_copy)
    assert result.returncode != 0
    assert "No import circles, between rooms or between the modules of a room BROKEN" in result.stdout, result.stdout


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, long


def long_functions(path: Path) -> dict[str, int]:
    """Functions of `path` over MAX_FUNCTION_LINES without a REASON in the comment block directly above them."""
    lines = path.read_text().splitlines()
    found = {}
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            above = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 2  # index of the line above
            comments = []
            while above >= 0 and lines[above].strip().startswith("#"):
                comments.append(lines[above].strip())
                above -= 1
            if length > MAX_FUNCTION_LINES and not any(c.startswith(REASON) for c in comments):
                found[node.name] = length
    return found


def test_no_function_is_over_80_lines_without_a_reason():
    long = {f"{p.relative_to(PACKAGE)}:{name}": n for p in modules() for name, n in long_functions(p).items()}
    assert not long, long


def test_the_length_check_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    plain, reasoned = tmp_path / "plain.py", tmp_path / "reasoned.py"
    plain.write_text(f"def f():\n{body}\n")
    reasoned.write_text(f"# long: a reason\ndef f():\n{body}\n")
    assert long_functions(plain) == {"f": MAX_FUNCTION_LINES + 1}
    assert long_functions(reasoned) == {}


def test_create_app_only_assembles():
    tree = ast.parse((PACKAGE / "server" / "app.py").read_text())
    create_app = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "create_app")
    assert create_app.end_lineno - create_app.lineno + 1 < 80
