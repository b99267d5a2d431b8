"""Saved database connections ("profiles"): what they hold, their address, where they live.

A :class:`ConnectionProfile` names one database: a SQLite file, or a PostgreSQL
server with its login and TLS settings. :func:`validate` says in plain sentences
what is wrong with one, and :func:`to_url` turns it into the SQLAlchemy address the
rest of the application opens (built with ``URL.create``, so a ``@`` or ``/`` in a
login, password or database name is escaped properly; a host name is not escaped by
``URL.create``, so one that is not a plain host name or IP address is refused by
:func:`validate` and percent-encoded by :func:`to_url`: no value typed into a profile
can end its part of the address and add a parameter such as ``sslmode=disable``).

TLS: ``sslmode`` is one of libpq's six modes (:data:`SSL_MODES`); ``verify-ca`` and
``verify-full`` need the server's CA certificate file (``sslrootcert``), which is
passed with ``require`` too when given (libpq then checks the CA, as ``verify-ca``).

:class:`ProfileStore` keeps the profiles in the application's ``QSettings`` and
remembers the last one used (the desktop application reopens it on the next
start). A password never goes there: it goes to the operating system's keyring
(the ``keyring`` library). A computer without a usable keyring (a headless server,
a bare Linux session) is not an error: the password is simply not remembered, and
the store says so in a plain message so that the dialog can ask for it each time.

No widgets here: the dialog is :mod:`credits_desktop.ui.connection_dialog`. The
sentences are translated in the context "ConnectionProfile".
"""

from __future__ import annotations

import ipaddress
import logging
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final
from urllib.parse import quote

import keyring
import keyring.errors
from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, QSettings
from sqlalchemy.engine import URL

__all__ = [
    "KEYRING_SERVICE",
    "KEYRING_UNAVAILABLE",
    "KINDS",
    "SETTINGS_APPLICATION",
    "SETTINGS_ORGANISATION",
    "SSL_MODES",
    "SSL_MODE_HELP",
    "ConnectionProfile",
    "ProfileStore",
    "ssl_mode_help",
    "to_url",
    "validate",
]

log = logging.getLogger(__name__)

SETTINGS_ORGANISATION: Final = "Credits Desk"
SETTINGS_APPLICATION: Final = "credits-desktop"
KEYRING_SERVICE: Final = "credits-desktop"

SQLITE: Final = "sqlite"
POSTGRESQL: Final = "postgresql"
KINDS: Final = (SQLITE, POSTGRESQL)
SSL_MODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# The modes that check the server's certificate against a CA file, which they need.
VERIFYING_SSL_MODES: Final = ("verify-ca", "verify-full")
# The modes a CA file given is passed with (libpq ignores it without encryption).
CA_SSL_MODES: Final = ("require", *VERIFYING_SSL_MODES)
# What each mode does, in English (ssl_mode_help gives it in the user's language).
SSL_MODE_HELP: Final = {
    "disable": str(QT_TRANSLATE_NOOP("ConnectionProfile", "Never encrypted.")),
    "allow": str(QT_TRANSLATE_NOOP(
        "ConnectionProfile",
        "Encrypted only if the server insists; the server is not checked.")),
    "prefer": str(QT_TRANSLATE_NOOP(
        "ConnectionProfile",
        "Encrypted when the server offers it; the server is not checked.")),
    "require": str(QT_TRANSLATE_NOOP(
        "ConnectionProfile",
        "Always encrypted; the server's certificate is checked only if a CA "
        "certificate file is given.")),
    "verify-ca": str(QT_TRANSLATE_NOOP(
        "ConnectionProfile",
        "Always encrypted; the server's certificate must be signed by the CA "
        "certificate file.")),
    "verify-full": str(QT_TRANSLATE_NOOP(
        "ConnectionProfile",
        "Always encrypted; the server's certificate must be signed by the CA "
        "certificate file and name the host.")),
}
DEFAULT_PORT: Final = 5432

# In English; ProfileStore.keyring_message has it in the user's language.
KEYRING_UNAVAILABLE: Final = str(QT_TRANSLATE_NOOP(
    "ConnectionProfile",
    "Passwords cannot be remembered on this computer (no system keyring is available); "
    "you will be asked for the password each time."))

