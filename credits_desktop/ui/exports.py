"""Writing exports to files: tables as CSV, the finance report as XLSX, charts' bytes.

Charts are drawn to PNG or SVG bytes on the GUI thread (``charts_common.render_png`` /
``render_svg``); everything here puts things on disk, which may be a slow network
share, so views run it on the :class:`~credits_desktop.ui.workers.Worker`. Each writer
makes a temporary file beside the target and renames it over the target at the end, so
a failed export never leaves a half-written file, and raises :class:`ExportFailed` with
a plain sentence (in the user's language; the system's reason, from the operating
system, comes as the system gives it).

CSV files are UTF-8 with a header row; numbers are written bare (``12400``), so a
spreadsheet reads them as numbers. XLSX (openpyxl) keeps numbers as numbers too, with a
bold header, a bold totals row, thousands separators, fitted column widths and the
header frozen.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from PySide6.QtCore import QCoreApplication

from credits_desktop.services.errors import CreditsDeskError
from credits_desktop.services.exports import safe_cell

__all__ = [
    "Cell",
    "ExportFailed",
    "Sheet",
    "with_suffix",
    "write_bytes",
    "write_csv",
    "write_xlsx",
]

Cell = int | float | str | None
# Widest column an XLSX export makes (characters), however long a cell.
MAX_COLUMN_WIDTH = 60


class ExportFailed(CreditsDeskError):
    """The file could not be written; the message says why in plain words."""


def with_suffix(path: str | Path, suffix: str) -> Path:
    """``path`` ending in ``suffix`` (".csv"): added when the name has another or none."""
    target = Path(path)
    if target.suffix.lower() != suffix:
        target = target.with_name(target.name + suffix)
    return target


@contextmanager
def _replacing(target: Path, mode: str, **options: object) -> Iterator[IO[str] | IO[bytes]]:
    """A temporary file beside ``target`` that replaces it when the block succeeds."""
    if not target.parent.is_dir():
        raise ExportFailed(QCoreApplication.translate(
            "Exports", "The folder {folder} does not exist.").format(folder=target.parent))
    try:
        handle, temporary = tempfile.mkstemp(prefix=".export-", suffix=target.suffix,
                                             dir=target.parent)
    except OSError as exc:
        raise ExportFailed(_why(target, exc)) from exc
    os.close(handle)
    try:
        with open(temporary, mode, **options) as stream:  # type: ignore[call-overload]
            yield stream
        os.replace(temporary, target)
    except OSError as exc:
        _remove(temporary)
        raise ExportFailed(_why(target, exc)) from exc
    except BaseException:
        _remove(temporary)
        raise


def _remove(path: str) -> None:
    with suppress(OSError):
        os.unlink(path)


def _harmless(cell: Cell) -> Cell:
    """A cell a spreadsheet shows and never runs (see services/exports.safe_cell)."""
    if cell is None:
        return ""
    return safe_cell(cell) if isinstance(cell, str) else cell


def _why(target: Path, exc: OSError) -> str:
    reason = exc.strerror or QCoreApplication.translate("Exports", "the system refused it")
    return QCoreApplication.translate(
        "Exports", "{file} could not be written to {folder}: {reason}.").format(
        file=target.name, folder=target.parent, reason=reason.lower())


def write_csv(path: str | Path, header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> Path:
    """Write a header row and data rows as UTF-8 CSV; returns the path written."""
    target = with_suffix(path, ".csv")
    with _replacing(target, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)  # type: ignore[arg-type]
        writer.writerow(header)
        for row in rows:
            writer.writerow([_harmless(cell) for cell in row])
    return target


def write_bytes(path: str | Path, data: bytes, suffix: str) -> Path:
    """Write ``data`` (an SVG document, say) to ``path`` ending in ``suffix``."""
    target = with_suffix(path, suffix)
    with _replacing(target, "wb") as stream:
        stream.write(data)  # type: ignore[arg-type]
    return target


class Sheet:
    """One worksheet of an XLSX export: a header, rows, and which rows are totals."""

    def __init__(self, title: str, header: Sequence[str], rows: Sequence[Sequence[Cell]], *,
                 totals_rows: int = 0, notes: Sequence[str] = ()) -> None:
        self.title = title[:31]  # Excel's limit for a sheet name
        self.header = list(header)
        self.rows = [list(r) for r in rows]
        self.totals_rows = totals_rows
        self.notes = list(notes)


def write_xlsx(path: str | Path, sheets: Sequence[Sheet],
               progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Write ``sheets`` to an XLSX workbook (numbers as numbers); returns the path."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    target = with_suffix(path, ".xlsx")
    book = Workbook()
    first = book.active
    if first is not None:
        book.remove(first)
    bold = Font(bold=True)
    for number, sheet in enumerate(sheets):
        if progress is not None:
            progress(QCoreApplication.translate("Exports", "Writing the sheet {sheet}").format(
                sheet=sheet.title), number, len(sheets))
        ws = book.create_sheet(sheet.title)
        ws.append(sheet.header)
        for cell in ws[1]:
            cell.font = bold
        for row in sheet.rows:
            # Text starting with "=" would be stored as a live formula.
            ws.append([_harmless(cell) for cell in row])
        body_end = 1 + len(sheet.rows)
        for row_number in range(body_end - sheet.totals_rows + 1, body_end + 1):
            for cell in ws[row_number]:
                cell.font = bold
        for row_cells in ws.iter_rows(min_row=2, max_row=body_end):
            for cell in row_cells:
                if isinstance(cell.value, int) and not isinstance(cell.value, bool):
                    cell.number_format = "#,##0"
                elif isinstance(cell.value, float):
                    cell.number_format = "0.00%"
        if sheet.notes:
            ws.append([])
            for note in sheet.notes:
                ws.append([note])
        ws.freeze_panes = "A2"
        for column in range(1, len(sheet.header) + 1):
            values = [sheet.header[column - 1]] + [
                row[column - 1] for row in sheet.rows if column - 1 < len(row)
            ]
            width = max(len(_shown(v)) for v in values) + 2
            ws.column_dimensions[get_column_letter(column)].width = min(width, MAX_COLUMN_WIDTH)
    with _replacing(target, "wb") as stream:
        book.save(stream)
    return target


def _shown(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.2%}"
    return str(value)
