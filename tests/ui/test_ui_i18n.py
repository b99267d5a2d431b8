"""Installing the interface's language: the default locale, Qt's own translations, the
application's catalogue when there is one, and English plurals without one.

Each test puts English (United States) back, as tests/ui/conftest.py installs it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QLocale
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from credits_desktop.ui import formatting as fmt
from credits_desktop.ui import i18n
from credits_desktop.ui.banner import ConnectionBanner

ENGLISH_US = QLocale(QLocale.Language.English, QLocale.Country.UnitedStates)
GERMAN = QLocale(QLocale.Language.German, QLocale.Country.Germany)
LRELEASE = Path(sys.executable).with_name("pyside6-lrelease")

# A German catalogue of two of the banner's texts, one with plural forms.
GERMAN_TS = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de_DE">
<context>
    <name>ConnectionBanner</name>
    <message>
        <source>Retry now</source>
        <translation>Jetzt erneut versuchen</translation>
    </message>
    <message numerus="yes">
        <source>Lost the connection to the database. Retrying in %n s…</source>
        <translation>
            <numerusform>Verbindung verloren. Neuer Versuch in %n Sekunde…</numerusform>
            <numerusform>Verbindung verloren. Neuer Versuch in %n Sekunden…</numerusform>
        </translation>
    </message>
</context>
</TS>
"""


@pytest.fixture
def back_to_english(qapp: QApplication) -> Iterator[None]:
    yield
    i18n.install_translations(qapp, ENGLISH_US)


def test_german_sets_the_locale_and_loads_qts_own_translations(
    qapp: QApplication, back_to_english: None
) -> None:
    assert QCoreApplication.translate("QPlatformTheme", "Cancel") == "Cancel"
    chosen = i18n.install_translations(qapp, GERMAN)
    assert chosen.name() == "de_DE" and QLocale().name() == "de_DE"
    assert fmt.credits_text(12_400) == "12.400"
    # Qt's standard buttons, from qtbase_de.qm.
    assert QCoreApplication.translate("QPlatformTheme", "Cancel") == "Abbrechen"
    # Texts of the application stay English (no German catalogue), plurals included.
    assert QCoreApplication.translate("IncidentDialog", "%Ln account(s)", "", 2) == "2 accounts"


def test_the_c_locale_means_english_united_states(
    qapp: QApplication, back_to_english: None
) -> None:
    chosen = i18n.install_translations(qapp, QLocale.c())
    assert chosen.name() == "en_US" and QLocale().name() == "en_US"
    assert fmt.credits_text(12_400) == "12,400"


def test_english_plurals_without_a_catalogue() -> None:
    def tr(text: str, n: int = -1) -> str:
        return QCoreApplication.translate("Test", text, "", n)

    assert tr("%n charge(s)", 1) == "1 charge"
    assert tr("%n charge(s)", 2) == "2 charges"
    assert tr("%n charge(s)", 0) == "0 charges"
    assert tr("Refund %Ln charge(s) now", 12_400) == "Refund 12,400 charges now"
    # Without a count, "(s)" is left as written; texts without it are not touched.
    assert tr("Charge(s) refunded") == "Charge(s) refunded"
    assert tr("Retrying in %n s…", 1) == "Retrying in 1 s…"


def test_plural_fits_any_count_into_what_qt_takes() -> None:
    assert i18n.plural(0) == 0 and i18n.plural(7) == 7
    assert i18n.plural(10**12) == 2**31 - 1
    assert QCoreApplication.translate("Test", "{n} credit(s)", "", i18n.plural(10**12)) == (
        "{n} credits")


def test_installing_again_replaces_the_translators(
    qapp: QApplication, back_to_english: None
) -> None:
    first = i18n.installed_translators()
    i18n.install_translations(qapp, GERMAN)
    second = i18n.installed_translators()
    assert len(second) == 2  # the plurals and qtbase_de (no application catalogue)
    assert not set(map(id, first)) & set(map(id, second))
    i18n.install_translations(qapp, ENGLISH_US)
    # Qt's German buttons are gone with the German translators.
    assert QCoreApplication.translate("QPlatformTheme", "Cancel") == "Cancel"
    assert QCoreApplication.translate("Test", "%n charge(s)", "", 1) == "1 charge"


@pytest.mark.skipif(not LRELEASE.exists(), reason="pyside6-lrelease is not installed")
def test_the_applications_catalogue_is_loaded_when_present(
    qapp: QApplication, qtbot: QtBot, back_to_english: None, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ts = tmp_path / "credits_desktop_de.ts"
    ts.write_text(GERMAN_TS, encoding="utf-8")
    qm = tmp_path / "credits_desktop_de.qm"
    subprocess.run([str(LRELEASE), str(ts), "-qm", str(qm)], check=True,
                   capture_output=True)
    monkeypatch.setattr(i18n, "TRANSLATIONS_DIR", tmp_path)
    i18n.install_translations(qapp, GERMAN)  # credits_desktop_de_DE.qm, then _de.qm
    banner = ConnectionBanner()
    qtbot.addWidget(banner)
    assert banner.retry_button.text() == "Jetzt erneut versuchen"
    banner.show_countdown(1)
    assert banner.text.text() == "Verbindung verloren. Neuer Versuch in 1 Sekunde…"
    banner.show_countdown(8)
    assert banner.text.text() == "Verbindung verloren. Neuer Versuch in 8 Sekunden…"
    # A text the catalogue lacks stays English.
    assert banner.retry_button.accessibleName() == "Retry connecting now"
