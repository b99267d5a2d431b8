"""Pseudo-translation: proof that the interface's texts go through Qt's translation.

A :class:`PseudoTranslator` installed on the application answers every lookup with
the source text in brackets (``⟦Refund…⟧``). A text that reaches the screen without
brackets was never passed to ``tr()`` / ``QCoreApplication.translate``, so a real
translation could never replace it. :func:`untranslated_texts` walks a widget tree
and lists such texts: window titles, labels, buttons, actions and their menus, group
boxes, tabs, placeholders, tooltips, accessible names and table headers.

Texts without letters (numbers, dates, punctuation) are data, not words, and are
skipped; other data (account names, emails…) is passed as ``data`` by the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

import pytest
from PySide6.QtCore import QCoreApplication, Qt, QTranslator
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPlainTextEdit,
    QTableView,
    QTabWidget,
    QTreeView,
    QWidget,
)

OPEN, CLOSE = "⟦", "⟧"
_LETTER = re.compile(r"[^\W\d_]")
_TAGS = re.compile(r"<[^>]+>")


class PseudoTranslator(QTranslator):
    """Answers every lookup, whatever its context, with the source in brackets."""

    def translate(  # type: ignore[override]
        self, context: str, source: str, disambiguation: str | None = None, n: int = -1
    ) -> str:
        return f"{OPEN}{source}{CLOSE}"

    def isEmpty(self) -> bool:
        return False


@pytest.fixture
def pseudo_translated(qapp: QApplication) -> Iterator[PseudoTranslator]:
    """The pseudo-translation installed for the test, removed after it."""
    translator = PseudoTranslator()
    qapp.installTranslator(translator)
    try:
        yield translator
    finally:
        qapp.removeTranslator(translator)


def is_translated(text: str, data: Callable[[str], bool] | None = None) -> bool:
    """Whether ``text`` went through the translator, is data, or has no words at all."""
    plain = _TAGS.sub(" ", text).replace("&", "")
    if OPEN in plain:
        return True
    if not _LETTER.search(plain):
        return True
    return data is not None and data(plain.strip())


def _widget_texts(widget: QWidget) -> Iterator[tuple[str, str]]:
    kind = type(widget).__name__
    name = widget.objectName() or kind
    if widget.isWindow():
        yield f"{name} window title", widget.windowTitle()
    yield f"{name} tooltip", widget.toolTip()
    yield f"{name} accessible name", widget.accessibleName()
    yield f"{name} accessible description", widget.accessibleDescription()
    if isinstance(widget, QLabel):
        yield f"{name} label", widget.text()
    if isinstance(widget, QAbstractButton):
        yield f"{name} button", widget.text()
    if isinstance(widget, QGroupBox):
        yield f"{name} group", widget.title()
    if isinstance(widget, QLineEdit):
        yield f"{name} placeholder", widget.placeholderText()
    if isinstance(widget, QPlainTextEdit):
        yield f"{name} placeholder", widget.placeholderText()
    if isinstance(widget, QTabWidget):
        for i in range(widget.count()):
            yield f"{name} tab {i}", widget.tabText(i)
            yield f"{name} tab {i} tooltip", widget.tabToolTip(i)
    # Only tables and trees have column headers (a list model hides columnCount).
    if isinstance(widget, QTableView | QTreeView) and widget.model() is not None:
        model = widget.model()
        for column in range(model.columnCount()):
            header = model.headerData(column, Qt.Orientation.Horizontal,
                                      Qt.ItemDataRole.DisplayRole)
            if isinstance(header, str):
                yield f"{name} header {column}", header
    if isinstance(widget, QMenu):
        yield f"{name} menu title", widget.title()
    if isinstance(widget, QMainWindow) and widget.menuBar() is not None:
        for action in widget.menuBar().actions():
            yield from _action_texts(action, name)
    for action in widget.actions():
        yield from _action_texts(action, name)


def _bare(text: str) -> str:
    return text.replace("&", "").replace("…", "").replace("...", "").strip()


def _action_texts(action: QAction, owner: str) -> Iterator[tuple[str, str]]:
    if action.isSeparator():
        return
    where = f"{owner} action {action.text()!r}"
    yield where, action.text()
    if _bare(action.toolTip()) != _bare(action.text()):
        # Qt makes a tooltip from the text when none is set; only a set one counts.
        yield f"{where} tooltip", action.toolTip()
    yield f"{where} status tip", action.statusTip()
    menu = action.menu()
    if isinstance(menu, QMenu):
        yield f"{where} menu title", menu.title()
        for child in menu.actions():
            yield from _action_texts(child, owner)


def untranslated_texts(
    roots: QWidget | Iterable[QWidget],
    data: Callable[[str], bool] | None = None,
    *,
    combos: bool = False,
) -> list[str]:
    """``where: text`` for every text under ``roots`` that never met the translator.

    ``data`` says whether a text is data (a customer's name, an email…), not words.
    ``combos`` also checks the items of every combo box (off by default: most combos
    list data from the database, such as plans and features).
    """
    found: list[str] = []
    seen: set[tuple[str, str]] = set()
    widgets: list[QWidget] = []
    for root in [roots] if isinstance(roots, QWidget) else list(roots):
        widgets.append(root)
        widgets.extend(root.findChildren(QWidget))
    for widget in widgets:
        texts = list(_widget_texts(widget))
        if combos and isinstance(widget, QComboBox):
            texts += [(f"{widget.objectName() or 'combo'} item {i}", widget.itemText(i))
                      for i in range(widget.count())]
        for where, text in texts:
            if text and not is_translated(text, data) and (where, text) not in seen:
                seen.add((where, text))
                found.append(f"{where}: {text}")
    return found


def translate(context: str, text: str) -> str:
    """What the application shows for ``text`` under the installed translators."""
    return QCoreApplication.translate(context, text)
