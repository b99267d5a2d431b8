"""What the interface remembers between runs, in ``QSettings``.

Small functions, each saving or putting back one thing: the main window's size,
place and tool bar (:func:`remember_window`), the splitter between the accounts
and the open tabs (:func:`remember_splitter`), a table header's column widths,
order and sort column (:func:`remember_header`), and which accounts were open on
which database (:func:`remember_open_accounts`; keyed by the database's display URL,
which never holds a password, so that each database reopens its own accounts).

Restoring is forgiving: a value missing, from an older version or simply broken
is ignored and the default layout stays; nothing here ever fails a start.
Nothing in this module reads or writes a database (it runs on the GUI thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QHeaderView, QMainWindow, QSplitter

__all__ = [
    "OpenAccounts",
    "database_key",
    "keep_header",
    "remember_header",
    "remember_open_accounts",
    "remember_splitter",
    "remember_window",
    "remembered_open_accounts",
    "restore_header",
    "restore_splitter",
    "restore_window",
]

WINDOW_GEOMETRY = "mainWindow/geometry"
WINDOW_STATE = "mainWindow/state"
SPLITTER = "mainWindow/splitter"
OPEN_ACCOUNTS = "openAccounts"
# Bumped when the tool bars and docks change in a way an old state must not restore.
STATE_VERSION = 1


def _bytes(settings: QSettings, key: str) -> QByteArray | None:
    value = settings.value(key)
    if isinstance(value, QByteArray) and not value.isEmpty():
        return value
    if isinstance(value, bytes | bytearray) and value:
        return QByteArray(bytes(value))
    return None


# -- headers ------------------------------------------------------------------------------------


def remember_header(header: QHeaderView, settings: QSettings, key: str) -> None:
    """Save ``header``'s column widths, order, hidden columns and sort indicator."""
    settings.setValue(key, header.saveState())


def restore_header(header: QHeaderView, settings: QSettings, key: str) -> bool:
    """Put back what :func:`remember_header` saved; False (and nothing changed) when
    there is nothing usable, e.g. a state of a table that had other columns.

    The sort indicator comes back without ``sortIndicatorChanged``: a view sorting
    in its model must be told (``sortByColumn``), or be given the state before
    sorting is enabled (which sorts by the indicator)."""
    state = _bytes(settings, key)
    if state is None:
        return False
    return bool(header.restoreState(state))


def keep_header(header: QHeaderView, settings: QSettings, key: str) -> bool:
    """:func:`restore_header`, then save the header whenever it changes (a column
    resized, moved, or the sort changed); returns whether a state was restored."""
    restored = restore_header(header, settings, key)

    def save() -> None:
        remember_header(header, settings, key)

    header.sectionResized.connect(save)
    header.sectionMoved.connect(save)
    header.sortIndicatorChanged.connect(save)
    return restored


# -- the window and its splitter ------------------------------------------------------------------


def remember_window(window: QMainWindow, settings: QSettings) -> None:
    """Save the window's size and place (maximised or not) and its tool bars."""
    settings.setValue(WINDOW_GEOMETRY, window.saveGeometry())
    settings.setValue(WINDOW_STATE, window.saveState(STATE_VERSION))


def restore_window(window: QMainWindow, settings: QSettings) -> bool:
    """Put back what :func:`remember_window` saved (before the window is shown)."""
    geometry = _bytes(settings, WINDOW_GEOMETRY)
    restored = geometry is not None and window.restoreGeometry(geometry)
    state = _bytes(settings, WINDOW_STATE)
    if state is not None:
        window.restoreState(state, STATE_VERSION)
    return bool(restored)


def remember_splitter(splitter: QSplitter, settings: QSettings, key: str = SPLITTER) -> None:
    settings.setValue(key, splitter.saveState())


def restore_splitter(splitter: QSplitter, settings: QSettings, key: str = SPLITTER) -> bool:
    """Put back the sizes :func:`remember_splitter` saved; False when there are none
    or they would hide one of its parts (the caller then uses its default)."""
    state = _bytes(settings, key)
    if state is None or not splitter.restoreState(state):
        return False
    sizes = splitter.sizes()
    # Restoring also restores which parts were hidden; a saved 0 size for a part
    # about to be shown would make it look missing.
    if any(size <= 0 for size in sizes):
        return False
    for index in range(splitter.count()):
        widget = splitter.widget(index)
        if widget is not None and widget.isHidden():
            widget.show()
    return True


# -- the open accounts --------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenAccounts:
    """The accounts open in tabs, left to right, and the one that was current."""

    ids: tuple[int, ...] = ()
    current: int | None = None


def database_key(display_url: str) -> str:
    """A settings key for a database: its display URL (no password in it), with the
    characters settings keys treat specially ("/", "\\", ":"…) escaped."""
    return quote(display_url, safe="")


def _group(display_url: str) -> str:
    return f"{OPEN_ACCOUNTS}/{database_key(display_url)}"


def remember_open_accounts(settings: QSettings, display_url: str,
                           open_accounts: OpenAccounts) -> None:
    """Save which accounts are open on the database ``display_url`` (and which one
    is current), replacing what was saved for it before."""
    group = _group(display_url)
    settings.setValue(f"{group}/ids", ",".join(str(i) for i in open_accounts.ids))
    settings.setValue(f"{group}/current",
                      "" if open_accounts.current is None else str(open_accounts.current))


def remembered_open_accounts(settings: QSettings, display_url: str) -> OpenAccounts:
    """What :func:`remember_open_accounts` saved for ``display_url`` (none if nothing,
    or nothing readable, was saved)."""
    group = _group(display_url)
    ids: list[int] = []
    for part in str(settings.value(f"{group}/ids", "") or "").split(","):
        part = part.strip()
        if part.isdigit() and int(part) not in ids:
            ids.append(int(part))
    current_text = str(settings.value(f"{group}/current", "") or "").strip()
    current = int(current_text) if current_text.isdigit() else None
    return OpenAccounts(tuple(ids), current if current in ids else None)

