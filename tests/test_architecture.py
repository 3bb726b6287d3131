"""The layout's promises that no other test would notice breaking."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parent.parent / "bachgan"


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_library_never_imports_streamlit():
    """bachgan/ is usable without the app (CLI, training, tests); the Streamlit side lives in
    streamlit_app.py, app_state.py and pages/."""
    files = sorted(LIBRARY.glob("*.py"))
    assert len(files) > 10
    offenders = [f.name for f in files if "streamlit" in _imported_modules(f)]
    assert offenders == []
