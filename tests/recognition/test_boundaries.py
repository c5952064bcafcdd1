"""recognition/ is plain Python: usable from a script or notebook without the web app."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "recognition"
FORBIDDEN = {"django", "celery", "attendance", "config", "rest_framework", "kombu", "redis"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_in_recognition_imports_the_web_app_or_its_frameworks():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 5
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN
        )
        for path in files
    }
    assert {file: names for file, names in offenders.items() if names} == {}


def test_importing_the_package_loads_no_model_library():
    # Cheap import: open_clip, torch and dlib load only when an embedder first needs them.
    code = (
        "import sys, recognition; "
        "print(sorted(m for m in ('torch', 'open_clip', 'dlib', 'django') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]"
