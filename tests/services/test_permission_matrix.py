"""Every role × every action of the permission table, through the services.

The expected verdicts are the brief's table written out here (not read back from
``domain.permissions``, so a change there that breaks the table fails). Allowed actions
work, "request" ones leave a pending request and nothing else, refused ones raise
``PermissionDenied`` with a plain sentence and write nothing. On PostgreSQL every action
runs as the staff member's own database login (``db roles`` grants and the triggers of
migration 0003 in force); the raw-SQL half is ``tests/store/test_db_rules.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from credits_desktop.services.account_charts import write_export
from credits_desktop.services.accounts import create_staff
from credits_desktop.services.dashboard import dashboard
from credits_desktop.services.errors import PermissionDenied
from credits_desktop.services.incidents import IncidentScope, run_incident
from credits_desktop.services.operations import Actor
from credits_desktop.services.periods import roll_periods
from credits_desktop.services.purchases import buy_package
from credits_desktop.services.queries import account_summary
from credits_desktop.services.results import OperationResult
from credits_desktop.store.database import Database
from credits_desktop.store.models import ApprovalRequest

from .factories import (
    World,
    adjust,
    approve,
    assert_invariants,
    assert_nothing_written,
    assert_plain_sentence,
    charge,
    key,
    open_world,
    refund,
)
from .pg_logins import staff_logins

A, R, D = "allow", "request", "deny"
ROLES = ("support", "finance", "manager", "admin", "platform")

# The permission table of the brief (platform = the ad platform's system account).
#               support finance manager admin platform
EXPECTED: dict[str, tuple[str, ...]] = {
    "browse": (A, A, A, A, A),
    "refund_small": (A, A, A, A, D),
    "refund_large": (R, R, A, A, D),
    "refund_not_failed": (R, R, A, A, D),
    "adjust_small": (D, A, D, A, D),
    "adjust_large": (D, R, D, R, D),
    "approve_own": (D, D, None, D, None),  # type: ignore[dict-item]
    "approve_other": (D, A, A, A, D),
    "incident_refund": (D, A, A, A, D),
    "charts": (A, A, A, A, None),  # type: ignore[dict-item]
    "export": (D, A, A, A, D),
    "administer": (D, D, D, A, D),
    "record_usage": (D, D, D, D, A),
    "buy_package": (D, D, D, D, A),
    "roll_periods": (D, D, D, A, A),
}
# None: cannot arise (a manager never has to ask; the platform never asks), or not a
# service decision (the platform has no screens: the charts read without an actor).


@dataclass
class Cast:
    """Who acts, and on which connection: the owner's on SQLite, each login's on PG."""

    world: World
    dbs: dict[str, Database]
    actors: dict[str, Actor]

    def as_(self, role: str) -> World:
        return replace(self.world, db=self.dbs[role], platform=self.actors["platform"])


@pytest.fixture
def cast(db_url: str) -> Iterator[Cast]:
    with open_world(db_url) as w, ExitStack() as stack:
        if w.db.is_postgresql:
            logins = stack.enter_context(staff_logins(w, db_url))
            dbs = {r: logins.of(r).db for r in ROLES}
            actors = {r: logins.of(r).actor for r in ROLES}
        else:
            dbs = dict.fromkeys(ROLES, w.db)
            actors = {r: getattr(w, r) for r in ROLES}
        # Credits enough for every action's charges.
        buy_package(dbs["platform"], actors["platform"], account_id=w.account_id,
                    package_code="pack_10000", payment_reference="PAY-0",
                    idempotency_key=key("buy"), at=w.t0)
        yield Cast(w, dbs, actors)
        assert_invariants(w.db)


def _status(result: Any) -> str:
    """allow / request for an operation's result; any other answer (a read) is allow."""
    if not isinstance(result, OperationResult):
        return A
    return {"applied": A, "requested": R}.get(result.status, result.status)


Step = Callable[[], Any]


