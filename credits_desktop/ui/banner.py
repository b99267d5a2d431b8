"""The banner at the top of the main window while the database cannot be reached.

One non-modal bar, never a dialog per failure: "Lost the connection to the
database. Retrying in 8 s…", counting down, with a Retry now button. The
:class:`~credits_desktop.ui.live.ChangeWatcher` decides when to try; the banner
only shows it, and hides when the connection is back. Its colours are the theme's
warning colours for the palette in use (and follow it when it changes).
"""

from __future__ import annotations

import math

from PySide6.QtCore import (
    QT_TRANSLATE_NOOP,
    QCoreApplication,
    QElapsedTimer,
    QEvent,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from . import theme

__all__ = ["ConnectionBanner", "countdown_seconds"]

# The English source texts; shown through tr() (see ConnectionBanner).
TRYING = str(QT_TRANSLATE_NOOP(
    "ConnectionBanner", "Lost the connection to the database. Trying to reconnect…"))

# How often the countdown is redrawn: often enough that it never shows a stale second.
TICK_MS = 250


def countdown_seconds(remaining_ms: float) -> int:
    """Whole seconds to show for a wait of ``remaining_ms`` (rounded up, at least 1)."""
    return max(1, math.ceil(remaining_ms / 1000))


class ConnectionBanner(QFrame):
    """A warning bar with a countdown to the next try and a Retry now button."""

    retry_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("connectionBanner")
        self.setAccessibleName(self.tr("Connection lost"))
        self._restyle()
        self.text = QLabel(self._trying())
        self.text.setObjectName("connectionBannerText")
        self.text.setWordWrap(True)
        self.retry_button = QPushButton(self.tr("Retry now"))
        self.retry_button.setObjectName("retryConnection")
        self.retry_button.setAccessibleName(self.tr("Retry connecting now"))
        self.retry_button.setToolTip(self.tr("Try to reach the database now instead of waiting"))
        self.retry_button.clicked.connect(self.retry_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.retry_button)

        self._deadline_ms = 0
        self._clock = QElapsedTimer()
        self._ticker = QTimer(self)
        self._ticker.setInterval(TICK_MS)
        self._ticker.timeout.connect(self._tick)
        self.hide()

    def _restyle(self) -> None:
        theme.set_style_sheet(
            self,
            f"#connectionBanner {{ background: {theme.css('warning_background')};"
            f" border: 1px solid {theme.css('warning_border')}; border-radius: 4px; }}"
            f"#connectionBanner QLabel {{ color: {theme.css('warning')}; }}")

    def changeEvent(self, event: QEvent) -> None:
        # The light or dark palette was switched: the banner's colours follow.
        if theme.is_palette_change(event):
            self._restyle()
        super().changeEvent(event)

    @Slot()
    def show_trying(self) -> None:
        """The connection is lost and a try is under way (or about to be)."""
        self._ticker.stop()
        self.text.setText(self._trying())
        self.retry_button.setEnabled(False)
        self.show()

    @Slot(float)
    def show_countdown(self, seconds: float) -> None:
        """The next try is in ``seconds``."""
        self._deadline_ms = round(seconds * 1000)
        self._clock.start()
        self.retry_button.setEnabled(True)
        self._tick()
        self._ticker.start()
        self.show()

    @Slot()
    def dismiss(self) -> None:
        """The connection is back."""
        self._ticker.stop()
        self.hide()

    @Slot()
    def _tick(self) -> None:
        remaining = self._deadline_ms - self._clock.elapsed()
        if remaining <= 0:
            self._ticker.stop()
            self.text.setText(self._trying())
            return
        self.text.setText(self.tr("Lost the connection to the database. Retrying in %n s…", "",
                                  countdown_seconds(remaining)))

    @staticmethod
    def _trying() -> str:
        return QCoreApplication.translate("ConnectionBanner", TRYING)
