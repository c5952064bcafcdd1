"""The layout's rules, checked on the source: recognition/ stands alone, attendance/ has no import cycle.

Read from the files with `ast` (not by importing them), every `import` counted, those inside
functions too: a cycle hidden in a function-level import is still a cycle a reader must untangle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / package).rglob("*.py")) if "migrations" not in p.parts}


def _imports(path: Path, module: str) -> Iterator[tuple[str, tuple[str, ...], int]]:
    """(imported module, names taken from it, line) for every import statement in the file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, (), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            yield base, tuple(alias.name for alias in node.names), node.lineno


def test_recognition_imports_neither_django_nor_celery():
    forbidden = ("django", "rest_framework", "celery", "kombu", "attendance", "config")
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for module, path in _sources("recognition").items()
        for name, _, line in _imports(path, module)
        if name.split(".")[0] in forbidden
    ]
    assert not offenders, "recognition/ must stay plain Python:\n" + "\n".join(offenders)


def _graph() -> dict[str, set[str]]:
    modules = _sources("attendance")
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        for name, taken, _ in _imports(path, module):
            if not name.startswith("attendance"):
                continue
            # `from attendance.x import y` imports the module attendance.x.y when there is one.
            targets = {f"{name}.{t}" for t in taken if f"{name}.{t}" in modules} or {name}
            graph[module] |= {t for t in targets if t in modules and t != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_attendance_has_no_import_cycle():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles inside attendance/:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle():
    # The checker itself, on a graph with one cycle of three and a module outside it.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


FEATURES = (
    "checkin", "enrolment", "sessions", "reports", "privacy", "courses", "platform", "sso", "grades", "warnings",
    "campus", "timetable", "feeds", "excuses", "spaces",
)
# Which feature may import which: features depend downward, never sideways up. `platform` is what
# every feature uses; `courses` (memberships, indexes) sits under the features that need faces.
ALLOWED = {
    "platform": set(),
    "sso": {"platform", "courses"},  # the role rules of memberships
    "courses": {"platform"},
    "sessions": {"platform", "courses"},
    "privacy": {"platform", "courses"},
    "spaces": {"platform", "courses"},
    "enrolment": {"platform", "courses", "spaces"},
    "checkin": {"platform", "courses", "sessions", "privacy"},
    "reports": {"platform", "courses", "sessions"},
    # Points and the gradebook, and the warnings, read the reports' rates; the reports link to them by URL name.
    "grades": {"platform", "courses", "reports"},
    "warnings": {"platform", "courses", "reports"},
    "campus": {"platform", "courses"},
    "timetable": {"platform", "courses", "sessions"},
    "feeds": {"platform", "courses"},
    "excuses": {"platform", "courses", "sessions"},
}


@pytest.mark.parametrize("feature", FEATURES)
def test_a_feature_imports_only_the_features_below_it(feature):
    graph = _graph()
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith(f"attendance.{feature}.") or module == f"attendance.{feature}"
        for target in targets
        if target.split(".")[1] in FEATURES
        and target.split(".")[1] != feature
        and target.split(".")[1] not in ALLOWED[feature]
    )
    assert not wrong, "\n".join(wrong)


def test_no_module_is_a_thousand_lines():
    long = sorted(
        f"{path.relative_to(ROOT)}: {n} lines"
        for package in ("attendance", "recognition", "config")
        for path in _sources(package).values()
        if (n := len(path.read_text().splitlines())) > 450
    )
    assert not long, "split these modules (about 400 lines at most):\n" + "\n".join(long)
