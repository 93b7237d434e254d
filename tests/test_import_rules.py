"""The one-way import rules (pyproject.toml [tool.importlinter], run by `make lint`) hold, and each of them
fails on a violation: a copy of the project with one forbidden import added is linted for every contract."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def contract(name_start: str) -> dict[str, Any]:
    (found,) = [c for c in CONFIG["contracts"] if c["name"].startswith(name_start)]
    return dict(found)


def test_the_project_keeps_every_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken." in result.stdout


# (contract, file, the forbidden import added to it)
VIOLATIONS = [
    ("Functions are independent", "lambda_src/inference/logic.py", "import lambda_src.authorizer.logic"),
    ("Functions are independent", "lambda_src/contracts/keys.py", "import lambda_src.shared.errors"),
    ("Capabilities build on the foundation", "constructs_lib/foundation/keys.py",
     "import constructs_lib.audit.settings"),
    ("Contracts are plain data", "lambda_src/contracts/keys.py", "import boto3"),
    ("Lambda code never imports", "lambda_src/shared/errors.py", "import aws_cdk"),
    ("Constructs never import stacks", "constructs_lib/foundation/nag.py", "import stacks.stages"),
    ("Infrastructure takes only the contracts", "constructs_lib/inference/rest_api.py",
     "import lambda_src.shared.errors"),
    ("Nothing on the synth path imports tools", "stacks/base.py", "import tools.keys"),
    ("Stage settings are CDK-free", "constructs_lib/audit/settings.py", "import aws_cdk"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "file", "line"), VIOLATIONS)
def test_a_violation_breaks_its_contract(tmp_path, name, file, line):
    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "fixtures"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / file).open("a") as source:
        source.write(f"\n{line}\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert " ".join(contract(name)["name"].split()[:3]) in " ".join(broken.split()), result.stdout


def test_the_layers_name_every_function_and_capability_folder():
    """Adding a function or capability folder without its place in the rules fails here."""
    functions = {p.parent.name for p in (ROOT / "lambda_src").glob("*/handler.py")}
    (top, *_) = contract("Functions are independent")["layers"]
    assert {name.strip() for name in top.split("|")} == functions
    capabilities = {p.parent.name for p in (ROOT / "constructs_lib").glob("*/settings.py")} - {"foundation"}
    (top, *_) = contract("Capabilities build on the foundation")["layers"]
    assert {name.strip() for name in top.split(":")} == capabilities


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def test_app_py_imports_only_the_synth_path():
    """app.py is a module, not a package, so import-linter cannot see it."""
    allowed = ("stacks", "constructs_lib", "lambda_src.contracts", "aws_cdk", "__future__", *sys.stdlib_module_names)
    bad = [name for name in _imports(ROOT / "app.py") if not name.startswith(allowed)]
    assert bad == []


def test_package_init_modules_import_only_the_standard_library():
    """Importing a capability's settings runs its packages' __init__: they must not start jsii or boto3 (their own
    submodules, which follow the same layer rules, they may name)."""
    inits = [p for package in ("stacks", "constructs_lib", "lambda_src") for p in (ROOT / package).rglob("__init__.py")]
    assert inits

    def own(path: Path) -> str:
        return ".".join(path.parent.relative_to(ROOT).parts) + "."

    outside = {str(p.relative_to(ROOT)): [n for n in _imports(p) if n.split(".")[0] not in sys.stdlib_module_names
                                          and not (n + ".").startswith(own(p))] for p in inits}  # fmt: skip
    assert {path: names for path, names in outside.items() if names} == {}


def _project_imports(path: Path) -> list[str]:
    roots = set(CONFIG["root_packages"]) | {"app", "bench", "e2e"}
    return [name for name in _imports(path) if name.split(".")[0] in roots]


def test_the_local_runtime_imports_nothing_of_the_project():
    """Any venv (the emulator's included) starts tools/local/runtime.py as a script."""
    runtime = ROOT / "tools" / "local" / "runtime.py"
    assert _project_imports(runtime) == []
    assert all(name.split(".")[0] in sys.stdlib_module_names for name in _imports(runtime))


def test_the_local_emf_extraction_imports_only_the_standard_library():
    """The emulator uses it (tools/local/emulator/awslambda.py) as well as the local gateway."""
    emf = ROOT / "tools" / "local" / "emf.py"
    assert _project_imports(emf) == []
    assert all(name.split(".")[0] in sys.stdlib_module_names for name in _imports(emf))


def test_the_emulator_imports_only_moto_itself_and_the_runtime():
    """It runs in .venv-local, which has moto but none of the platform's packages."""
    allowed = ("tools.local.emulator", "tools.local.runtime", "tools.local.emf")
    for path in (ROOT / "tools" / "local" / "emulator").glob("*.py"):
        assert [n for n in _project_imports(path) if not n.startswith(allowed)] == [], path.name
        outside = [n for n in _imports(path) if n.split(".")[0] not in (*sys.stdlib_module_names, "moto", "tools")]
        assert outside == [], path.name


def test_the_model_server_imports_only_the_standard_library_and_xllamacpp():
    """It runs in .venv-model, which has xllamacpp and the model but none of the platform's packages."""
    server = ROOT / "tools" / "local" / "model_server.py"
    assert _project_imports(server) == []
    assert [n for n in _imports(server) if n.split(".")[0] not in (*sys.stdlib_module_names, "xllamacpp")] == []
