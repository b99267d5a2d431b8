"""The Connect dialog: choose, edit, test and open a saved database connection.

Saved profiles are listed on the left; the form on the right edits the chosen one
(or a new one): a SQLite file, or a PostgreSQL server with its login, password and
TLS settings. *Test connection* opens the database off the GUI thread and reports
the server's version or the plain reason it failed; *Open* checks the form, saves
the profile (its password into the system keyring, never into the settings) and
closes with the address in :meth:`ConnectionDialog.url`. *Use the demo database*
closes with :attr:`ConnectionDialog.chose_demo` set instead, and forgets the last
profile, so that the next start opens the demo database again.

The form is checked on every change and the first problem is shown under it; Open
and Test stay disabled while there is one, or while a test is running. No message
ever shows the password: failures go through ``bootstrap``, which hides it.
"""

from __future__ import annotations

from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, Qt, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy.exc import DBAPIError

from credits_desktop.bootstrap import open_database, unreachable

from .profiles import (
    DEFAULT_PORT,
    POSTGRESQL,
    SQLITE,
    SSL_MODES,
    ConnectionProfile,
    ProfileStore,
    ssl_mode_help,
    to_url,
    validate,
)
from .workers import Job, Worker

__all__ = ["ConnectionDialog", "probe"]

# The English source texts, translated when the list is filled.
_KIND_LABELS = {
    SQLITE: str(QT_TRANSLATE_NOOP("ConnectionDialog", "SQLite file")),
    POSTGRESQL: str(QT_TRANSLATE_NOOP("ConnectionDialog", "PostgreSQL server")),
}


def probe(url: str) -> str:
    """Open ``url``, run ``SELECT 1``, and say what answered (run it in a worker).

    Raises ``DatabaseUnreachable`` with a plain message (password hidden) on failure.
    """
    db = open_database(url, must_exist=True)
    try:
        with db.engine.connect() as conn:
            if db.is_postgresql:
                version = str(conn.exec_driver_sql("SHOW server_version").scalar() or "")
                # "15.4 (Debian 15.4-1)" → "15.4"
                return QCoreApplication.translate(
                    "ConnectionDialog", "Connected to PostgreSQL {version}.").format(
                    version=version.split(" ")[0])
            version = str(conn.exec_driver_sql("SELECT sqlite_version()").scalar() or "")
            return QCoreApplication.translate(
                "ConnectionDialog", "Connected to SQLite {version}.").format(version=version)
    except DBAPIError as exc:
        raise unreachable(exc, db.engine.url) from exc
    finally:
        db.close()


def _buddy_label(text: str, buddy: QWidget) -> QLabel:
    """A form label whose mnemonic (Alt+letter) puts the cursor in ``buddy``; for rows
    whose field is a row of widgets, which QFormLayout cannot give a buddy itself."""
    label = QLabel(text)
    label.setBuddy(buddy)
    return label


