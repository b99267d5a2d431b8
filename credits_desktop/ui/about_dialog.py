"""Help > About Credits Desk: the version, the database, and what it all runs on.

Support asks for exactly these lines in a ticket, so "Copy" puts them on the
clipboard as plain text. The database is shown by its display URL (the password is
never in it) with its schema revision, read by the window's
:class:`~credits_desktop.ui.workers.Worker` off the GUI thread (or given, when the
caller knows it already).
"""

from __future__ import annotations

import platform

import PySide6
import sqlalchemy
from PySide6.QtCore import QSysInfo, Qt, Slot, qVersion
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from credits_desktop import __version__
from credits_desktop.store.database import Database
from credits_desktop.store.schema import schema_state

from .workers import Job, Worker

__all__ = ["AboutDialog", "read_revision"]


def read_revision(db: Database) -> str:
    """The database's schema revision (runs on a worker thread)."""
    return schema_state(db.engine).current or ""


class AboutDialog(QDialog):
    """The About box; :meth:`support_text` is what "Copy" copies."""

    def __init__(
        self,
        db: Database,
        worker: Worker,
        parent: QWidget | None = None,
        *,
        revision: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle(self.tr("About Credits Desk"))
        self._job: Job | None = None

        heading = QLabel(self.tr("Credits Desk {version}").format(version=__version__))
        heading.setObjectName("aboutHeading")
        font = heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        heading.setFont(font)
        blurb = QLabel(self.tr("Customers' AI credits: balances, charges, refunds and "
                               "adjustments, for support and finance staff."))
        blurb.setWordWrap(True)

        # (label, value label), in the order they are shown and copied.
        self._rows: list[tuple[str, QLabel]] = []
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.database = self._add(form, "aboutDatabase", self.tr("Database"),
                                  db.display_url())
        self.revision = self._add(form, "aboutRevision", self.tr("Schema revision"),
                                  self.tr("reading…"))
        self._add(form, "aboutPython", self.tr("Python"), platform.python_version())
        self._add(form, "aboutQt", self.tr("Qt"), qVersion())
        self._add(form, "aboutPySide", self.tr("PySide6"), PySide6.__version__)
        self._add(form, "aboutSqlAlchemy", self.tr("SQLAlchemy"), sqlalchemy.__version__)
        self._add(form, "aboutSystem", self.tr("Operating system"),
                  QSysInfo.prettyProductName())

        self.copy_button = QPushButton(self.tr("&Copy"))
        self.copy_button.setObjectName("copyAbout")
        self.copy_button.setAccessibleName(self.tr("Copy the version details"))
        self.copy_button.setToolTip(
            self.tr("Copy these lines to paste them into a support ticket"))
        self.copy_button.clicked.connect(self.copy)
        self.copied = QLabel()
        self.copied.setObjectName("aboutCopied")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(blurb)
        layout.addSpacing(6)
        layout.addLayout(form)
        layout.addWidget(self.copied)
        layout.addWidget(buttons)
        self.setMinimumWidth(460)

        if revision is not None:
            self._revision_arrived(revision)
        else:
            job = worker.submit(lambda: read_revision(db))
            job.succeeded.connect(self._revision_arrived)
            job.failed.connect(self._revision_failed)
            self._job = job

    def _add(self, form: QFormLayout, name: str, label: str, value: str) -> QLabel:
        shown = QLabel(value)
        shown.setObjectName(name)
        shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow(self.tr("{label}:").format(label=label), shown)
        self._rows.append((label, shown))
        return shown

    @property
    def loading(self) -> bool:
        return self._job is not None

    def support_text(self) -> str:
        """The lines a support ticket needs, as shown."""
        lines = [self.tr("Credits Desk {version}").format(version=__version__)]
        lines += [self.tr("{label}: {value}").format(label=label, value=value.text())
                  for label, value in self._rows]
        return "\n".join(lines)

    @Slot()
    def copy(self) -> None:
        QApplication.clipboard().setText(self.support_text())
        self.copied.setText(self.tr("Copied; paste it into the support ticket."))

    @Slot(object)
    def _revision_arrived(self, revision: object) -> None:
        self._job = None
        self.revision.setText(str(revision) or self.tr("none (an empty database)"))

    @Slot(str)
    def _revision_failed(self, message: str) -> None:
        self._job = None
        self.revision.setText(self.tr("could not be read: {message}").format(message=message))

    def done(self, result: int) -> None:
        if self._job is not None:
            # The dialog is closing: a revision arriving late has nowhere to go.
            self._job.discard()
            self._job = None
        super().done(result)
