"""Hostile connection details: addresses built safely, passwords never shown, TLS modes.

Generated (hypothesis) hosts, database names, logins and passwords full of ``@ : / ?
# %``, spaces, quotes and unicode go through ``profiles.to_url`` and
``store.engine.parse_url``: every value comes back exactly as typed, none can end its
part of the address and add a parameter of its own (``sslmode=disable`` above all),
and no display of an address (``display_url``, the error report's ``scrub``) shows
the password. The TLS modes are tried on the real PostgreSQL at 127.0.0.1:5432,
which has no TLS: the modes that insist on it must fail with a plain message, the
others must connect.

Settings live in an ini file under ``tmp_path`` and passwords in an in-memory keyring.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, quote_plus

import keyring
import keyring.backend
import keyring.errors
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot
from sqlalchemy.engine import make_url

from credits_desktop import bootstrap
from credits_desktop.bootstrap import DatabaseUnreachable
from credits_desktop.store.database import Database
from credits_desktop.store.engine import ConfigurationError, parse_url
from credits_desktop.ui.connection_dialog import ConnectionDialog, probe
from credits_desktop.ui.error_report import (
    fault_details,
    report_text,
    scrub,
    set_report_database,
)
from credits_desktop.ui.profiles import (
    SSL_MODE_HELP,
    SSL_MODES,
    ConnectionProfile,
    ProfileStore,
    to_url,
    validate,
)

PASSWORD = "Pw-@:/?#%&= 'x\"é🚀"
SETTINGS = settings(max_examples=200, deadline=None, derandomize=True)

# Characters that end or split a part of an address, and others that look like them.
URL_CHARS = st.sampled_from([*"@:/?#%&=+;[] \t'\"\\", "é", "ß", "🚀", "ا", "\u202e"])
VALUE = st.text(st.one_of(URL_CHARS, st.characters(codec="utf-8", exclude_categories=["Cc"])),
                min_size=1, max_size=20)
HOST_NAME = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z0-9]{1,6}){0,2}",
                          fullmatch=True)
HOST = st.one_of(HOST_NAME, st.sampled_from(["127.0.0.1", "::1", "[::1]", "fe80::1%eth0",
                                             "db.exämple.test", "データ.test"]), VALUE)


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
def store(tmp_path: Path) -> Iterator[ProfileStore]:
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        yield ProfileStore(QSettings(str(tmp_path / "credits-desktop.ini"),
                                     QSettings.Format.IniFormat))
    finally:
        keyring.set_keyring(previous)


def pg(**changes: object) -> ConnectionProfile:
    profile = ConnectionProfile(name="Local", kind="postgresql", host="127.0.0.1", port=5432,
                                database="postgres", user="postgres", sslmode="disable")
    return replace(profile, **changes)  # type: ignore[arg-type]


def plain_host(host: str) -> bool:
    """A host name or IP address: what may stand in an address unescaped."""
    return not validate(pg(host=host))


def hidden(secret: str, text: str) -> bool:
    """Whether ``text`` shows ``secret`` neither as typed nor escaped in an address."""
    return all(form not in text for form in {secret, quote(secret, safe=""),
                                              quote_plus(secret), quote(secret)})


# -- building addresses -------------------------------------------------------------------


@SETTINGS
@given(host=HOST, database=VALUE, user=VALUE, password=st.one_of(st.none(), VALUE),
       sslmode=st.sampled_from(SSL_MODES), port=st.integers(1, 65535))
def test_to_url_keeps_every_value_in_its_place(
    host: str, database: str, user: str, password: str | None, sslmode: str, port: int
) -> None:
    assume(database.strip() and user.strip() and host.strip())
    profile = pg(host=host, database=database, user=user, sslmode=sslmode, port=port)
    url = to_url(profile, password)
    for parsed in (make_url(url), parse_url(url)):
        assert parsed.drivername in ("postgresql+psycopg",)
        assert (parsed.username, parsed.password, parsed.database, parsed.port) == (
            user.strip(), password or None, database.strip(), port)
        # Nothing typed added a parameter or changed the TLS mode.
        assert dict(parsed.query) == {"sslmode": sslmode}
        if plain_host(host.strip()):
            assert parsed.host == host.strip().removeprefix("[").removesuffix("]")
        else:
            # Escaped: it names no server, and cannot reach into the port or path.
            assert parsed.host is not None and parsed.host == quote(host.strip(), safe="")
            assert validate(profile, password)[0] == (
                "The host must be a server name (such as db.example.com) or an IP address, "
                "without spaces or any of / ? # @ : %.")


@SETTINGS
@given(host=HOST_NAME, database=VALUE, user=VALUE, password=VALUE)
def test_no_display_of_an_address_shows_its_password(
    host: str, database: str, user: str, password: str
) -> None:
    assume(database.strip() and user.strip())
    # Only a password that is not also part of the rest can be looked for.
    assume(len(password) >= 3)
    assume(all(hidden(password, part) for part in (host, database, user,
                                                   "postgresql+psycopg", "sslmode=prefer")))
    url = to_url(pg(host=host, database=database, user=user, sslmode="prefer"), password)
    shown = bootstrap.display_url(url)
    assert make_url(shown).password == "***"
    assert hidden(password, shown)
    db = Database.open(url)  # no connection is made until it is used
    try:
        assert hidden(password, db.display_url())
    finally:
        db.close()
    # The error report masks an address that made it into an error message. (Without
    # the database an earlier test's main window named, whose "sqlite" holds "qli".)
    set_report_database(None)
    details = fault_details(RuntimeError(f"could not use {url} today"))
    assert hidden(password, details) and hidden(password, report_text(details))
    # And a password in a query string or a libpq connection string (quoted as libpq
    # quotes: a backslash before a quote or a backslash).
    assert hidden(password, scrub(f"failed: {url}&password={quote_plus(password)} x"))
    conninfo = password.replace("\\", "\\\\").replace("'", "\\'")
    assert hidden(password, scrub(f"dsn: user=x password='{conninfo}' host=y"))


def test_a_password_given_as_a_parameter_is_moved_into_the_address() -> None:
    parsed = parse_url("postgresql://ana@db.test/credits?password=S3cret-In-Query&sslmode=require")
    assert parsed.password == "S3cret-In-Query"
    assert dict(parsed.query) == {"sslmode": "require"}
    shown = bootstrap.display_url(
        "postgresql://ana:other@db.test/credits?password=S3cret-In-Query")
    assert "S3cret" not in shown and "other" not in shown
    # As libpq would have it, the parameter wins over the password in the address.
    assert parse_url("postgresql://ana:other@db.test/c?password=a&password=b").password == "b"


@SETTINGS
@given(text=st.one_of(
    st.text(max_size=60),
    st.builds(lambda scheme, pw, rest: f"{scheme}u:{pw}@{rest}",
              st.sampled_from(["postgresql://", "postgresql+psycopg://", "mysql://",
                               "sqlite://", "postgresql+asyncpg://", "postgres://", ""]),
              st.text(st.sampled_from(string.ascii_letters + "-_!"), min_size=6, max_size=12),
              st.text(max_size=30)),
))
def test_parse_url_refuses_junk_plainly_and_never_repeats_a_password(text: str) -> None:
    password = text.split("u:", 1)[1].split("@", 1)[0] if "u:" in text else ""
    # Looked for only when it is distinctive: six or more characters, found once.
    distinctive = len(password) >= 6 and text.count(password) == 1
    try:
        parsed = parse_url(text)
    except ConfigurationError as exc:
        message = str(exc)
        assert message and message[0].isupper() and message.endswith("."), message
        assert "Traceback" not in message
        assert not distinctive or password not in message
        return
    assert parsed.get_backend_name() in ("postgresql", "sqlite")
    assert not distinctive or password not in parsed.render_as_string(hide_password=True)


def test_a_host_that_would_inject_a_parameter_is_refused_and_escaped() -> None:
    sneaky = pg(host="evil.test/postgres?sslmode=disable#", sslmode="verify-full")
    assert validate(sneaky)[0].startswith("The host must be a server name")
    parsed = make_url(to_url(sneaky, "pw"))
    assert dict(parsed.query) == {"sslmode": "verify-full"}
    assert parsed.database == "postgres" and parsed.port == 5432
    assert parsed.host == "evil.test%2Fpostgres%3Fsslmode%3Ddisable%23"


@pytest.mark.parametrize(("changes", "message"), [
    ({"host": "db .test"}, "The host must be a server name"),
    ({"host": "user@db.test"}, "The host must be a server name"),
    ({"host": "db.test:6432"}, "The host must be a server name"),
    ({"database": "credits\x00other"}, "The database name contains a control character."),
    ({"user": "ana\r\nbob"}, "The user name contains a control character."),
    ({"sslmode": "verify-ca"}, "SSL mode verify-ca needs the server's CA certificate file."),
    ({"sslmode": "verify-ca", "ssl_root_cert": "/nowhere/ca.crt"},
     "There is no CA certificate file at /nowhere/ca.crt."),
    ({"sslmode": "require", "ssl_root_cert": "/nowhere/ca.crt"},
     "There is no CA certificate file at /nowhere/ca.crt."),
    ({"sslmode": "sslmode=disable"}, "Unknown SSL mode 'sslmode=disable'."),
])
def test_validation_refuses_what_could_not_be_sent_safely(
    changes: dict[str, object], message: str
) -> None:
    problems = validate(pg(**changes))
    assert len(problems) == 1 and problems[0].startswith(message), problems


def test_validation_accepts_ip_addresses_and_international_names(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "::1", "[::1]", "fe80::1%eth0", "db-1.example.com",
                 "db_internal", "bücher.example", "localhost."):
        assert validate(pg(host=host)) == [], host
    assert validate(pg(), "pass\x00word") == ["The password contains a control character."]
    # A CA file is ignored (not passed, not checked) by the modes that do not verify.
    for mode in ("disable", "allow", "prefer"):
        profile = pg(sslmode=mode, ssl_root_cert="/nowhere/ca.crt")
        assert validate(profile) == []
        assert "sslrootcert" not in make_url(to_url(profile, None)).query
    ca = tmp_path / "root ca&x=1.crt"
    ca.write_text("-")
    for mode in ("require", "verify-ca", "verify-full"):
        profile = pg(sslmode=mode, ssl_root_cert=str(ca))
        assert validate(profile) == []
        assert dict(make_url(to_url(profile, None)).query) == {
            "sslmode": mode, "sslrootcert": str(ca)}


# -- TLS on the real server -------------------------------------------------------------------

# The local test server has no TLS.
NO_TLS = "server does not support SSL, but SSL was required."


@pytest.mark.parametrize("sslmode", SSL_MODES)
def test_each_ssl_mode_reaches_the_server_or_says_plainly_why_not(
    sslmode: str, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    profile = pg(sslmode=sslmode, ssl_root_cert=str(ca))
    assert validate(profile, PASSWORD) == []
    url = to_url(profile, PASSWORD)
    if sslmode in ("disable", "allow", "prefer"):
        assert probe(url).startswith("Connected to PostgreSQL ")
        return
    with pytest.raises(DatabaseUnreachable) as caught:
        probe(url)
    message = caught.value.message
    assert message.startswith("Could not open the database at postgresql+psycopg://postgres:")
    assert message.endswith(NO_TLS), message
    assert f"sslmode={sslmode}" in message
    assert hidden(PASSWORD, message) and "Traceback" not in message


def test_a_database_name_is_never_read_as_connection_settings() -> None:
    # libpq expands a dbname that looks like "key=value …" in some calls: not here.
    profile = pg(database="host=nowhere.invalid dbname=postgres sslmode=require")
    with pytest.raises(DatabaseUnreachable) as caught:
        probe(to_url(profile, PASSWORD))
    assert caught.value.message.endswith(
        'database "host=nowhere.invalid dbname=postgres sslmode=require" does not exist.')


# -- the dialog ---------------------------------------------------------------------------------


def open_dialog(qtbot: QtBot, store: ProfileStore) -> ConnectionDialog:
    dialog = ConnectionDialog(store)
    qtbot.addWidget(dialog, before_close_func=lambda d: d.worker.wait_for_done())
    dialog.show()
    dialog.new_profile()
    qtbot.keyClicks(dialog.name_edit, "Office")
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("postgresql"))
    qtbot.keyClicks(dialog.host_edit, "127.0.0.1")
    qtbot.keyClicks(dialog.database_edit, "postgres")
    qtbot.keyClicks(dialog.user_edit, "postgres")
    return dialog


def test_the_dialog_offers_every_ssl_mode_with_an_explanation(
    qtbot: QtBot, store: ProfileStore, tmp_path: Path
) -> None:
    dialog = open_dialog(qtbot, store)
    combo = dialog.sslmode_combo
    assert [combo.itemText(i) for i in range(combo.count())] == list(SSL_MODES) == [
        "disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
    for i in range(combo.count()):
        assert combo.itemData(i, Qt.ItemDataRole.ToolTipRole) == SSL_MODE_HELP[combo.itemText(i)]
    for mode in ("disable", "allow", "prefer"):
        combo.setCurrentText(mode)
        assert dialog.problem.text() == ""
        assert dialog.open_button.isEnabled()
    for mode in ("verify-ca", "verify-full"):
        combo.setCurrentText(mode)
        assert dialog.problem.text() == f"SSL mode {mode} needs the server's CA certificate file."
        assert not dialog.open_button.isEnabled() and not dialog.test_button.isEnabled()
    qtbot.keyClicks(dialog.ca_edit, str(tmp_path / "missing.crt"))
    assert dialog.problem.text() == f"There is no CA certificate file at {tmp_path}/missing.crt."
    (tmp_path / "missing.crt").write_text("-")
    dialog.ca_edit.clear()
    dialog.ca_edit.setText(str(tmp_path / "missing.crt"))
    assert dialog.problem.text() == "" and dialog.open_button.isEnabled()
    assert combo.toolTip() == SSL_MODE_HELP["verify-full"]


def test_the_dialog_refuses_a_host_or_password_that_could_not_be_sent_safely(
    qtbot: QtBot, store: ProfileStore
) -> None:
    dialog = open_dialog(qtbot, store)
    qtbot.keyClicks(dialog.host_edit, "/x?sslmode=disable")
    assert dialog.problem.text().startswith("The host must be a server name")
    assert not dialog.open_button.isEnabled()
    dialog.accept()  # Enter in a field: refused as well
    assert dialog.url() is None and store.profiles() == []
    dialog.host_edit.setText("127.0.0.1")
    dialog.password_edit.setText("pass\x00word")
    assert dialog.problem.text() == "The password contains a control character."
    assert not dialog.open_button.isEnabled()
    dialog.password_edit.setText(PASSWORD)
    assert dialog.problem.text() == "" and dialog.open_button.isEnabled()


def test_testing_a_connection_that_requires_tls_fails_plainly_in_the_dialog(
    qtbot: QtBot, store: ProfileStore
) -> None:
    dialog = open_dialog(qtbot, store)
    dialog.password_edit.setText(PASSWORD)
    dialog.sslmode_combo.setCurrentText("require")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.testing, timeout=20_000)
    assert dialog.status.text().endswith(NO_TLS)
    assert hidden(PASSWORD, dialog.status.text())
    dialog.sslmode_combo.setCurrentText("prefer")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.testing, timeout=20_000)
    assert dialog.status.text().startswith("Connected to PostgreSQL ")
