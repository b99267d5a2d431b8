"""Connection profiles and the Connect dialog: addresses, validation, storage, testing,
and the way back to the demo database.

Settings live in an ini file under ``tmp_path`` and passwords in an in-memory keyring
set for each test, so nothing touches the real user's settings or keyring. The
connection tests talk to the real PostgreSQL on 127.0.0.1:5432.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.errors
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDialog
from pytestqt.qtbot import QtBot
from sqlalchemy.engine import make_url

from credits_desktop.ui.connection_dialog import ConnectionDialog
from credits_desktop.ui.profiles import (
    KEYRING_SERVICE,
    KEYRING_UNAVAILABLE,
    SSL_MODES,
    ConnectionProfile,
    ProfileStore,
    ssl_mode_help,
    to_url,
    validate,
)

from .pseudo_translation import untranslated_texts

SECRET = "s3cr:t@P/ss%?#word"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that lives in a dict, for the length of one test."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("no such password")


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """A computer without a usable keyring: every call raises NoKeyringError."""
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "credits-desktop.ini"


@pytest.fixture
def store(settings_file: Path) -> ProfileStore:
    return ProfileStore(QSettings(str(settings_file), QSettings.Format.IniFormat))


def local_pg(name: str = "Local", *, port: int = 5432) -> ConnectionProfile:
    return ConnectionProfile(name=name, kind="postgresql", host="127.0.0.1", port=port,
                             database="postgres", user="postgres", sslmode="disable")


def open_dialog(qtbot: QtBot, store: ProfileStore) -> ConnectionDialog:
    dialog = ConnectionDialog(store)
    qtbot.addWidget(dialog, before_close_func=lambda d: d.worker.wait_for_done())
    dialog.show()
    return dialog


def fill_pg(qtbot: QtBot, dialog: ConnectionDialog, profile: ConnectionProfile,
            password: str) -> None:
    dialog.new_profile()
    qtbot.keyClicks(dialog.name_edit, profile.name)
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("postgresql"))
    qtbot.keyClicks(dialog.host_edit, profile.host)
    dialog.port_spin.setValue(profile.port)
    qtbot.keyClicks(dialog.database_edit, profile.database)
    qtbot.keyClicks(dialog.user_edit, profile.user)
    qtbot.keyClicks(dialog.password_edit, password)
    dialog.sslmode_combo.setCurrentText(profile.sslmode)


# -- addresses and validation -----------------------------------------------------------


def test_to_url_escapes_special_characters_and_sets_the_ssl_parameters(
    tmp_path: Path,
) -> None:
    ca = tmp_path / "root ca.crt"
    ca.write_text("not really a certificate")
    profile = ConnectionProfile(
        name="Production", kind="postgresql", host="db.example.com", port=6432,
        database="credits/eu", user="ana@ops", sslmode="verify-full",
        ssl_root_cert=str(ca),
    )
    url = to_url(profile, SECRET)
    parsed = make_url(url)
    assert parsed.drivername == "postgresql+psycopg"
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "ana@ops", SECRET, "db.example.com", 6432, "credits/eu")
    assert dict(parsed.query) == {"sslmode": "verify-full", "sslrootcert": str(ca)}
    assert SECRET not in url  # it is in there escaped, not as typed

    no_password = make_url(to_url(profile, None))
    assert no_password.password is None


def test_to_url_of_a_sqlite_profile_is_its_file(tmp_path: Path) -> None:
    path = tmp_path / "my credits.sqlite3"
    url = to_url(ConnectionProfile(name="Mine", path=str(path)), "ignored")
    assert make_url(url).drivername == "sqlite"
    assert make_url(url).database == str(path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "  "}, "Give the connection a name."),
        ({"host": ""}, "Enter the PostgreSQL server's host name or address."),
        ({"port": 0}, "The port must be a number from 1 to 65535."),
        ({"port": 65536}, "The port must be a number from 1 to 65535."),
        ({"database": ""}, "Enter the name of the database."),
        ({"user": ""}, "Enter the database login (user name)."),
        ({"sslmode": "verify-full"},
         "SSL mode verify-full needs the server's CA certificate file."),
        ({"sslmode": "verify-full", "ssl_root_cert": "/nowhere/ca.crt"},
         "There is no CA certificate file at /nowhere/ca.crt."),
    ],
)
def test_validation_says_what_is_wrong(changes: dict[str, object], message: str) -> None:
    assert validate(local_pg()) == []
    assert validate(replace(local_pg(), **changes)) == [message]  # type: ignore[arg-type]


def test_a_sqlite_profile_needs_an_existing_file(tmp_path: Path) -> None:
    missing = tmp_path / "typo.sqlite3"
    assert validate(ConnectionProfile(name="Mine")) == ["Choose the SQLite database file."]
    assert validate(ConnectionProfile(name="Mine", path=str(missing))) == [
        f"There is no database file at {missing}."]
    missing.write_bytes(b"")
    assert validate(ConnectionProfile(name="Mine", path=str(missing))) == []


# -- the store --------------------------------------------------------------------------


def test_profiles_round_trip_and_the_password_goes_to_the_keyring_only(
    store: ProfileStore, settings_file: Path, memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-")
    prod = ConnectionProfile(name="Production", kind="postgresql", host="db.example.com",
                             port=6432, database="credits", user="ana", sslmode="verify-full",
                             ssl_root_cert=str(ca))
    mine = ConnectionProfile(name="a local file", path=str(tmp_path / "x.sqlite3"))
    store.save(prod)
    store.save(mine)
    assert store.store_password(prod, SECRET)
    store.set_last_used("Production")

    again = ProfileStore(QSettings(str(settings_file), QSettings.Format.IniFormat))
    assert again.profiles() == [mine, prod]  # by name, case-insensitively
    assert again.last_used() == "Production"
    assert again.password(prod) == SECRET
    assert memory_keyring.passwords == {(KEYRING_SERVICE, "Production/ana"): SECRET}
    text = settings_file.read_text(encoding="utf-8")
    assert "db.example.com" in text
    assert SECRET not in text and "s3cr" not in text

    # Renaming moves the password's entry along; deleting forgets it.
    renamed = replace(prod, name="Prod EU")
    again.save(renamed, replacing="Production")
    again.store_password(renamed, SECRET)
    assert [p.name for p in again.profiles()] == ["a local file", "Prod EU"]
    assert again.last_used() == "Prod EU"
    assert memory_keyring.passwords == {(KEYRING_SERVICE, "Prod EU/ana"): SECRET}
    again.delete("Prod EU")
    assert again.profiles() == [mine]
    assert again.last_used() is None
    assert memory_keyring.passwords == {}


def test_without_a_keyring_the_password_is_not_remembered_and_staff_are_told(
    qtbot: QtBot, store: ProfileStore, settings_file: Path, no_keyring: None
) -> None:
    profile = local_pg()
    store.save(profile)
    assert not store.store_password(profile, SECRET)
    assert store.keyring_message == KEYRING_UNAVAILABLE
    assert store.password(profile) is None

    dialog = open_dialog(qtbot, store)
    assert dialog.select_profile("Local")
    assert dialog.password_edit.text() == ""
    assert dialog.status.text() == KEYRING_UNAVAILABLE
    # Opening still works: the address carries the password typed this time.
    qtbot.keyClicks(dialog.password_edit, SECRET)
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert make_url(dialog.url() or "").password == SECRET
    assert SECRET not in settings_file.read_text(encoding="utf-8")


# -- the dialog -------------------------------------------------------------------------


def test_testing_the_local_postgresql_reports_its_version(
    qtbot: QtBot, store: ProfileStore, memory_keyring: MemoryKeyring
) -> None:
    dialog = open_dialog(qtbot, store)
    fill_pg(qtbot, dialog, local_pg(), "")
    assert dialog.problem.text() == ""
    assert dialog.test_button.isEnabled() and dialog.open_button.isEnabled()
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    # While the test runs neither Open nor another test can be started.
    assert dialog.testing
    assert not dialog.open_button.isEnabled() and not dialog.test_button.isEnabled()
    assert dialog.status.text() == "Connecting…"
    qtbot.waitUntil(lambda: not dialog.testing)
    assert dialog.status.text().startswith("Connected to PostgreSQL 15.")
    assert dialog.open_button.isEnabled()


def test_a_failed_test_shows_a_plain_error_without_the_password(
    qtbot: QtBot, store: ProfileStore, memory_keyring: MemoryKeyring
) -> None:
    dialog = open_dialog(qtbot, store)
    fill_pg(qtbot, dialog, local_pg(port=1), SECRET)
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.testing)
    message = dialog.status.text()
    assert message.startswith("Could not open the database at postgresql+psycopg://postgres:")
    assert "127.0.0.1:1" in message
    assert SECRET not in message and "s3cr" not in message
    assert "Traceback" not in message
    assert dialog.open_button.isEnabled() and dialog.test_button.isEnabled()


def test_opening_saves_the_profile_and_keeps_the_password_out_of_the_settings(
    qtbot: QtBot, store: ProfileStore, settings_file: Path, memory_keyring: MemoryKeyring
) -> None:
    dialog = open_dialog(qtbot, store)
    fill_pg(qtbot, dialog, local_pg("Staging"), SECRET)
    with qtbot.waitSignal(dialog.finished) as finished:
        qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert finished.args == [QDialog.DialogCode.Accepted]
    assert dialog.url() == to_url(local_pg("Staging"), SECRET)
    assert store.profiles() == [local_pg("Staging")]
    assert store.last_used() == "Staging"
    assert memory_keyring.passwords == {(KEYRING_SERVICE, "Staging/postgres"): SECRET}
    assert SECRET not in settings_file.read_text(encoding="utf-8")

    # Next time the last connection is chosen, with its password from the keyring.
    again = open_dialog(qtbot, store)
    assert again.profile() == local_pg("Staging")
    assert again.password_edit.text() == SECRET
    assert again.password_edit.echoMode() == again.password_edit.EchoMode.Password


def test_a_sqlite_profile_with_a_missing_file_is_refused(
    qtbot: QtBot, store: ProfileStore, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    dialog = open_dialog(qtbot, store)
    missing = tmp_path / "typo.sqlite3"
    qtbot.keyClicks(dialog.name_edit, "Mine")
    assert dialog.problem.text() == "Choose the SQLite database file."
    qtbot.keyClicks(dialog.path_edit, str(missing))
    assert dialog.problem.text() == f"There is no database file at {missing}."
    assert dialog.problem.isVisible()
    assert not dialog.open_button.isEnabled() and not dialog.test_button.isEnabled()
    dialog.accept()  # Enter in a field: refused as well
    assert dialog.isVisible() and dialog.url() is None
    assert store.profiles() == []

    missing.write_bytes(b"")  # now it exists
    dialog.path_edit.clear()
    qtbot.keyClicks(dialog.path_edit, str(missing))
    assert dialog.problem.text() == "" and dialog.open_button.isEnabled()
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert make_url(dialog.url() or "").database == str(missing)


def test_deleting_a_profile_removes_it_from_the_list(
    qtbot: QtBot, store: ProfileStore, memory_keyring: MemoryKeyring
) -> None:
    store.save(local_pg("One"))
    store.save(local_pg("Two"))
    store.store_password(local_pg("One"), SECRET)
    dialog = open_dialog(qtbot, store)
    assert dialog.profile_list.count() == 2
    assert dialog.select_profile("One")
    assert dialog.password_edit.text() == SECRET
    assert dialog.delete_button.isEnabled()
    qtbot.mouseClick(dialog.delete_button, Qt.MouseButton.LeftButton)
    assert [p.name for p in store.profiles()] == ["Two"]
    assert dialog.profile_list.count() == 1
    assert dialog.name_edit.text() == "" and not dialog.delete_button.isEnabled()
    assert memory_keyring.passwords == {}


def test_the_demo_database_can_be_chosen_and_becomes_what_the_next_start_opens(
    qtbot: QtBot, store: ProfileStore, memory_keyring: MemoryKeyring
) -> None:
    store.save(local_pg("Staging"))
    store.set_last_used("Staging")
    dialog = open_dialog(qtbot, store)
    assert not dialog.chose_demo
    with qtbot.waitSignal(dialog.finished) as finished:
        qtbot.mouseClick(dialog.demo_button, Qt.MouseButton.LeftButton)
    assert finished.args == [QDialog.DialogCode.Accepted]
    assert dialog.chose_demo and dialog.url() is None
    assert store.last_used() is None
    assert store.profiles() == [local_pg("Staging")]  # still saved


def test_the_dialog_can_open_on_a_chosen_profile_with_a_message(
    qtbot: QtBot, store: ProfileStore, memory_keyring: MemoryKeyring
) -> None:
    store.save(local_pg("One"))
    store.save(local_pg("Two"))
    store.set_last_used("Two")
    store.store_password(local_pg("One"), SECRET)
    dialog = ConnectionDialog(store, select="One", message="The server refused the password.")
    qtbot.addWidget(dialog, before_close_func=lambda d: d.worker.wait_for_done())
    dialog.show()
    assert dialog.profile() == local_pg("One")
    assert dialog.password_edit.text() == SECRET
    assert dialog.status.text() == "The server refused the password."
    # Without a choice the last profile used is shown, and no message.
    plain = open_dialog(qtbot, store)
    assert plain.profile() == local_pg("Two")
    assert plain.status.text() == ""


# -- every text goes through Qt's translation ------------------------------------------


def test_every_text_of_the_dialog_goes_through_translation(
    qtbot: QtBot, store: ProfileStore, memory_keyring: MemoryKeyring, tmp_path: Path,
    pseudo_translated: object,
) -> None:
    dialog = open_dialog(qtbot, store)
    # libpq's names of the SSL modes are not translated (they are the server's words).
    ssl_modes = set(SSL_MODES)
    # An empty form: the problem under it is a translated sentence.
    assert dialog.problem.text() == "⟦Give the connection a name.⟧"
    assert untranslated_texts(dialog, combos=True, data=lambda text: text in ssl_modes) == []

    # The local PostgreSQL, tested (the answer is made on the worker's thread).
    fill_pg(qtbot, dialog, local_pg(), "")
    dialog.sslmode_combo.setCurrentText("verify-full")
    assert dialog.problem.text() == "⟦SSL mode {mode} needs the server's CA certificate " \
        "file.⟧".format(mode="verify-full")
    dialog.sslmode_combo.setCurrentText("disable")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert dialog.status.text() == "⟦Connecting…⟧"
    qtbot.waitUntil(lambda: not dialog.testing)
    assert dialog.status.text().startswith("⟦Connected to PostgreSQL ")
    assert untranslated_texts(dialog, combos=True, data=lambda text: text in ssl_modes) == []

    # A SQLite file, tested.
    path = tmp_path / "mine.sqlite3"
    with closing(sqlite3.connect(path)) as made:
        made.execute("CREATE TABLE t (x INTEGER)")
    dialog.new_profile()
    qtbot.keyClicks(dialog.name_edit, "Mine")
    qtbot.keyClicks(dialog.path_edit, str(path))
    assert dialog.problem.text() == ""
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.testing)
    assert dialog.status.text().startswith("⟦Connected to SQLite ")
    assert untranslated_texts(dialog, combos=True, data=lambda text: text in ssl_modes) == []


def test_the_profiles_sentences_go_through_translation(
    store: ProfileStore, no_keyring: None, pseudo_translated: object
) -> None:
    problems = validate(ConnectionProfile(name="", kind="postgresql", port=0,
                                          sslmode="verify-ca"), "\x00")
    assert len(problems) == 7
    assert all(p.startswith("⟦") for p in problems), problems
    assert validate(ConnectionProfile(name="X", kind="oracle")) == [
        "⟦Unknown kind of database '{kind}'.⟧".format(kind="oracle")]
    assert all(ssl_mode_help(mode).startswith("⟦") for mode in SSL_MODES)
    assert ssl_mode_help("nonsense") == ""
    assert store.password(local_pg()) is None
    assert store.keyring_message == f"⟦{KEYRING_UNAVAILABLE}⟧"
