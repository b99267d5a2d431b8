"""Light and dark palettes that follow the system, and the application's own colours.

:func:`apply_theme` puts the Fusion style and one of two explicit palettes on the
application: the one matching the system's colour scheme
(``QGuiApplication.styleHints().colorScheme()``), or the scheme given.
:func:`follow_system` re-applies it whenever the system switches between light and
dark while the application runs. Fusion with our own palettes looks the same on
every platform, and both palettes are checked for readable contrast
(tests/ui/test_ui_theme.py).

Views that paint or style something themselves (an error bar, a failed charge in
red, a balance card) ask :func:`color` for a *semantic* colour ("danger", "muted",
"card"…) instead of writing a colour down: it answers for the palette in use, so
the same view reads well in light and in dark. Widgets that put such a colour in a
style sheet re-make it on ``QEvent.PaletteChange`` (the application's palette change
reaches every widget as one).
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

__all__ = [
    "SEMANTIC",
    "apply_theme",
    "color",
    "css",
    "follow_system",
    "is_dark",
    "is_palette_change",
    "palette",
    "set_style_sheet",
    "system_scheme",
]

Role = QPalette.ColorRole
Group = QPalette.ColorGroup

# The active colours of each palette (inactive ones are the same: a window in the
# background stays as readable as one in front).
_LIGHT: Final[dict[QPalette.ColorRole, str]] = {
    Role.Window: "#f3f4f6",
    Role.WindowText: "#1b1d21",
    Role.Base: "#ffffff",
    Role.AlternateBase: "#f4f6f9",
    Role.Text: "#1b1d21",
    Role.Button: "#e9ebef",
    Role.ButtonText: "#1b1d21",
    Role.BrightText: "#ffffff",
    Role.Light: "#ffffff",
    Role.Midlight: "#e2e5ea",
    Role.Mid: "#b9bec7",
    Role.Dark: "#8c929c",
    Role.Shadow: "#5c6169",
    Role.Highlight: "#1f5fbf",
    Role.HighlightedText: "#ffffff",
    Role.Link: "#1a56a8",
    Role.LinkVisited: "#6b3fa0",
    Role.ToolTipBase: "#fffbe6",
    Role.ToolTipText: "#1b1d21",
    Role.PlaceholderText: "#686e78",
    Role.Accent: "#1f5fbf",
}
_LIGHT_DISABLED: Final[dict[QPalette.ColorRole, str]] = {
    Role.WindowText: "#777d87",
    Role.Text: "#777d87",
    Role.ButtonText: "#777d87",
    Role.Highlight: "#c5cad3",
    Role.HighlightedText: "#5c6169",
    Role.Base: "#f3f4f6",
    Role.Button: "#eceef1",
    Role.PlaceholderText: "#a3a8b0",
}

_DARK: Final[dict[QPalette.ColorRole, str]] = {
    Role.Window: "#1f2125",
    Role.WindowText: "#e6e8eb",
    Role.Base: "#16181b",
    Role.AlternateBase: "#1e2024",
    Role.Text: "#e6e8eb",
    Role.Button: "#2c2f35",
    Role.ButtonText: "#e6e8eb",
    Role.BrightText: "#ffffff",
    Role.Light: "#474b53",
    Role.Midlight: "#383b42",
    Role.Mid: "#4d515a",
    Role.Dark: "#101114",
    Role.Shadow: "#000000",
    Role.Highlight: "#2e64bb",
    Role.HighlightedText: "#ffffff",
    Role.Link: "#8ab4f8",
    Role.LinkVisited: "#c29df5",
    Role.ToolTipBase: "#2c2f35",
    Role.ToolTipText: "#e6e8eb",
    Role.PlaceholderText: "#9aa0a9",
    Role.Accent: "#2e64bb",
}
_DARK_DISABLED: Final[dict[QPalette.ColorRole, str]] = {
    Role.WindowText: "#7d828b",
    Role.Text: "#7d828b",
    Role.ButtonText: "#7d828b",
    Role.Highlight: "#3a3d44",
    Role.HighlightedText: "#9aa0a9",
    Role.Base: "#1b1d21",
    Role.Button: "#26292e",
    Role.PlaceholderText: "#60656d",
}

# The application's own colours, by meaning, for each scheme.
SEMANTIC: Final[dict[str, dict[str, str]]] = {
    "light": {
        # Secondary text: notes, captions.
        "muted": "#5b616b",
        # Something went wrong or takes credits away (a failed charge, a minus).
        "danger": "#8e1519",
        "danger_background": "#fdecea",
        "danger_border": "#f1aeb5",
        # Needs attention but nothing is lost (waiting for approval, reconnecting).
        "warning": "#6b4500",
        "warning_background": "#fff3cd",
        "warning_border": "#ffda6a",
        # Done, or credits given (a plus in the ledger, a refund made).
        "success": "#1b5e20",
        # A raised panel on the window (the balance cards).
        "card": "#ffffff",
        "card_border": "#cfd4db",
    },
    "dark": {
        "muted": "#a9afb8",
        "danger": "#ff9c94",
        "danger_background": "#3a1719",
        "danger_border": "#7c2d32",
        "warning": "#f3c65a",
        "warning_background": "#372b0d",
        "warning_border": "#7a6016",
        "success": "#8fd49a",
        "card": "#272a2f",
        "card_border": "#444851",
    },
}


def system_scheme() -> Qt.ColorScheme:
    """The system's colour scheme, light when it does not say."""
    scheme = QGuiApplication.styleHints().colorScheme()
    return Qt.ColorScheme.Dark if scheme == Qt.ColorScheme.Dark else Qt.ColorScheme.Light