# QSettings keys.
_ARRAY = "connections/profiles"
_LAST_USED = "connections/last_used"
_FIELDS = ("name", "kind", "path", "host", "port", "database", "user", "sslmode",
           "ssl_root_cert")


def ssl_mode_help(mode: str) -> str:
    """What the SSL mode ``mode`` does, in the user's language (empty for an unknown one)."""
    text = SSL_MODE_HELP.get(mode)
    return QCoreApplication.translate("ConnectionProfile", text) if text else ""


@dataclass(frozen=True)
class ConnectionProfile:
    """One saved database connection (never its password)."""

    name: str
    kind: str = SQLITE  # 'sqlite' or 'postgresql'
    path: str = ""  # the SQLite file
    host: str = ""
    port: int = DEFAULT_PORT
    database: str = ""
    user: str = ""
    sslmode: str = "prefer"
    ssl_root_cert: str | None = None  # a CA certificate file, for verify-ca/verify-full

    @property
    def is_postgresql(self) -> bool:
        return self.kind == POSTGRESQL

    def describe(self) -> str:
        """A short line for lists: where the profile points."""
        if self.is_postgresql:
            login = f"{self.user}@" if self.user else ""
            return f"PostgreSQL {login}{self.host}:{self.port}/{self.database}"
        return f"SQLite {self.path}"


def validate(profile: ConnectionProfile, password: str | None = None) -> list[str]:
    """What is wrong with ``profile`` (and ``password``, if given), one plain sentence
    each (in the user's language); empty when usable."""
    translate = QCoreApplication.translate
    problems: list[str] = []
    if not profile.name.strip():
        problems.append(translate("ConnectionProfile", "Give the connection a name."))
    if profile.kind == SQLITE:
        path = profile.path.strip()
        if not path:
            problems.append(translate("ConnectionProfile", "Choose the SQLite database file."))
        elif _unsendable(path):
            problems.append(translate("ConnectionProfile",
                                      "The database file name contains a control character."))
        elif not Path(path).expanduser().is_file():
            # SQLite would quietly create an empty file after a typo in the path.
            problems.append(translate("ConnectionProfile",
                                      "There is no database file at {path}.").format(path=path))
    elif profile.kind == POSTGRESQL:
        host = profile.host.strip()
        if not host:
            problems.append(translate("ConnectionProfile",
                                      "Enter the PostgreSQL server's host name or address."))
        elif not _plain_host(host):
            problems.append(translate(
                "ConnectionProfile",
                "The host must be a server name (such as db.example.com) or an IP address, "
                "without spaces or any of / ? # @ : %."))
        if not 1 <= profile.port <= 65535:
            problems.append(translate("ConnectionProfile",
                                      "The port must be a number from 1 to 65535."))
        if not profile.database.strip():
            problems.append(translate("ConnectionProfile", "Enter the name of the database."))
        elif _unsendable(profile.database):
            problems.append(translate("ConnectionProfile",
                                      "The database name contains a control character."))
        if not profile.user.strip():
            problems.append(translate("ConnectionProfile", "Enter the database login (user name)."))
        elif _unsendable(profile.user):
            problems.append(translate("ConnectionProfile",
                                      "The user name contains a control character."))
        if password and _unsendable(password):
            problems.append(translate("ConnectionProfile",
                                      "The password contains a control character."))
        if profile.sslmode not in SSL_MODES:
            problems.append(translate("ConnectionProfile", "Unknown SSL mode '{mode}'.").format(
                mode=profile.sslmode))
        cert = (profile.ssl_root_cert or "").strip()
        if profile.sslmode in VERIFYING_SSL_MODES and not cert:
            problems.append(translate(
                "ConnectionProfile", "SSL mode {mode} needs the server's CA certificate file."
            ).format(mode=profile.sslmode))
        elif cert and profile.sslmode in CA_SSL_MODES:
            if _unsendable(cert):
                problems.append(translate(
                    "ConnectionProfile",
                    "The CA certificate file name contains a control character."))
            elif not Path(cert).expanduser().is_file():
                problems.append(translate(
                    "ConnectionProfile", "There is no CA certificate file at {path}."
                ).format(path=cert))
    else:
        problems.append(translate("ConnectionProfile", "Unknown kind of database '{kind}'.").format(
            kind=profile.kind))
    return problems


