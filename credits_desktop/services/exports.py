"""What every export does to stay safe: a checked target path and harmless cells.

Exports (the audit log, an incident's refunds, reports) end up in spreadsheets. A
text cell that starts with ``=``, ``+``, ``-`` or ``@`` would be run there as a
formula, so such cells get a leading apostrophe (the usual neutralisation; the
text stays readable). A target path is refused with a plain sentence before any
file is touched: empty, a folder, a missing folder, or one holding a NUL (which
the file system calls reject with a ValueError, not an OSError).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InvalidInput

__all__ = ["FORMULA_START", "export_path", "safe_cell"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it, never as a formula it runs."""
    return f"'{text}" if text.startswith(FORMULA_START) else text


def export_path(path: object) -> Path:
    """The file to export to, refusing what cannot be one with a plain sentence."""
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise InvalidInput("Choose a file to export to.", "path")
    if "\x00" in str(path):
        raise InvalidInput("That file name is not valid; choose another.", "path")
    target = Path(path)
    if target.is_dir():
        raise InvalidInput(f"'{target}' is a folder; choose a file name.", "path")
    if not target.parent.is_dir():
        raise InvalidInput(f"The folder '{target.parent}' does not exist.", "path")
    return target
