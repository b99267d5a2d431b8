"""The light and dark palettes: readable, applied to open windows, following the system.

Contrast is measured as WCAG 2 defines it (relative luminance, ratio from 1 to 21):
7 or more for body text on its background (level AAA), 4.5 for the coloured texts
the views draw themselves (AA).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from services.factories import World

from credits_desktop.ui import theme
from credits_desktop.ui.detail_models import LedgerModel

from .conftest import MakeWindow

Role, Group = QPalette.ColorRole, QPalette.ColorGroup
SCHEMES = [Qt.ColorScheme.Light, Qt.ColorScheme.Dark]


def luminance(color: QColor) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(color.red()) + 0.7152 * linear(color.green()) \
        + 0.0722 * linear(color.blue())


def contrast(a: QColor, b: QColor) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.fixture
def restored_look(qapp: QApplication) -> Iterator[QApplication]:
    """The application's style and palette as they were before the test."""
    style, palette = qapp.style().name(), qapp.palette()
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)


@pytest.mark.parametrize("scheme", SCHEMES, ids=["light", "dark"])
def test_both_palettes_are_readable(scheme: Qt.ColorScheme) -> None:
    palette = theme.palette(scheme)

    def ratio(fore: QPalette.ColorRole, back: QPalette.ColorRole,
              group: QPalette.ColorGroup = Group.Active) -> float:
        return contrast(palette.color(group, fore), palette.color(group, back))

    assert ratio(Role.WindowText, Role.Window) >= 7
    assert ratio(Role.Text, Role.Base) >= 7
    assert ratio(Role.Text, Role.AlternateBase) >= 7
    assert ratio(Role.ButtonText, Role.Button) >= 7
    assert ratio(Role.ToolTipText, Role.ToolTipBase) >= 7
    assert ratio(Role.HighlightedText, Role.Highlight) >= 4.5
    assert ratio(Role.PlaceholderText, Role.Base) >= 4.5
    assert ratio(Role.Link, Role.Base) >= 4.5
    # Disabled text is still legible, and clearly not the enabled text.
    assert ratio(Role.Text, Role.Base, Group.Disabled) >= 3
    assert ratio(Role.WindowText, Role.Window, Group.Disabled) >= 3
    assert contrast(palette.color(Group.Disabled, Role.Text),
                    palette.color(Group.Active, Role.Text)) >= 2.5
    # The palette says which it is, and so does every semantic colour.
    assert theme.is_dark(palette) is (scheme == Qt.ColorScheme.Dark)
    for name in ("muted", "danger", "warning", "success"):
        for back in (Role.Base, Role.Window):
            assert contrast(theme.color(name, palette), palette.color(back)) >= 4.5, name
        assert contrast(theme.color(name, palette), theme.color("card", palette)) >= 4.5
    assert contrast(theme.color("danger", palette),
                    theme.color("danger_background", palette)) >= 7
    assert contrast(theme.color("warning", palette),
                    theme.color("warning_background", palette)) >= 7


def test_the_two_schemes_have_the_same_semantic_colours() -> None:
    assert set(theme.SEMANTIC["light"]) == set(theme.SEMANTIC["dark"])
    assert theme.SEMANTIC["light"]["danger"] != theme.SEMANTIC["dark"]["danger"]
    with pytest.raises(KeyError):
        theme.color("no-such-colour")


def test_switching_the_scheme_recolours_an_open_window(
    qtbot: QtBot, world: World, make_window: MakeWindow, restored_look: QApplication
) -> None:
    app = restored_look
    window = make_window()
    window.show()
    qtbot.waitUntil(lambda: not window.model.is_loading)
    detail = window.open_account_id(world.account_id)
    qtbot.waitUntil(lambda: detail.summary is not None and not detail.is_loading)

    assert theme.apply_theme(app, Qt.ColorScheme.Dark) == Qt.ColorScheme.Dark
    assert app.style().name().lower() == "fusion"
    dark = theme.palette(Qt.ColorScheme.Dark)
    # Qt passes the new palette on to the widgets by event.
    qtbot.waitUntil(lambda: window.palette().color(Role.Window) == dark.color(Role.Window))
    qtbot.waitUntil(
        lambda: detail.grants_table.palette().color(Role.Base) == dark.color(Role.Base))
    # The views' own colours follow: the error bar, the cards, a minus in the ledger.
    assert theme.css("danger_background") in window.error_bar.styleSheet()
    assert theme.SEMANTIC["dark"]["danger_background"] in window.error_bar.styleSheet()
    assert theme.SEMANTIC["dark"]["card"] in detail.cards["total"].styleSheet()
    assert theme.color("danger") == QColor(theme.SEMANTIC["dark"]["danger"])

    theme.apply_theme(app, Qt.ColorScheme.Light)
    light = theme.palette(Qt.ColorScheme.Light)
    qtbot.waitUntil(lambda: window.palette().color(Role.Window) == light.color(Role.Window))
    assert theme.SEMANTIC["light"]["danger_background"] in window.error_bar.styleSheet()
    assert theme.SEMANTIC["light"]["card"] in detail.cards["total"].styleSheet()
    window.worker.wait_for_done()


def test_the_ledger_colours_follow_the_scheme(restored_look: QApplication) -> None:
    app = restored_look
    minus = LedgerModel.foreground
    for scheme, name in ((Qt.ColorScheme.Dark, "dark"), (Qt.ColorScheme.Light, "light")):
        theme.apply_theme(app, scheme)
        brush = minus(None, _row(-40), 2)  # type: ignore[arg-type]
        assert brush is not None
        assert brush.color() == QColor(theme.SEMANTIC[name]["danger"])


def _row(delta: int) -> object:
    class Row:
        pass

    row = Row()
    row.delta = delta  # type: ignore[attr-defined]
    return row


def test_the_application_follows_the_system_when_it_switches(
    restored_look: QApplication
) -> None:
    app = restored_look
    theme.apply_theme(app, Qt.ColorScheme.Light)
    theme.follow_system(app)
    theme.follow_system(app)  # once is enough; a second call adds nothing
    app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert theme.is_dark()
    assert app.palette().color(Role.Window) == \
        theme.palette(Qt.ColorScheme.Dark).color(Role.Window)
    app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert not theme.is_dark()
