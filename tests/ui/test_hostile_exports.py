"""Hostile export paths and cell text for the interface's file writers (ui/exports.py).

An export goes wherever staff point the file dialog, or wherever a typed path says: a
folder that does not exist, a folder itself, a path under a file (which stops root
too, unlike permissions), a name in any script. Each must give a plain
:class:`ExportFailed` and leave no file behind, or write the file whole. Text cells
that a spreadsheet would run as a formula must be neutralised; that part is pinned by
tests that guard the fix in ui/exports.py.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import load_workbook

from credits_desktop.ui.exports import ExportFailed, Sheet, write_csv, write_xlsx

HEADER = ["Account", "Credits"]
FORMULAS = ["=HYPERLINK(\"http://evil.test\",\"click\")", "+cmd|' /C calc'!A0", "-2+3",
            "@SUM(1+1)"]


def tree(path: Path) -> set[Path]:
    return set(path.rglob("*"))


def test_unusable_export_paths_fail_plainly_and_leave_nothing(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("not a folder")
    for suffix in (".csv", ".xlsx"):
        (tmp_path / f"a-folder{suffix}").mkdir()
    before = tree(tmp_path)
    for suffix in (".csv", ".xlsx"):
        for path in (tmp_path / "no such folder" / f"x{suffix}", tmp_path / f"a-folder{suffix}",
                     a_file / f"x{suffix}"):
            with pytest.raises(ExportFailed) as caught:
                if suffix == ".csv":
                    write_csv(path, HEADER, [["Acme", 1]])
                else:
                    write_xlsx(path, [Sheet("S", HEADER, [["Acme", 1]])])
            message = caught.value.message
            assert message.endswith(".") and "Traceback" not in message, message
            assert "Errno" not in message and "Error" not in message, message
            assert tree(tmp_path) == before, path


def test_an_export_takes_a_unicode_path(tmp_path: Path) -> None:
    folder = tmp_path / "папка ✓ שלום"
    folder.mkdir()
    written = write_csv(folder / "données 🚀", HEADER, [["Ärzte Studio", 12_400], ["شركة", 1]])
    assert written == folder / "données 🚀.csv"
    with written.open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [HEADER, ["Ärzte Studio", "12400"], ["شركة", "1"]]
    assert [p.name for p in folder.iterdir()] == ["données 🚀.csv"]


def test_csv_text_cells_never_start_a_formula(tmp_path: Path) -> None:
    written = write_csv(tmp_path / "top.csv", HEADER, [[name, 1] for name in FORMULAS])
    with written.open(encoding="utf-8", newline="") as handle:
        for row in list(csv.reader(handle))[1:]:
            assert not row[0].startswith(("=", "+", "-", "@")), row


def test_xlsx_text_cells_are_never_formulas(tmp_path: Path) -> None:
    written = write_xlsx(tmp_path / "report.xlsx",
                         [Sheet("Report", HEADER, [[name, 1] for name in FORMULAS])])
    sheet = load_workbook(written).active
    assert sheet is not None
    for row in sheet.iter_rows(min_row=2):
        assert row[0].data_type != "f", row[0].value


def test_the_reasons_an_export_fails_are_translated(
    tmp_path: Path, pseudo_translated: object
) -> None:
    with pytest.raises(ExportFailed) as missing:
        write_csv(tmp_path / "no such folder" / "x.csv", HEADER, [])
    assert missing.value.message == "⟦The folder {folder} does not exist.⟧".format(
        folder=tmp_path / "no such folder")
    (tmp_path / "a-folder.csv").mkdir()
    with pytest.raises(ExportFailed) as refused:
        write_csv(tmp_path / "a-folder.csv", HEADER, [])
    # The system's reason is the system's; the sentence around it is translated.
    assert refused.value.message.startswith("⟦a-folder.csv could not be written to ")
    stages: list[str] = []
    write_xlsx(tmp_path / "ok.xlsx", [Sheet("Usage", HEADER, [["Acme", 1]])],
               progress=lambda stage, _done, _total: stages.append(stage))
    assert stages == ["⟦Writing the sheet Usage⟧"]
