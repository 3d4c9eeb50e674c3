"""The architecture is a check: import-linter's contracts (pyproject.toml) hold on this tree, and
break when someone reintroduces what they forbid, shown on a copy of the tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    args = [str(LINT_IMPORTS), "--no-logo", "--no-cache"]
    for contract in contracts:
        args += ["--contract", contract]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the code and its contracts, to break on purpose."""
    ignore = shutil.ignore_patterns("__pycache__", "*.json")
    for package in ("sessions_app", "console"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_line(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def test_a_view_importing_the_seam_breaks_the_seam_contract(tree: Path) -> None:
    add_line(tree / "sessions_app/support/views.py", "from sessions_app.composio import seam")

    result = lint_imports(tree, "seam-behind-services")

    assert result.returncode == 1
    assert "Only the services call the seam BROKEN" in result.stdout
    assert "sessions_app.support.views -> sessions_app.composio.seam" in result.stdout


def test_a_service_importing_the_sdk_breaks_the_sdk_contract(tree: Path) -> None:
    add_line(tree / "sessions_app/tool_router/sessions.py", "import composio")

    result = lint_imports(tree, "sdk-behind-the-seam")

    assert result.returncode == 1
    assert "Only the seam imports the Composio SDK BROKEN" in result.stdout


def test_the_bulk_task_importing_back_its_caller_breaks_the_cycle_contract(tree: Path) -> None:
    # The cycle the bulk package once had: the task module and the module that queues it.
    add_line(tree / "sessions_app/bulk/runner.py", "from sessions_app.bulk import jobs")

    result = lint_imports(tree, "no-cycles")

    assert result.returncode == 1
    assert "No cycles are allowed in sessions_app.bulk" in result.stdout


def test_a_service_importing_a_view_breaks_the_layers(tree: Path) -> None:
    add_line(
        tree / "sessions_app/tool_router/selectors.py", "from sessions_app.support import views"
    )

    result = lint_imports(tree, "layers")

    assert result.returncode == 1
    assert "sessions_app.tool_router.selectors -> sessions_app.support.views" in result.stdout


def test_the_emulator_importing_the_sdk_breaks_its_contracts(tree: Path) -> None:
    add_line(tree / "sessions_app/composio/emulator/toolkits.py", "import composio")

    result = lint_imports(tree, "sdk-behind-the-seam", "emulator-stands-alone")

    assert result.returncode == 1
    assert "Only the seam imports the Composio SDK BROKEN" in result.stdout
    assert "sessions_app.composio.emulator.toolkits -> composio" in result.stdout


def test_only_the_seam_and_the_emulator_import_composio_client(tree: Path) -> None:
    add_line(tree / "sessions_app/composio/emulator/toolkits.py", "import composio_client")
    kept = lint_imports(tree, "client-types-for-the-seam-and-the-emulator")
    add_line(tree / "sessions_app/tool_router/sessions.py", "import composio_client")

    broken = lint_imports(tree, "client-types-for-the-seam-and-the-emulator")

    assert kept.returncode == 0, kept.stdout
    assert broken.returncode == 1
    assert "sessions_app.tool_router.sessions -> composio_client" in broken.stdout