def actions(c: Cast, role: str, tmp: Path) -> dict[str, Callable[[], Step]]:
    """Each action as ``prepare() -> act``: preparing makes what the action needs (a
    charge to refund, a request to approve), so that only ``act`` is the attempt."""
    w = c.as_(role)
    me = c.actors[role]
    setup = c.as_("platform")

    def refund_of(credits: int, status: str = "failed") -> Step:
        made = charge(setup, credits, status=status)
        return lambda: refund(w, me, made.charge_id)

    def approve_own() -> Step:
        own = refund_of(600)() if role in ("support", "finance") else adjust(w, me, 1_500)
        assert own.status == "requested"
        return lambda: approve(w, me, own.request_id)

    def approve_other() -> Step:
        made = charge(setup, 600)
        asked = refund(c.as_("support"), c.actors["support"], made.charge_id)
        return lambda: approve(w, me, asked.request_id)

    def incident() -> Step:
        charge(setup, 40)
        scope = IncidentScope("ad_image", None, w.at(hours=0), w.at(hours=2))
        return lambda: run_incident(w.db, me, scope, incident_ref="INC-" + key(),
                                    at=w.at(days=1))

    def now(step: Step) -> Callable[[], Step]:
        return lambda: step

    return {
        "browse": now(lambda: account_summary(w.db, w.account_id, at=w.at(days=1))),
        "refund_small": lambda: refund_of(40),
        "refund_large": lambda: refund_of(600),
        "refund_not_failed": lambda: refund_of(40, "succeeded"),
        "adjust_small": now(lambda: adjust(w, me, 300)),
        "adjust_large": now(lambda: adjust(w, me, 1_500)),
        "approve_own": approve_own,
        "approve_other": approve_other,
        "incident_refund": incident,
        "charts": now(lambda: dashboard(w.db, start=date(2026, 1, 1), end=date(2026, 2, 1),
                                        granularity="day")),
        "export": now(lambda: write_export(w.db, me, w.account_id, tmp / f"{role}.png",
                                           b"png", what="usage chart as PNG")),
        "administer": now(lambda: create_staff(w.db, me, username="new-" + key(),
                                               display_name="New Person", role="support")),
        "record_usage": now(lambda: charge(replace(w, platform=me), 10)),
        "buy_package": now(lambda: buy_package(w.db, me, account_id=w.account_id,
                                               package_code="pack_500",
                                               payment_reference="PAY-" + key(),
                                               idempotency_key=key("buy"),
                                               at=w.at(hours=3))),
        "roll_periods": now(lambda: roll_periods(w.db, me, until=w.at(days=1))),
    }


def _pending(db: Database) -> int:
    return int(db.read(lambda s: s.scalar(
        select(func.count()).select_from(ApprovalRequest)
        .where(ApprovalRequest.status == "pending"))) or 0)


@pytest.mark.parametrize("role", ROLES)
def test_every_action_of_a_role(role: str, cast: Cast, tmp_path: Path) -> None:
    column = ROLES.index(role)
    owner = cast.world.db
    mismatches: list[str] = []
    for action, prepare in actions(cast, role, tmp_path).items():
        expected = EXPECTED[action][column]
        if expected is None:
            continue
        act = prepare()
        if expected == D:
            with assert_nothing_written(owner):
                try:
                    act()
                except PermissionDenied as exc:
                    assert_plain_sentence(exc.message)
                else:
                    mismatches.append(f"{action}: expected a refusal, it was allowed")
            if action == "export":
                assert not (tmp_path / f"{role}.png").exists()
            continue
        pending = _pending(owner)
        try:
            got = _status(act())
        except PermissionDenied as exc:
            mismatches.append(f"{action}: expected {expected}, refused: {exc.message}")
            continue
        if got != expected:
            mismatches.append(f"{action}: expected {expected}, got {got}")
        if expected == R and _pending(owner) != pending + 1:
            mismatches.append(f"{action}: a request should be left pending")
    assert not mismatches, f"{role}: " + "; ".join(mismatches)


@pytest.mark.parametrize("role", ["support", "manager", "platform"])
def test_refused_adjustment_writes_nothing(role: str, cast: Cast) -> None:
    """The refusals with no setup step, snapshot around the whole call."""
    w = cast.as_(role)
    with assert_nothing_written(cast.world.db), pytest.raises(PermissionDenied) as refused:
        adjust(w, cast.actors[role], 300)
    assert_plain_sentence(refused.value.message)
