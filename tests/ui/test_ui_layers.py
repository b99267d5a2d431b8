"""The layers stay apart: no Qt below the interface, no database library in the domain.

Checked on the source (with ``ast``), not by importing it, so an import hidden in a
function body or behind ``TYPE_CHECKING`` is caught as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import credits_desktop

PACKAGE_ROOT = Path(credits_desktop.__file__).resolve().parent

QT = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph", "credits_desktop.ui")
DATABASE = ("sqlalchemy", "alembic", "psycopg", "psycopg2", "sqlite3")

# What each layer must never import (module prefixes).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "domain": (*QT, *DATABASE, "credits_desktop.store", "credits_desktop.services",
               "credits_desktop.bootstrap", "credits_desktop.cli"),
    "store": (*QT, "credits_desktop.services", "credits_desktop.bootstrap",
              "credits_desktop.cli"),
    "services": (*QT, "credits_desktop.bootstrap", "credits_desktop.cli"),
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, with relative imports made absolute (``root`` is
    the folder holding the top package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # "from credits_desktop import ui" imports the ui package too.
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def violations(layer: str, root: Path = PACKAGE_ROOT.parent) -> list[str]:
    """One line per forbidden import in ``credits_desktop/<layer>`` under ``root``."""
    banned = FORBIDDEN[layer]
    problems = []
    for path in sorted((root / "credits_desktop" / layer).rglob("*.py")):
        for line, module in imported_modules(path, root):
            if any(module == b or module.startswith(b + ".") for b in banned):
                problems.append(f"{path.relative_to(root)}:{line} imports {module}")
    return problems


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_it_must_not(layer: str) -> None:
    assert (PACKAGE_ROOT / layer).is_dir()
    assert violations(layer) == []


def test_the_scan_sees_imports_of_every_kind(tmp_path: Path) -> None:
    # The checker must catch what it is there for, or the test above proves nothing.
    layer = tmp_path / "credits_desktop" / "domain"
    layer.mkdir(parents=True)
    (layer / "probe.py").write_text(
        "import os\n"
        "import PySide6.QtCore\n"
        "from pyqtgraph import PlotWidget\n"
        "def later():\n"
        "    from ..ui import app\n"
        "    import sqlalchemy as sa\n"
        "    from ..store.models import Account\n"
        "    from . import periods\n"
        "importlib.import_module('PySide6.QtWidgets')\n",
        encoding="utf-8",
    )
    found = {m for _, m in imported_modules(layer / "probe.py", tmp_path)}
    assert {"PySide6.QtCore", "pyqtgraph", "credits_desktop.ui.app", "sqlalchemy",
            "credits_desktop.store.models", "credits_desktop.domain.periods",
            "PySide6.QtWidgets"} <= found
    lines = {int(p.split(":")[1].split()[0]) for p in violations("domain", tmp_path)}
    assert lines == {2, 3, 5, 6, 7, 9}
