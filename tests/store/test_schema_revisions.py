"""Reading the schema revision without Alembic agrees with Alembic, and start-up
does not import Alembic (a tenth of a second of every launch) nor the chart and
spreadsheet libraries (half a second), which load when first used."""

from __future__ import annotations

import subprocess
import sys

from alembic.script import ScriptDirectory

from credits_desktop.store.schema import alembic_config, head_revision, known_revisions


def test_known_revisions_are_alembics() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert head_revision() == script.get_current_head()
    assert known_revisions() == {
        rev.revision: rev.down_revision for rev in script.walk_revisions()  # type: ignore[misc]
    }


def test_starting_the_application_does_not_import_the_heavy_libraries() -> None:
    heavy = ("alembic", "mako", "pyqtgraph", "numpy", "openpyxl")
    code = ("import sys, credits_desktop.cli, credits_desktop.ui.app; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"QT_QPA_PLATFORM": "offscreen", "PATH": ""})
    assert out.stdout.strip() == "[]"
