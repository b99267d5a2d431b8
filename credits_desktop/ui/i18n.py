"""The interface's language and formats: Qt's translators and the default locale.

:func:`install_translations` is called once at start-up, right after the
``QApplication`` is made and before any window: it makes ``locale`` the default
``QLocale`` (numbers and dates in :mod:`credits_desktop.ui.formatting` follow it;
the C/POSIX locale means English (United States)), and installs, in this order
(the last installed is asked first):

1. :class:`SourcePlurals`, which turns the "(s)" of a source text with a count into
   the English singular or plural (``tr("%n charge(s)", "", n)`` reads "1 charge",
   "2 charges") for every text no catalogue translates;
2. Qt's own translations for the locale (``qtbase_<language>.qm`` from
   ``QLibraryInfo.path(TranslationsPath)``: the standard buttons, the file and
   colour dialogs, context menus), when they exist;
3. the application's catalogue ``credits_desktop/ui/translations/
   credits_desktop_<locale name>.qm`` (``credits_desktop_de_DE.qm``, or
   ``credits_desktop_de.qm`` for every German), when it exists.

No catalogue ships yet: every text is written in English in the source and goes
through ``tr()`` / ``QCoreApplication.translate`` (constants are marked with
``QT_TRANSLATE_NOOP``), so that one can be made without touching the code. To
make or refresh the German catalogue from the source (new texts are added, the
translations kept), translate it in Qt Linguist, and compile it::

    mkdir -p credits_desktop/ui/translations
    pyside6-lupdate credits_desktop/ui/*.py \\
        -ts credits_desktop/ui/translations/credits_desktop_de.ts
    pyside6-linguist credits_desktop/ui/translations/credits_desktop_de.ts
    pyside6-lrelease credits_desktop/ui/translations/credits_desktop_de.ts \\
        -qm credits_desktop/ui/translations/credits_desktop_de.qm

The ``.qm`` file must be packaged with the application (it is looked for beside
this module). Texts from the services (refusals, validation messages, summaries)
are written without Qt and are not translated here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

__all__ = [
    "APP_CATALOGUE",
    "TRANSLATIONS_DIR",
    "SourcePlurals",
    "effective_locale",
    "install_translations",
    "installed_translators",
    "plural",
]

# Where the application's compiled catalogues are looked for, and their base name.
TRANSLATIONS_DIR: Final = Path(__file__).resolve().parent / "translations"
APP_CATALOGUE: Final = "credits_desktop"

# The largest count Qt's plural choice takes (a C int).
_INT_MAX: Final = 2**31 - 1

# The translators this module installed, to replace them when called again.
_installed: list[QTranslator] = []


class SourcePlurals(QTranslator):
    """English plural forms for source texts with a count: "(s)" is dropped for one
    and becomes "s" otherwise. Any text without a count, or without "(s)", is left
    to the other translators and to the source text."""

    def translate(
        self, context: str, source: str, disambiguation: str | None = None, n: int = -1
    ) -> str | None:
        if n < 0 or "(s)" not in source:
            return None  # not found: Qt asks the next translator
        return source.replace("(s)", "" if n == 1 else "s")

    def isEmpty(self) -> bool:
        return False


def plural(count: int) -> int:
    """``count`` as the number Qt chooses a plural form by (a C int): a larger count,
    which would not fit, chooses as the largest one does. For texts that show the
    number themselves (``{credits}``), not with ``%n``."""
    return max(0, min(count, _INT_MAX))


def effective_locale(locale: QLocale) -> QLocale:
    """``locale``, except that the C/POSIX locale (no language, digits not grouped)
    becomes English (United States)."""
    if locale.language() == QLocale.Language.C:
        return QLocale(QLocale.Language.English, QLocale.Country.UnitedStates)
    return locale


def installed_translators() -> list[QTranslator]:
    """The translators the last :func:`install_translations` installed (first
    installed first)."""
    return list(_installed)


def install_translations(app: QCoreApplication, locale: QLocale | None = None) -> QLocale:
    """Make ``locale`` (default: the system's) the application's locale and install its
    translations (see the module docstring); returns the locale in use.

    Calling it again replaces the translators an earlier call installed.
    """
    chosen = effective_locale(locale if locale is not None else QLocale.system())
    QLocale.setDefault(chosen)
    for old in _installed:
        app.removeTranslator(old)
    _installed.clear()

    plurals = SourcePlurals(app)
    app.installTranslator(plurals)
    _installed.append(plurals)

    qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    for name, folder in (("qtbase", qt_dir), (APP_CATALOGUE, str(TRANSLATIONS_DIR))):
        translator = QTranslator(app)
        # Tries name_de_DE.qm, then name_de.qm… for each of the locale's UI languages.
        if translator.load(chosen, name, "_", folder) and app.installTranslator(translator):
            _installed.append(translator)
        else:
            translator.deleteLater()
    return chosen


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:
    """Mark ``text`` for translation in ``context`` and give it back unchanged: for
    tables of texts made at import and translated where shown. Qt's own is typed as
    returning ``object``; lupdate finds either by the name."""
    return text


def counted(text: str, n: int) -> str:
    """A text with a count as ``tr("%Ln charge(s)", "", n)`` gave it: while no
    translator has answered, its "(s)" becomes the English singular or plural ("1
    charge", "2 charges"); a translation is left as it is."""
    return text.replace("(s)", "" if n == 1 else "s")