# A host name: labels of letters, digits, '-' and '_' (any script: IDN names are
# resolved by the system), separated by dots.
_HOST_NAME = re.compile(r"[\w-]+(?:\.[\w-]+)*\.?")


def _plain_host(host: str) -> bool:
    """Whether ``host`` is a host name or an IP address (IPv6 with or without
    brackets), so that it can stand in an address as it is."""
    return _ip_address(host) is not None or (
        len(host) <= 253 and _HOST_NAME.fullmatch(host) is not None
    )


def _ip_address(host: str) -> str | None:
    """``host`` as an IP address without brackets, or None when it is not one."""
    inner = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(inner)
    except ValueError:
        return None
    return inner


def _unsendable(text: str) -> bool:
    """Whether ``text`` holds a control character or a lone surrogate: the driver would
    cut the value at a NUL (connecting to another database) or fail to encode it."""
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def _url_host(host: str) -> str | None:
    """The host as it may stand in an address. SQLAlchemy writes the host unescaped, so
    anything but a plain host name or IP address is percent-encoded: a '/', '?' or '#'
    in it then cannot end the host and start a path or parameters of its own (it
    simply names no server)."""
    text = host.strip()
    if not text:
        return None
    ip = _ip_address(text)
    if ip is not None:
        return ip
    if _HOST_NAME.fullmatch(text):
        return text
    return quote(text, safe="")


