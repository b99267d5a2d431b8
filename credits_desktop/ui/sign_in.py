"""Who is using the application: the sign-in.

On SQLite (one person's local database) the staff member picks their name from
the active staff; the choice is checked against the database before the dialog
closes, so a colleague deactivated meanwhile cannot sign in. On PostgreSQL the
database login *is* the staff member (the server has checked the password), so
there is no dialog: :func:`login_from_database` finds the staff row of the login.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.domain.permissions import ROLE_LABELS
from credits_desktop.services.accounts import database_login, list_staff, sign_in
from credits_desktop.services.errors import NotFound, PermissionDenied
from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database

from .workers import Worker

__all__ = ["SignInDialog", "login_from_database", "staff_label"]


def staff_label(actor: Actor) -> str:
    """How a staff member is named on screen: ``Dana Whitfield · Support``."""
    return f"{actor.display_name} · {ROLE_LABELS.get(actor.role, str(actor.role))}"


def login_from_database(db: Database) -> Actor:
    """The staff member of the PostgreSQL login (run it in a worker).

    Raises PermissionDenied with a message that names the login when it is not, or
    no longer, a staff member.
    """
    try:
        return database_login(db)
    except NotFound as exc:
        login = db.engine.url.username
        if login:
            message = QCoreApplication.translate(
                "SignInDialog",
                "The database login '{login}' is not a Credits Desk staff member. "
                "Ask an admin to add it as a staff member, or connect with your own login.",
            ).format(login=login)
        else:
            message = QCoreApplication.translate(
                "SignInDialog",
                "This database login is not a Credits Desk staff member. "
                "Ask an admin to add it as a staff member, or connect with your own login.")
        raise PermissionDenied(message) from exc


class SignInDialog(QDialog):
    """Pick your name from the active staff (SQLite); ``actor`` is set on acceptance."""

    def __init__(self, db: Database, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self.worker = Worker(self)
        self.actor: Actor | None = None
        self._busy = False

        self.setWindowTitle(self.tr("Sign in to Credits Desk"))
        self.setMinimumWidth(380)

        intro = QLabel(self.tr("Who are you? Choose your name to sign in."))
        intro.setWordWrap(True)
        self.staff_list = QListWidget()
        self.staff_list.setObjectName("staffList")
        self.staff_list.setAccessibleName(self.tr("Staff members"))
        self.staff_list.setAccessibleDescription(self.tr("Choose your name; Enter signs in"))
        self.staff_list.itemSelectionChanged.connect(self._update_buttons)
        self.staff_list.itemActivated.connect(self._item_activated)

        self.message = QLabel(self.tr("Loading the staff list…"))
        self.message.setObjectName("signInMessage")
        self.message.setWordWrap(True)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText(self.tr("&Sign in"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.staff_list, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

        self._set_busy(True)
        job = self.worker.submit(lambda: list_staff(db))
        job.succeeded.connect(self._staff_arrived)
        job.failed.connect(self._failed)

    @property
    def sign_in_button_enabled(self) -> bool:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()

    def select_username(self, username: str) -> bool:
        """Select the staff member ``username`` in the list; False if not listed."""
        for i in range(self.staff_list.count()):
            item = self.staff_list.item(i)
            actor = item.data(Qt.ItemDataRole.UserRole)
            if isinstance(actor, Actor) and actor.username == username:
                self.staff_list.setCurrentItem(item)
                return True
        return False

    def accept(self) -> None:
        """Check the chosen staff member in the database; close only if that worked."""
        chosen = self._chosen()
        if chosen is None or self._busy:
            return
        self._set_busy(True)
        self.message.setText(self.tr("Signing in as {name}…").format(name=chosen.display_name))
        self.message.show()
        db = self._db
        job = self.worker.submit(lambda: sign_in(db, chosen.username))
        job.succeeded.connect(self._signed_in)
        job.failed.connect(self._failed)

    def done(self, result: int) -> None:
        # Whatever is still running belongs to a dialog that is going away.
        self.worker.discard_all()
        super().done(result)

    def _chosen(self) -> Actor | None:
        item = self.staff_list.currentItem()
        if item is None or not item.isSelected():
            return None
        actor = item.data(Qt.ItemDataRole.UserRole)
        return actor if isinstance(actor, Actor) else None

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update_buttons()

    @Slot()
    def _update_buttons(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(not self._busy and self._chosen() is not None)

    @Slot(QListWidgetItem)
    def _item_activated(self, _item: QListWidgetItem) -> None:
        self.accept()

    @Slot(object)
    def _staff_arrived(self, staff: list[Actor]) -> None:
        self.staff_list.clear()
        for actor in staff:
            item = QListWidgetItem(staff_label(actor))
            item.setData(Qt.ItemDataRole.UserRole, actor)
            item.setToolTip(actor.username)
            self.staff_list.addItem(item)
        if staff:
            self.message.setText("")
            self.message.hide()
        else:
            self.message.setText(self.tr(
                "This database has no active staff members, so nobody can sign in. "
                "Add one with 'credits-desktop staff add'."
            ))
        self._set_busy(False)
        self.staff_list.setFocus()

    @Slot(object)
    def _signed_in(self, actor: Actor) -> None:
        self._busy = False
        self.actor = actor
        super().accept()

    @Slot(str)
    def _failed(self, message: str) -> None:
        self.message.setText(message)
        self.message.show()
        self._set_busy(False)
