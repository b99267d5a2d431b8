"""Signing in: the staff picker (SQLite) and the database login (PostgreSQL)."""

from __future__ import annotations

import pytest
from conftest import only_on
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox
from pytestqt.qtbot import QtBot
from services.factories import World

from credits_desktop.domain.permissions import Role
from credits_desktop.services.accounts import create_staff, set_staff_active
from credits_desktop.services.errors import PermissionDenied
from credits_desktop.store.database import Database
from credits_desktop.ui.sign_in import SignInDialog, login_from_database

from .pseudo_translation import untranslated_texts


def open_dialog(qtbot: QtBot, db: Database) -> SignInDialog:
    dialog = SignInDialog(db)
    qtbot.addWidget(dialog, before_close_func=lambda d: d.worker.wait_for_done())
    dialog.show()
    # Loaded: names listed, or a message other than "Loading…" in their place.
    qtbot.waitUntil(lambda: dialog.staff_list.count() > 0
                    or not dialog.message.text().startswith("Loading"))
    return dialog


def listed(dialog: SignInDialog) -> list[str]:
    return [dialog.staff_list.item(i).text() for i in range(dialog.staff_list.count())]


def test_the_dialog_lists_the_active_staff_and_signs_in_the_chosen_one(
    qtbot: QtBot, world: World
) -> None:
    set_staff_active(world.db, world.admin, username="max", active=False)
    dialog = open_dialog(qtbot, world.db)
    # Neither the deactivated manager nor the platform's service account is offered.
    assert listed(dialog) == ["Ada Admin · Admin", "Fay Finance · Finance",
                              "Sam Support · Support"]
    assert not dialog.sign_in_button_enabled
    assert dialog.select_username("sam")
    assert dialog.sign_in_button_enabled
    with qtbot.waitSignal(dialog.finished) as finished:
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)
    assert finished.args == [QDialog.DialogCode.Accepted]
    assert dialog.actor == world.support


def test_a_staff_member_deactivated_meanwhile_cannot_sign_in(
    qtbot: QtBot, world: World
) -> None:
    dialog = open_dialog(qtbot, world.db)
    assert dialog.select_username("fay")
    set_staff_active(world.db, world.admin, username="fay", active=False)
    dialog.accept()
    assert not dialog.sign_in_button_enabled  # while the sign-in is checked
    qtbot.waitUntil(lambda: "deactivated" in dialog.message.text())
    assert dialog.message.text() == "The staff account 'fay' is deactivated."
    assert dialog.isVisible() and dialog.actor is None
    assert dialog.sign_in_button_enabled  # another name can still be chosen


def test_without_staff_the_dialog_explains_what_to_do(qtbot: QtBot, db: Database) -> None:
    dialog = open_dialog(qtbot, db)
    assert dialog.staff_list.count() == 0
    assert "no active staff members" in dialog.message.text()
    assert "credits-desktop staff add" in dialog.message.text()
    assert not dialog.sign_in_button_enabled


@only_on("postgresql")
def test_on_postgresql_the_database_login_is_the_staff_member(world: World) -> None:
    login = world.db.engine.url.username
    with pytest.raises(PermissionDenied) as refused:
        login_from_database(world.db)
    assert refused.value.message.startswith(
        f"The database login '{login}' is not a Credits Desk staff member."
    )
    create_staff(world.db, world.admin, username=str(login), display_name="Dana Whitfield",
                 role="support")
    actor = login_from_database(world.db)
    assert (actor.username, actor.display_name, actor.role) == (
        login, "Dana Whitfield", Role.SUPPORT)


# -- every text goes through Qt's translation ------------------------------------------


def test_every_text_of_the_dialog_goes_through_translation(
    qtbot: QtBot, world: World, pseudo_translated: object,
) -> None:
    dialog = SignInDialog(world.db)
    qtbot.addWidget(dialog, before_close_func=lambda d: d.worker.wait_for_done())
    assert dialog.message.text() == "⟦Loading the staff list…⟧"
    assert untranslated_texts(dialog) == []
    dialog.show()
    qtbot.waitUntil(lambda: dialog.staff_list.count() > 0)
    assert dialog.select_username("fay")
    assert untranslated_texts(dialog) == []
    dialog.accept()  # the answer comes later, from the worker
    assert dialog.message.text() == "⟦Signing in as {name}…⟧".format(name="Fay Finance")
    assert untranslated_texts(dialog) == []


def test_without_staff_the_explanation_is_translated(
    qtbot: QtBot, db: Database, pseudo_translated: object,
) -> None:
    dialog = SignInDialog(db)
    qtbot.addWidget(dialog, before_close_func=lambda d: d.worker.wait_for_done())
    qtbot.waitUntil(lambda: "no active staff" in dialog.message.text())
    assert dialog.message.text().startswith("⟦This database has no active staff members")
    assert untranslated_texts(dialog) == []


@only_on("postgresql")
def test_the_refusal_of_a_login_that_is_no_staff_member_is_translated(
    world: World, pseudo_translated: object
) -> None:
    with pytest.raises(PermissionDenied) as refused:
        login_from_database(world.db)
    assert refused.value.message.startswith("⟦The database login '")
