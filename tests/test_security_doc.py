"""docs/security.md names the test behind each control: every test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_every_test_the_threat_model_names_exists() -> None:
    references = REFERENCE.findall(DOC.read_text())
    assert len(references) >= 30
    missing = [
        f"{file}::{name}"
        for file, name in references
        if not (ROOT / file).is_file() or name not in _test_names(ROOT / file)
    ]
    assert missing == []


def test_the_threat_model_has_no_section_left_to_write() -> None:
    text = DOC.read_text()
    assert not re.search(r"^[A-Z_]{5,}$", text, re.MULTILINE)