class ConnectionDialog(QDialog):
    """Pick or edit a connection profile; on acceptance :meth:`url` is its address, or
    :attr:`chose_demo` is True.

    ``select`` names the saved profile to show first (default: the last one used);
    ``message`` is shown under the form (why the dialog was opened, say the reason
    that profile could not be opened).
    """

    def __init__(
        self,
        store: ProfileStore,
        parent: QWidget | None = None,
        *,
        select: str | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self.worker = Worker(self, max_threads=1)
        self._url: str | None = None
        self._demo = False
        self._test_job: Job | None = None
        # The saved name of the profile in the form (None: a new one).
        self._editing: str | None = None
        self._loading = False

        self.setWindowTitle(self.tr("Connect to a database"))
        self.setMinimumWidth(640)

        # -- left: the saved profiles ----------------------------------------------------
        self.profile_list = QListWidget()
        self.profile_list.setObjectName("profileList")
        self.profile_list.setAccessibleName(self.tr("Saved connections"))
        self.profile_list.currentItemChanged.connect(self._profile_chosen)
        self.new_button = QPushButton(self.tr("&New"))
        self.new_button.setObjectName("newProfile")
        self.new_button.setAccessibleName(self.tr("New connection"))
        self.new_button.clicked.connect(self.new_profile)
        self.delete_button = QPushButton(self.tr("&Delete"))
        self.delete_button.setObjectName("deleteProfile")
        self.delete_button.setAccessibleName(self.tr("Delete the selected connection"))
        self.delete_button.clicked.connect(self.delete_profile)
        list_buttons = QHBoxLayout()
        list_buttons.addWidget(self.new_button)
        list_buttons.addWidget(self.delete_button)
        left = QVBoxLayout()
        list_label = QLabel(self.tr("Sa&ved connections"))
        list_label.setBuddy(self.profile_list)
        left.addWidget(list_label)
        left.addWidget(self.profile_list, 1)
        left.addLayout(list_buttons)

        # -- right: the form -------------------------------------------------------------
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("profileName")
        self.name_edit.setAccessibleName(self.tr("Connection name"))
        self.kind_combo = QComboBox()
        self.kind_combo.setObjectName("profileKind")
        self.kind_combo.setAccessibleName(self.tr("Database kind"))
        for kind, label in _KIND_LABELS.items():
            self.kind_combo.addItem(QCoreApplication.translate("ConnectionDialog", label), kind)

        # SQLite page
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("sqlitePath")
        self.path_edit.setAccessibleName(self.tr("SQLite database file"))
        self.browse_button = QPushButton(self.tr("B&rowse…"))
        self.browse_button.setObjectName("browseSqlite")
        self.browse_button.setAccessibleName(self.tr("Choose the SQLite database file"))
        self.browse_button.clicked.connect(self._browse_sqlite)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        sqlite_page = QWidget()
        sqlite_form = QFormLayout(sqlite_page)
        sqlite_form.setContentsMargins(0, 0, 0, 0)
        sqlite_form.addRow(_buddy_label(self.tr("Database &file:"), self.path_edit), path_row)

        # PostgreSQL page
        self.host_edit = QLineEdit()
        self.host_edit.setObjectName("pgHost")
        self.host_edit.setAccessibleName(self.tr("PostgreSQL server host"))
        self.port_spin = QSpinBox()
        self.port_spin.setObjectName("pgPort")
        self.port_spin.setAccessibleName(self.tr("PostgreSQL server port"))
        # 0 is allowed in the box so that validation, not the widget, explains the range.
        self.port_spin.setRange(0, 65535)
        self.port_spin.setValue(DEFAULT_PORT)
        self.database_edit = QLineEdit()
        self.database_edit.setObjectName("pgDatabase")
        self.database_edit.setAccessibleName(self.tr("Database name"))
        self.user_edit = QLineEdit()
        self.user_edit.setObjectName("pgUser")
        self.user_edit.setAccessibleName(self.tr("Database user"))
        self.password_edit = QLineEdit()
        self.password_edit.setObjectName("pgPassword")
        self.password_edit.setAccessibleName(self.tr("Database password"))
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.sslmode_combo = QComboBox()
        self.sslmode_combo.setObjectName("pgSslMode")
        self.sslmode_combo.setAccessibleName(self.tr("SSL mode"))
        # The modes keep libpq's names (they are what a server's documentation says).
        for mode in SSL_MODES:
            self.sslmode_combo.addItem(mode)
            self.sslmode_combo.setItemData(self.sslmode_combo.count() - 1,
                                           ssl_mode_help(mode), Qt.ItemDataRole.ToolTipRole)
        self.ca_edit = QLineEdit()
        self.ca_edit.setObjectName("pgCaFile")
        self.ca_edit.setAccessibleName(self.tr("CA certificate file"))
        # Left enabled whatever the mode (the modes that do not verify ignore it), so
        # the form's tab order never changes under the keyboard.
        self.ca_edit.setPlaceholderText(self.tr("Needed for verify-ca and verify-full"))
        self.ca_browse_button = QPushButton(self.tr("Brow&se…"))
        self.ca_browse_button.setObjectName("browseCaFile")
        self.ca_browse_button.setAccessibleName(self.tr("Choose the CA certificate file"))
        self.ca_browse_button.clicked.connect(self._browse_ca)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_edit, 1)
        ca_row.addWidget(self.ca_browse_button)
        pg_page = QWidget()
        pg_form = QFormLayout(pg_page)
        pg_form.setContentsMargins(0, 0, 0, 0)
        pg_form.addRow(self.tr("&Host:"), self.host_edit)
        pg_form.addRow(self.tr("&Port:"), self.port_spin)
        pg_form.addRow(self.tr("Data&base:"), self.database_edit)
        pg_form.addRow(self.tr("&User:"), self.user_edit)
        pg_form.addRow(self.tr("Pass&word:"), self.password_edit)
        pg_form.addRow(self.tr("SS&L mode:"), self.sslmode_combo)
        pg_form.addRow(_buddy_label(self.tr("C&A certificate:"), self.ca_edit), ca_row)

        self.pages = QStackedWidget()
        self.pages.addWidget(sqlite_page)
        self.pages.addWidget(pg_page)

        form = QFormLayout()
        form.addRow(self.tr("Na&me:"), self.name_edit)
        form.addRow(self.tr("&Kind:"), self.kind_combo)

        self.problem = QLabel()
        self.problem.setObjectName("profileProblem")
        self.problem.setWordWrap(True)
        self.status = QLabel()
        self.status.setObjectName("connectionStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        right = QVBoxLayout()
        right.addLayout(form)
        right.addWidget(self.pages)
        right.addWidget(self.problem)
        right.addWidget(self.status)
        right.addStretch(1)

        # -- bottom: the buttons ---------------------------------------------------------
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        self.open_button = self.buttons.button(QDialogButtonBox.StandardButton.Open)
        self.open_button.setDefault(True)
        self.test_button = self.buttons.addButton(
            self.tr("&Test connection"), QDialogButtonBox.ButtonRole.ActionRole
        )
        self.test_button.setObjectName("testConnection")
        self.test_button.clicked.connect(self.test_connection)
        self.demo_button = self.buttons.addButton(
            self.tr("Use th&e demo database"), QDialogButtonBox.ButtonRole.ActionRole
        )
        self.demo_button.setObjectName("useDemo")
        self.demo_button.setToolTip(
            self.tr("Open the demo database in your data folder (made on first use)")
        )
        self.demo_button.clicked.connect(self.choose_demo)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        columns = QHBoxLayout()
        columns.addLayout(left, 1)
        columns.addLayout(right, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(columns, 1)
        layout.addWidget(self.buttons)

        for edit in (self.name_edit, self.path_edit, self.host_edit, self.database_edit,
                     self.user_edit, self.password_edit, self.ca_edit):
            edit.textChanged.connect(self._form_changed)
        self.port_spin.valueChanged.connect(self._form_changed)
        self.kind_combo.currentIndexChanged.connect(self._kind_changed)
        self.sslmode_combo.currentIndexChanged.connect(self._form_changed)

        self._fill_list(select=select or store.last_used())
        if self.profile_list.currentItem() is None:
            self.new_profile()
        if message:
            # Kept: what the form found on loading (no keyring to remember passwords).
            found = self.status.text()
            self.status.setText(f"{message}\n{found}" if found else message)

    # -- public ---------------------------------------------------------------------------

    def url(self) -> str | None:
        """The address chosen (with its password); None until the dialog is accepted."""
        return self._url

    @property
    def chose_demo(self) -> bool:
        """Whether the dialog was closed with *Use the demo database*."""
        return self._demo

    @property
    def testing(self) -> bool:
        return self._test_job is not None

    def profile(self) -> ConnectionProfile:
        """The profile as the form shows it now."""
        kind = str(self.kind_combo.currentData())
        cert = self.ca_edit.text().strip()
        return ConnectionProfile(
            name=self.name_edit.text().strip(),
            kind=kind,
            path=self.path_edit.text().strip(),
            host=self.host_edit.text().strip(),
            port=self.port_spin.value(),
            database=self.database_edit.text().strip(),
            user=self.user_edit.text().strip(),
            sslmode=self.sslmode_combo.currentText(),
            ssl_root_cert=cert or None,
        )

    def problems(self) -> list[str]:
        return validate(self.profile(), self.password_edit.text())

    def select_profile(self, name: str) -> bool:
        """Show the saved profile ``name`` in the form; False if there is none."""
        for i in range(self.profile_list.count()):
            item = self.profile_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                self.profile_list.setCurrentItem(item)
                return True
        return False

    @Slot()
    def new_profile(self) -> None:
        """An empty form for a new profile."""
        self.profile_list.blockSignals(True)
        self.profile_list.clearSelection()
        self.profile_list.setCurrentRow(-1)
        self.profile_list.blockSignals(False)
        self._load(ConnectionProfile(name=""), password=None, editing=None)
        self.name_edit.setFocus()

    @Slot()
    def delete_profile(self) -> None:
        if self._editing is None or self.testing:
            return
        self._store.delete(self._editing)
        self._fill_list(select=None)
        self.new_profile()

    @Slot()
    def test_connection(self) -> None:
        """Open the database in the form off the GUI thread and report what answered."""
        if self.testing or self.problems():
            return
        url = to_url(self.profile(), self.password_edit.text() or None)
        self.status.setText(self.tr("Connecting…"))
        job = self.worker.submit(lambda: probe(url))
        job.succeeded.connect(self._test_succeeded)
        job.failed.connect(self._test_failed)
        job.finished.connect(self._test_finished)
        self._test_job = job
        self._update_buttons()

    def accept(self) -> None:
        """Check the form, save the profile and its password, and close."""
        problems = self.problems()
        if problems or self.testing:
            self._update_buttons()
            return
        profile = self.profile()
        password = self.password_edit.text() if profile.is_postgresql else ""
        self._store.save(profile, replacing=self._editing)
        self._store.set_last_used(profile.name)
        if profile.is_postgresql:
            # A keyring that cannot take it is not fatal: the address carries the
            # password this time, and next time the form asks for it again (saying
            # why); ``store.keyring_message`` tells the caller.
            self._store.store_password(profile, password)
        self._editing = profile.name
        self._url = to_url(profile, password or None)
        super().accept()

    @Slot()
    def choose_demo(self) -> None:
        """Close choosing the demo database; it is what the next start opens, too."""
        self._store.clear_last_used()
        self._demo = True
        self._url = None
        super().accept()

    def done(self, result: int) -> None:
        # A test still running belongs to a dialog that is going away.
        self.worker.discard_all()
        self._test_job = None
        super().done(result)

    # -- internals ------------------------------------------------------------------------

    def _fill_list(self, select: str | None) -> None:
        self.profile_list.blockSignals(True)
        self.profile_list.clear()
        for profile in self._store.profiles():
            item = QListWidgetItem(profile.name)
            item.setData(Qt.ItemDataRole.UserRole, profile.name)
            item.setToolTip(profile.describe())
            self.profile_list.addItem(item)
        self.profile_list.blockSignals(False)
        if select is not None:
            self.select_profile(select)

    @Slot(QListWidgetItem, QListWidgetItem)
    def _profile_chosen(self, current: QListWidgetItem | None, _previous: object) -> None:
        if current is None:
            return
        profile = self._store.get(str(current.data(Qt.ItemDataRole.UserRole)))
        if profile is None:
            return
        password = self._store.password(profile) if profile.is_postgresql else None
        self._load(profile, password, editing=profile.name)
        if profile.is_postgresql and self._store.keyring_message:
            self.status.setText(self._store.keyring_message)

    def _load(
        self, profile: ConnectionProfile, password: str | None, *, editing: str | None
    ) -> None:
        self._editing = editing
        self._loading = True
        try:
            self.name_edit.setText(profile.name)
            self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(profile.kind)))
            self.pages.setCurrentIndex(1 if profile.is_postgresql else 0)
            self.path_edit.setText(profile.path)
            self.host_edit.setText(profile.host)
            self.port_spin.setValue(profile.port)
            self.database_edit.setText(profile.database)
            self.user_edit.setText(profile.user)
            self.password_edit.setText(password or "")
            self.sslmode_combo.setCurrentIndex(max(0, self.sslmode_combo.findText(profile.sslmode)))
            self.ca_edit.setText(profile.ssl_root_cert or "")
        finally:
            self._loading = False
        self.status.clear()
        self._form_changed()

    @Slot()
    def _kind_changed(self) -> None:
        self.pages.setCurrentIndex(1 if self.kind_combo.currentData() == POSTGRESQL else 0)
        self._form_changed()

    @Slot()
    def _form_changed(self) -> None:
        if self._loading:
            return
        self.sslmode_combo.setToolTip(ssl_mode_help(self.sslmode_combo.currentText()))
        problems = self.problems()
        self.problem.setText(problems[0] if problems else "")
        self.problem.setVisible(bool(problems))
        self._update_buttons()

    def _update_buttons(self) -> None:
        ready = not self.problems() and not self.testing
        self.open_button.setEnabled(ready)
        self.test_button.setEnabled(ready)
        self.delete_button.setEnabled(self._editing is not None and not self.testing)

    @Slot(object)
    def _test_succeeded(self, message: object) -> None:
        self.status.setText(str(message))

    @Slot(str)
    def _test_failed(self, message: str) -> None:
        self.status.setText(message)

    @Slot()
    def _test_finished(self) -> None:
        self._test_job = None
        self._update_buttons()

    @Slot()
    def _browse_sqlite(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self, self.tr("Choose the database file"), self.path_edit.text(),
            self.tr("SQLite databases (*.sqlite *.sqlite3 *.db);;All files (*)"),
        )
        if path:
            self.path_edit.setText(path)

    @Slot()
    def _browse_ca(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self, self.tr("Choose the CA certificate"), self.ca_edit.text(),
            self.tr("Certificates (*.crt *.pem);;All files (*)"),
        )
        if path:
            self.ca_edit.setText(path)