def palette(scheme: Qt.ColorScheme) -> QPalette:
    """The explicit palette of ``scheme`` (dark for Dark, light otherwise)."""
    dark = scheme == Qt.ColorScheme.Dark
    active, disabled = (_DARK, _DARK_DISABLED) if dark else (_LIGHT, _LIGHT_DISABLED)
    result = QPalette()
    for role, value in active.items():
        result.setColor(role, QColor(value))
    for role, value in disabled.items():
        result.setColor(Group.Disabled, role, QColor(value))
    return result


def apply_theme(app: QApplication, scheme: Qt.ColorScheme | None = None) -> Qt.ColorScheme:
    """Fusion and the palette of ``scheme`` (default: the system's) for ``app``; every
    open window changes with it. Returns the scheme applied."""
    chosen = system_scheme() if scheme is None or scheme == Qt.ColorScheme.Unknown \
        else scheme
    if app.style().name().lower() != "fusion":
        # Before the palette: setting a style resets the palette to the style's own.
        app.setStyle("Fusion")
    app.setPalette(palette(chosen))
    # A widget with a style sheet keeps the colours it was polished with (Qt does not
    # re-polish it when the application's palette changes): setting its sheet again
    # makes it take the new ones.
    for widget in app.allWidgets():
        sheet = widget.styleSheet()
        if sheet:
            widget.setStyleSheet(sheet)
    return chosen


def follow_system(app: QApplication) -> None:
    """Switch palettes when the system switches between light and dark (once per app)."""
    if app.property("creditsDeskFollowsScheme"):
        return
    app.setProperty("creditsDeskFollowsScheme", True)
    app.styleHints().colorSchemeChanged.connect(lambda scheme: apply_theme(app, scheme))


def is_dark(source: QPalette | None = None) -> bool:
    """Whether ``source`` (default: the application's palette) is a dark one."""
    used = source if source is not None else QGuiApplication.palette()
    return used.color(Role.Window).lightness() < 128


def color(name: str, source: QPalette | None = None) -> QColor:
    """The semantic colour ``name`` ("danger", "muted", "card"…) for the palette in use
    (or ``source``). An unknown name is a programming error (KeyError)."""
    return QColor(SEMANTIC["dark" if is_dark(source) else "light"][name])


def css(name: str, source: QPalette | None = None) -> str:
    """:func:`color` as a style sheet writes it ("#8e1519")."""
    return color(name, source).name()


def is_palette_change(event: QEvent) -> bool:
    """Whether ``event`` tells a widget the palette changed (its own or the
    application's): time to re-make style sheets that use :func:`css`."""
    return event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange)


def set_style_sheet(widget: QWidget, sheet: str) -> None:
    """Give ``widget`` the style sheet ``sheet`` unless it has it already: setting one
    changes the widget's palette, and a widget re-styling itself on palette changes
    would otherwise never stop."""
    if widget.styleSheet() != sheet:
        widget.setStyleSheet(sheet)
