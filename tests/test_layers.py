"""The import layers (pyproject.toml's [tool.importlinter]) hold, and the check can fail.

scripts/test.sh runs ``lint-imports`` too; this test makes a plain ``pytest`` fail on a
violation as well. A check that cannot fail proves nothing, so the same contracts are also
run over a small synthetic tree of our package names, first clean (it must pass) and then
with one forbidden import added (the contract it breaks must be reported).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# lint-imports as this interpreter's module, so the test needs no console script on PATH.
LINT = ("from importlinter.cli import lint_imports_command; "
        "lint_imports_command(prog_name='lint-imports')")


def _contract_names() -> dict[str, str]:
    with open(REPO / "pyproject.toml", "rb") as fh:
        contracts = tomllib.load(fh)["tool"]["importlinter"]["contracts"]
    by_type: dict[str, str] = {}
    for contract in contracts:
        name = contract["name"]
        if contract["type"] == "layers":
            by_type["layers"] = name
        elif "flask" in contract["forbidden_modules"]:
            by_type["flask"] = name
        elif "sqlalchemy" in contract["forbidden_modules"]:
            by_type["sqlalchemy"] = name
        else:
            by_type["kernel"] = name
    return by_type


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("importlinter", reason="import-linter is in the test extra")
    # --no-cache: nothing written into the repository (or the synthetic tree) by a test.
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache", "--no-logo"], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_repository_keeps_its_layers():
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


# A tree with every layer of the real one, each importing only downwards (and the
# frameworks where they are allowed), so the contracts as written hold over it. Nothing
# imports broker.kernel.cql: marc reaching it through an upward import would break a
# second contract, and each violation below is to break exactly one.
CLEAN_TREE = {
    "balis/__init__.py": "import web\n",
    "web/__init__.py": "import broker.demo\nimport flask\nimport ill\n",
    "ill/__init__.py": "import broker.union_index\nimport sqlalchemy\n",
    "broker/__init__.py": "",
    "broker/demo/__init__.py": "import broker.catalogues\n",
    "broker/catalogues/__init__.py": "import broker.search\n",
    "broker/harvest/__init__.py": "import broker.search\n",
    "broker/union_index/__init__.py": "import broker.search\n",
    "broker/search/__init__.py": "import connectors\n",
    "connectors/__init__.py": "import broker.kernel.errors\nimport marc\n",
    "marc/__init__.py": "from broker.kernel import errors\n",
    "broker/kernel/__init__.py": "",
    **{f"broker/kernel/{name}.py": "" for name in
       ("errors", "cql", "pqf", "config", "consortium", "directory")},
}

# (file added to the clean tree, its one import, the contract it must break)
VIOLATIONS = [
    ("marc/upward.py", "import connectors\n", "layers"),
    ("broker/search/upward.py", "from broker.harvest import queue\n", "layers"),
    ("ill/sideways.py", "import broker.demo\n", "layers"),  # independent siblings
    ("marc/query.py", "from broker.kernel import cql\n", "kernel"),
    ("connectors/page.py", "import flask\n", "flask"),
    ("broker/search/ledger.py", "import sqlalchemy.orm\n", "sqlalchemy"),
    ("marc/migrate.py", "import alembic\n", "sqlalchemy"),
]


def _tree(root: Path, extra: dict[str, str]) -> Path:
    for name, text in {**CLEAN_TREE, **extra}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    # The project's own configuration, so what is shown live is the contracts we check.
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_synthetic_tree_keeps_the_layers(tmp_path):
    done = _lint(_tree(tmp_path, {}))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("module", "line", "contract"), VIOLATIONS,
                         ids=[module for module, _, _ in VIOLATIONS])
def test_a_forbidden_import_is_reported(tmp_path, module, line, contract):
    done = _lint(_tree(tmp_path, {module: line}))
    assert done.returncode == 1, done.stdout + done.stderr
    name = _contract_names()[contract]
    assert f"{name} BROKEN" in done.stdout, done.stdout
    assert done.stdout.count("BROKEN") == 1, done.stdout  # only that one
    dotted = module.removesuffix(".py").replace("/", ".")
    assert dotted in done.stdout, done.stdout  # the report names the importer
