"""The desktop bundle's ingredients: build.spec, the icon and the .desktop entry.

The bundle itself is built and self-tested by `.ci/run` (PyInstaller takes minutes and
is not a test dependency); these tests keep what it is built from consistent: the spec
ships every data file the package ships (migrations, icon), the two copies of the icon
are the same picture, and the desktop entry is valid and points at them.
"""

from __future__ import annotations

import ast
import fnmatch
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "build.spec"
PACKAGE_ICON = ROOT / "credits_desktop" / "ui" / "assets" / "credits-desk.svg"
RESOURCE_ICON = ROOT / "resources" / "credits-desk.svg"
DESKTOP_FILE = ROOT / "resources" / "credits-desktop.desktop"


def spec_tree() -> ast.Module:
    return ast.parse(SPEC.read_text("utf-8"), filename=str(SPEC))


def spec_datas() -> list[tuple[str, str]]:
    """The spec's own data files, (source pattern, folder in the bundle), worked out by
    running its path assignments and its `datas = [...]` list without PyInstaller."""
    wanted = {"ROOT", "PACKAGE", "MIGRATIONS", "TRANSLATIONS", "datas"}
    body: list[ast.stmt] = []
    for node in spec_tree().body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id in wanted):
            body.append(node)
    namespace: dict[str, object] = {"SPECPATH": str(ROOT), "Path": Path}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(SPEC), "exec"), namespace)
    datas = namespace["datas"]
    assert isinstance(datas, list)
    return [(str(source), str(target)) for source, target in datas]


def spec_calls(function: str) -> set[str]:
    """The first arguments (string constants) of every call to ``function`` in the spec."""
    found: set[str] = set()
    for node in ast.walk(spec_tree()):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == function and node.args
                and isinstance(node.args[0], ast.Constant)):
            found.add(str(node.args[0].value))
    return found


def packaged_files() -> list[Path]:
    """The non-Python files (and migration scripts) pyproject.toml ships in the package."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["credits_desktop"]
    files = {path for pattern in patterns for path in (ROOT / "credits_desktop").glob(pattern)}
    return sorted(files)


def test_spec_bundles_every_data_file_the_package_ships() -> None:
    """The migrations (env.py, script.py.mako, versions/*.py) and the icon, each in the
    folder the code looks for it in (beside the module's own file in the bundle)."""
    datas = spec_datas()
    files = packaged_files()
    names = {path.relative_to(ROOT).as_posix() for path in files}
    assert "credits_desktop/store/migrations/env.py" in names
    assert "credits_desktop/store/migrations/script.py.mako" in names
    assert "credits_desktop/ui/assets/credits-desk.svg" in names
    assert any(name.startswith("credits_desktop/store/migrations/versions/") for name in names)
    missing = []
    for path in files:
        folder = path.parent.relative_to(ROOT).as_posix()
        if not any(target == folder and fnmatch.fnmatch(str(path), source)
                   for source, target in datas):
            missing.append(path.relative_to(ROOT).as_posix())
    assert missing == [], f"build.spec does not bundle {missing}"
    for source, _target in datas:
        assert list(Path(source).parent.glob(Path(source).name)), f"{source} matches nothing"


def test_spec_carries_the_metadata_and_the_modules_loaded_late() -> None:
    # importlib.metadata.version (the version check) and keyring's backend entry points.
    assert spec_calls("copy_metadata") >= {"credits-desktop", "keyring"}
    # The views imported inside functions, and the keyring backends keyring loads by name.
    assert spec_calls("collect_submodules") >= {"credits_desktop", "keyring.backends"}
    assert spec_calls("metadata") == {"credits-desktop"}  # the bundle's name and version
    text = SPEC.read_text("utf-8")
    for module in ("psycopg_binary", "sqlalchemy.dialects.postgresql.psycopg", "alembic.op"):
        assert f'"{module}"' in text


def test_the_two_icons_are_the_same_picture() -> None:
    """resources/ (for the desktop entry) and the package's assets (for the window)."""
    assert RESOURCE_ICON.read_bytes() == PACKAGE_ICON.read_bytes()
    assert RESOURCE_ICON.read_bytes().lstrip().startswith(b"<svg")


def desktop_entry() -> dict[str, str]:
    """The [Desktop Entry] group of the .desktop file, refusing what the spec forbids."""
    lines = DESKTOP_FILE.read_text("utf-8").splitlines()
    assert lines[0] == "[Desktop Entry]", "the first group must be [Desktop Entry]"
    entry: dict[str, str] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip() or line.startswith("#"):
            continue
        assert not line.startswith("["), f"line {number}: only one group is expected"
        key, equals, value = line.partition("=")
        assert equals, f"line {number} is not KEY=VALUE: {line!r}"
        key = key.strip()
        assert key.replace("-", "").isalnum(), f"line {number}: bad key {key!r}"
        assert key not in entry, f"line {number}: {key} given twice"
        entry[key] = value.strip()
    return entry


def test_desktop_entry_keys() -> None:
    entry = desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Credits Desk"
    # The command pyproject.toml installs, and the icon's name without its extension.
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]
    assert entry["Exec"].split()[0] in scripts
    assert entry["Icon"] == RESOURCE_ICON.stem == "credits-desk"
    assert entry["Terminal"] == "false"
    categories = entry["Categories"]
    assert categories.endswith(";") and "Office" in categories.split(";")


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate (desktop-file-utils) is not installed")
def test_desktop_entry_passes_desktop_file_validate() -> None:
    done = subprocess.run(["desktop-file-validate", str(DESKTOP_FILE)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "", done.stdout