def to_url(profile: ConnectionProfile, password: str | None) -> str:
    """The SQLAlchemy address of ``profile`` (with ``password`` in it, if given).

    The result holds the password: show it only through
    ``make_url(...).render_as_string(hide_password=True)``.
    """
    if profile.kind == SQLITE:
        path = str(Path(profile.path.strip()).expanduser())
        return URL.create("sqlite", database=path).render_as_string(hide_password=False)
    # An unknown mode is passed as it is (the driver refuses it), never made weaker.
    query: dict[str, str] = {"sslmode": profile.sslmode}
    cert = (profile.ssl_root_cert or "").strip()
    if cert and profile.sslmode in CA_SSL_MODES:
        query["sslrootcert"] = str(Path(cert).expanduser())
    url = URL.create(
        "postgresql+psycopg",
        username=profile.user.strip() or None,
        password=password or None,
        host=_url_host(profile.host),
        port=profile.port,
        database=profile.database.strip() or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def keyring_username(profile: ConnectionProfile) -> str:
    """Whose password it is, in the keyring: the profile and its login."""
    return f"{profile.name}/{profile.user}"


class ProfileStore:
    """The saved profiles in ``QSettings``, their passwords in the system keyring.

    ``settings`` defaults to the application's own (organisation "Credits Desk",
    application "credits-desktop"); tests pass one on a file of their own.
    """

    def __init__(self, settings: QSettings | None = None) -> None:
        self._settings = settings or QSettings(SETTINGS_ORGANISATION, SETTINGS_APPLICATION)
        # The last keyring failure, in words (None while the keyring works).
        self.keyring_message: str | None = None

    @property
    def settings(self) -> QSettings:
        return self._settings

    # -- profiles -----------------------------------------------------------------------

    def profiles(self) -> list[ConnectionProfile]:
        """Every saved profile, by name."""
        s = self._settings
        found: list[ConnectionProfile] = []
        for i in range(s.beginReadArray(_ARRAY)):
            s.setArrayIndex(i)
            profile = self._read_one(s)
            if profile is not None:
                found.append(profile)
        s.endArray()
        return sorted(found, key=lambda p: p.name.casefold())

    def get(self, name: str) -> ConnectionProfile | None:
        return next((p for p in self.profiles() if p.name == name), None)

    def save(self, profile: ConnectionProfile, *, replacing: str | None = None) -> None:
        """Add ``profile``, or replace the saved one of the same name (or named
        ``replacing``: the profile was renamed)."""
        profile = replace(profile, name=profile.name.strip())
        gone = {profile.name, replacing} - {None}
        old = self.get(replacing) if replacing and replacing != profile.name else None
        kept = [p for p in self.profiles() if p.name not in gone]
        self._write_all([*kept, profile])
        if old is not None:
            # The password was filed under the old name.
            self.forget_password(old)
            if self.last_used() == old.name:
                self.set_last_used(profile.name)

    def delete(self, name: str) -> None:
        """Remove the profile ``name`` and its remembered password."""
        profile = self.get(name)
        if profile is None:
            return
        self._write_all([p for p in self.profiles() if p.name != name])
        self.forget_password(profile)
        if self.last_used() == name:
            self._settings.remove(_LAST_USED)
        self._settings.sync()

    def last_used(self) -> str | None:
        value = self._settings.value(_LAST_USED)
        return str(value) if value else None

    def set_last_used(self, name: str) -> None:
        self._settings.setValue(_LAST_USED, name)
        self._settings.sync()

    def clear_last_used(self) -> None:
        """No last profile: the next start opens the demo database."""
        self._settings.remove(_LAST_USED)
        self._settings.sync()

    # -- passwords ----------------------------------------------------------------------

    def password(self, profile: ConnectionProfile) -> str | None:
        """The remembered password of ``profile``, or None (none, or no keyring)."""
        try:
            value = keyring.get_password(KEYRING_SERVICE, keyring_username(profile))
        except Exception as exc:  # backends raise their own types besides KeyringError
            self._keyring_failed("read", exc)
            return None
        self.keyring_message = None
        return value

    def store_password(self, profile: ConnectionProfile, password: str) -> bool:
        """Remember ``password`` for ``profile``; False (and ``keyring_message`` set)
        when the keyring cannot take it. An empty password forgets the old one."""
        if not password:
            return self.forget_password(profile)
        try:
            keyring.set_password(KEYRING_SERVICE, keyring_username(profile), password)
        except Exception as exc:  # backends raise their own types besides KeyringError
            self._keyring_failed("store", exc)
            return False
        self.keyring_message = None
        return True

    def forget_password(self, profile: ConnectionProfile) -> bool:
        try:
            keyring.delete_password(KEYRING_SERVICE, keyring_username(profile))
        except keyring.errors.PasswordDeleteError:
            pass  # there was none
        except Exception as exc:  # backends raise their own types besides KeyringError
            self._keyring_failed("delete", exc)
            return False
        return True

    # -- internals ----------------------------------------------------------------------

    def _keyring_failed(self, action: str, exc: Exception) -> None:
        # The exception text can name the backend, never the password (it is not in it).
        log.info("could not %s a password in the keyring: %s", action, type(exc).__name__)
        self.keyring_message = QCoreApplication.translate("ConnectionProfile",
                                                          KEYRING_UNAVAILABLE)

    def _write_all(self, profiles: list[ConnectionProfile]) -> None:
        s = self._settings
        s.remove(_ARRAY)  # rewrite the array whole, so no stale entries remain
        s.beginWriteArray(_ARRAY, len(profiles))
        for i, profile in enumerate(sorted(profiles, key=lambda p: p.name.casefold())):
            s.setArrayIndex(i)
            for field in _FIELDS:
                value = getattr(profile, field)
                s.setValue(field, "" if value is None else value)
        s.endArray()
        s.sync()

    @staticmethod
    def _read_one(s: QSettings) -> ConnectionProfile | None:
        name = str(s.value("name") or "").strip()
        if not name:
            return None
        try:
            port = int(str(s.value("port") or DEFAULT_PORT))
        except ValueError:
            port = DEFAULT_PORT
        kind = str(s.value("kind") or SQLITE)
        sslmode = str(s.value("sslmode") or "prefer")
        cert = str(s.value("ssl_root_cert") or "") or None
        return ConnectionProfile(
            name=name,
            kind=kind if kind in KINDS else SQLITE,
            path=str(s.value("path") or ""),
            host=str(s.value("host") or ""),
            port=port,
            database=str(s.value("database") or ""),
            user=str(s.value("user") or ""),
            sslmode=sslmode if sslmode in SSL_MODES else "prefer",
            ssl_root_cert=cert,
        )
