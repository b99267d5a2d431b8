"""Bad input to every write service: a clear typed error and nothing written.

Each refusal is checked with :func:`refused`: the error is of the expected
``services.errors`` type, its message is a plain sentence (no traceback, no
driver text), every table keeps its row count and no account is touched. A
refusal for lack of permission adds exactly one 'denied' row to the audit log,
any other refusal adds none.

Text that is merely unusual (quotes, SQL, emoji, right-to-left script) is not bad
input: it is stored verbatim, which the last tests read back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from credits_desktop.services.accounts import create_account, create_staff, set_staff_active
from credits_desktop.services.adjustments import adjust_purchased
from credits_desktop.services.approvals import approve_request, reject_request
from credits_desktop.services.charges import record_charge
from credits_desktop.services.errors import (
    CreditsDeskError,
    IdempotencyConflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleBroken,
)
from credits_desktop.services.operations import Actor
from credits_desktop.services.periods import roll_periods
from credits_desktop.services.purchases import buy_package
from credits_desktop.services.refunds import RefundItem, refund_charges
from credits_desktop.services.results import OperationResult
from credits_desktop.services.reversals import reverse
from credits_desktop.store.models import Account, AuditEvent, LedgerEntry, Operation, Staff

from .factories import (
    World,
    assert_invariants,
    assert_nothing_written,
    assert_plain_sentence,
    charge,
    denied_audits,
    fetch,
    key,
    open_account,
    open_world,
)

NAIVE = datetime(2026, 1, 12, 9, 0)  # no time zone: ambiguous, so refused
CONTROL = ["bad\x00byte", "esc\x1b[31mred", "bell\x07", "del\x7f", "cr\rreturn"]


@dataclass(frozen=True)
class Case(World):
    """The seeded world plus a row of each kind for the operations to act on."""

    charge_id: int  # a failed 40-credit charge, not refunded
    request_id: int  # a pending request by finance to add 5,000 purchased credits
    adjustment_id: int  # an applied adjustment that added 100 purchased credits


@pytest.fixture
def world(db_url: str) -> Iterator[Case]:
    with open_world(db_url) as w:
        yield Case(**vars(w), charge_id=charge(w, 40).charge_id, request_id=pending_request(w),
                   adjustment_id=applied_adjustment(w))
        assert_invariants(w.db)


def refused(
    w: World, error: type[CreditsDeskError], call: Callable[[], object], *,
    message: str | None = None, denied: bool = False,
) -> str:
    """Run ``call``, expecting ``error`` with nothing written; return the message."""
    audits = denied_audits(w.db)
    with assert_nothing_written(w.db), pytest.raises(error) as caught:
        call()
    text = caught.value.message
    assert str(caught.value) == text
    assert_plain_sentence(text)
    if message is not None:
        assert text == message
    assert denied_audits(w.db) == audits + (1 if denied else 0)
    return text


# -- the calls under test, with good defaults and one thing changed ----------------------


def do_refund(w: Case, actor: Actor | None = None, *, charge_id: int | None = None,
              **changes: Any) -> OperationResult:
    if charge_id is None:
        charge_id = w.charge_id
    args: dict[str, Any] = {
        "account_id": w.account_id, "items": [RefundItem(charge_id, changes.pop("credits", None))],
        "reason_code": "failed_generation", "ticket": "#1", "idempotency_key": key(),
        "at": w.at(days=1),
    }
    args.update(changes)
    return refund_charges(w.db, actor or w.support, **args)


def do_adjust(w: Case, actor: Actor | None = None, **changes: Any) -> OperationResult:
    args: dict[str, Any] = {
        "account_id": w.account_id, "delta": 100, "reason_code": "compensation",
        "reference": "T-1", "idempotency_key": key(), "at": w.at(days=1),
    }
    args.update(changes)
    return adjust_purchased(w.db, actor or w.finance, **args)


def do_charge(w: Case, actor: Actor | None = None, **changes: Any) -> object:
    args: dict[str, Any] = {
        "account_id": w.account_id, "feature_code": "ad_image", "external_id": key(),
        "occurred_at": w.at(hours=3), "status": "failed", "credits": 10,
    }
    args.update(changes)
    return record_charge(w.db, actor or w.platform, **args)


def do_buy(w: Case, actor: Actor | None = None, **changes: Any) -> OperationResult:
    args: dict[str, Any] = {
        "account_id": w.account_id, "package_code": "pack_500", "payment_reference": "pay-1",
        "idempotency_key": key(), "at": w.at(hours=3),
    }
    args.update(changes)
    return buy_package(w.db, actor or w.platform, **args)


def pending_request(w: World) -> int:
    result = adjust_purchased(w.db, w.finance, account_id=w.account_id, delta=5000,
                              reason_code="manual_sale", reference="INV-9",
                              idempotency_key=key(), at=w.at(days=1))
    assert result.request_id is not None
    return result.request_id


def do_approve(w: Case, actor: Actor | None = None, **changes: Any) -> OperationResult:
    args: dict[str, Any] = {"idempotency_key": key(), "at": w.at(days=2)}
    args.setdefault("request_id", w.request_id)
    args.update(changes)
    return approve_request(w.db, actor or w.manager, **args)


def do_reject(w: Case, actor: Actor | None = None, **changes: Any) -> OperationResult:
    args: dict[str, Any] = {"idempotency_key": key(), "at": w.at(days=2), "comment": "No."}
    args.setdefault("request_id", w.request_id)
    args.update(changes)
    return reject_request(w.db, actor or w.manager, **args)


def applied_adjustment(w: World) -> int:
    done = adjust_purchased(w.db, w.finance, account_id=w.account_id, delta=100,
                            reason_code="compensation", reference="T-0",
                            idempotency_key=key(), at=w.at(days=1))
    adjustment_id = done.details["adjustment_id"]
    assert isinstance(adjustment_id, int)
    return adjustment_id


def do_reverse(w: Case, actor: Actor | None = None, **changes: Any) -> OperationResult:
    args: dict[str, Any] = {"reason": "Typo", "reference": "R-1", "idempotency_key": key(),
                            "at": w.at(days=2)}
    if "adjustment_id" not in changes and "refund_id" not in changes:
        args["adjustment_id"] = w.adjustment_id
    args.update(changes)
    return reverse(w.db, actor or w.finance, **args)


def do_open(w: Case, actor: Actor | None = None, **changes: Any) -> OperationResult:
    args: dict[str, Any] = {"name": "New Co", "email": "a@new.test", "plan_code": "starter",
                            "billing_day": 5, "idempotency_key": key(),
                            "created_at": w.at(days=1)}
    args.update(changes)
    return create_account(w.db, actor or w.platform, **args)


# -- amounts -------------------------------------------------------------------------

WHOLE = "must be a whole number of credits."


def test_bad_refund_amounts(world: Case) -> None:
    cases: list[tuple[object, str]] = [
        (0, "The amount to refund must be at least 1 credit."),
        (-1, "The amount to refund must be at least 1 credit."),
        (10**12, "The amount to refund can be at most 1,000,000 credits."),
        (True, f"The amount to refund {WHOLE}"),
        (1.5, f"The amount to refund {WHOLE}"),
        ("10", f"The amount to refund {WHOLE}"),
    ]
    for value, message in cases:
        refused(world, InvalidInput, partial(do_refund, world, credits=value), message=message)


def test_bad_adjustment_amounts(world: Case) -> None:
    cases: list[tuple[object, str]] = [
        (0, "The adjustment must add or remove at least 1 credit."),
        (10**12, "The adjustment can be at most 1,000,000 credits."),
        (-(10**12), "The adjustment can be at most 1,000,000 credits."),
        (True, f"The adjustment {WHOLE}"),
        (False, f"The adjustment {WHOLE}"),
        (1.5, f"The adjustment {WHOLE}"),
        ("10", f"The adjustment {WHOLE}"),
        (None, f"The adjustment {WHOLE}"),
    ]
    for value, message in cases:
        refused(world, InvalidInput, partial(do_adjust, world, delta=value), message=message)


def test_bad_charge_amounts(world: Case) -> None:
    # Zero is a valid charge (a free use); anything below is not.
    cases: list[tuple[object, str]] = [
        (-1, "The charge must be at least 0."),
        (10**12, "The charge can be at most 1,000,000 credits."),
        (True, f"The charge {WHOLE}"),
        (1.5, f"The charge {WHOLE}"),
        ("10", f"The charge {WHOLE}"),
    ]
    for value, message in cases:
        refused(world, InvalidInput, partial(do_charge, world, credits=value), message=message)


def test_bad_account_ids(world: Case) -> None:
    for bad in ("1", True, None, 1.0):
        for call in (do_refund, do_adjust, do_charge, do_buy):
            refused(world, InvalidInput, partial(call, world, account_id=bad),
                    message="Choose an account.")


# -- text ------------------------------------------------------------------------------


TEXT_FIELDS: dict[str, tuple[Callable[..., object], str, str, int]] = {
    # name: (call, argument, label in the message, maximum length)
    "refund ticket": (do_refund, "ticket", "A ticket reference", 100),
    "adjustment reference": (do_adjust, "reference", "A reference", 100),
    "payment reference": (do_buy, "payment_reference", "The payment reference", 100),
    "reversal reason": (do_reverse, "reason", "A reason", 200),
    "reversal reference": (do_reverse, "reference", "A ticket or reference", 100),
    "charge id": (do_charge, "external_id", "The charge id", 100),
    "account name": (do_open, "name", "The account name", 200),
    "reject comment": (do_reject, "comment", "A comment saying why", 2000),
}


@pytest.mark.parametrize("name", list(TEXT_FIELDS))
def test_required_text_is_checked(world: Case, name: str) -> None:
    call, argument, label, longest = TEXT_FIELDS[name]

    def attempt(value: object) -> str:
        return refused(world, InvalidInput, lambda: call(world, **{argument: value}))

    for empty in ("", "   ", "\n\t ", None):
        assert attempt(empty) == f"{label} is required."
    assert attempt("x" * (longest + 1)) == (
        f"{label} is too long: at most {longest:,} characters.")
    for bad in CONTROL:
        assert attempt(bad) == f"{label} contains a control character."
    assert attempt(42) == f"{label} must be text."


def test_optional_text_is_checked(world: Case) -> None:
    refused(world, InvalidInput, lambda: do_refund(world, note="n" * 2001),
            message="The note is too long: at most 2,000 characters.")
    refused(world, InvalidInput, lambda: do_adjust(world, note="tab\tok but nul\x00 is not"),
            message="The note contains a control character.")
    refused(world, InvalidInput, lambda: do_approve(world, comment="c" * 2001),
            message="The comment is too long: at most 2,000 characters.")
    refused(world, InvalidInput, lambda: do_charge(world, model="m" * 61),
            message="The model is too long: at most 60 characters.")
    refused(world, InvalidInput, lambda: do_charge(world, status="succeeded",
                                                   failure_reason="timeout"),
            message="Only a failed charge has a failure reason.")
    refused(world, InvalidInput, lambda: do_charge(world, status="maybe"),
            message="A charge either succeeded or failed.")


def test_bad_staff_input(world: Case) -> None:
    def add(**changes: object) -> object:
        args: dict[str, object] = {"username": "new.one", "display_name": "New One",
                                   "role": "support"}
        args.update(changes)
        return create_staff(world.db, world.admin, **args)  # type: ignore[arg-type]

    refused(world, InvalidInput, lambda: add(username="new one"),
            message="A username has only letters, digits, '.', '_' and '-'.")
    refused(world, InvalidInput, lambda: add(username="u" * 64),
            message="The username is too long: at most 63 characters.")
    refused(world, InvalidInput, lambda: add(display_name=" "),
            message="The display name is required.")
    refused(world, RuleBroken, lambda: add(username="sam"),
            message="There is already a staff member 'sam'.")
    refused(world, InvalidInput,
            lambda: set_staff_active(world.db, world.admin, username="sam",
                                     active="no"),  # type: ignore[arg-type]
            message="Say whether the staff member is active or not.")
    refused(world, NotFound,
            lambda: set_staff_active(world.db, world.admin, username="nobody", active=False),
            message="There is no staff member 'nobody'.")
    refused(world, RuleBroken,
            lambda: set_staff_active(world.db, world.admin, username="ada", active=False),
            message="You cannot deactivate yourself.")


def test_bad_idempotency_keys(world: Case) -> None:
    for call in (do_refund, do_adjust, do_buy, do_approve, do_reverse, do_open):
        for empty in ("", "   ", None):
            refused(world, InvalidInput, partial(call, world, idempotency_key=empty),
                    message="Every change needs an idempotency key.")
        refused(world, InvalidInput, partial(call, world, idempotency_key="k" * 101),
                message="The idempotency key is too long.")


# -- codes -----------------------------------------------------------------------------


def test_reason_codes_outside_the_list(world: Case) -> None:
    refund_options = "failed_generation, duplicate_charge, quality_problem, goodwill, other"
    for bad in ("refund_everything", "", None, "FAILED_GENERATION", "manual_sale", 3):
        refused(world, InvalidInput, partial(do_refund, world, reason_code=bad),
                message=f"The refund reason must be one of: {refund_options}.")
    adjust_options = "manual_sale, compensation, chargeback, correction"
    for bad in ("goodwill", "", None, " manual_sale"):
        refused(world, InvalidInput, partial(do_adjust, world, reason_code=bad),
                message=f"The adjustment reason must be one of: {adjust_options}.")
    for role in ("owner", "", "Admin"):
        refused(world, InvalidInput,
                partial(create_staff, world.db, world.admin, username="new",
                        display_name="New", role=role),
                message="The role must be one of: support, finance, manager, admin, system.")


def test_other_reason_needs_a_note(world: Case) -> None:
    for note in (None, "", "   "):
        refused(world, InvalidInput,
                partial(do_refund, world, reason_code="other", note=note),
                message="Say in the note why you refund with reason 'other'.")
    assert do_refund(world, reason_code="other", note="Customer was double billed by a "
                     "partner.").status == "applied"


def test_unknown_codes(world: Case) -> None:
    refused(world, NotFound, lambda: do_buy(world, package_code="pack_7"),
            message="There is no credit package 'pack_7'.")
    refused(world, NotFound, lambda: do_charge(world, feature_code="mind_reading"),
            message="There is no AI feature 'mind_reading'.")
    refused(world, NotFound, lambda: do_open(world, plan_code="platinum"),
            message="There is no plan 'platinum'.")
    for bad in ("", None):
        refused(world, InvalidInput, partial(do_charge, world, feature_code=bad))
        refused(world, InvalidInput, partial(do_buy, world, package_code=bad))


# -- rows that do not exist or do not fit -------------------------------------------------


@pytest.mark.parametrize("missing", [999, 10**12], ids=["999", "huge"])
def test_unknown_account(world: Case, missing: int) -> None:
    message = f"There is no account with id {missing}."
    refused(world, NotFound, lambda: do_adjust(world, account_id=missing), message=message)
    refused(world, NotFound, lambda: do_buy(world, account_id=missing), message=message)
    refused(world, NotFound, lambda: do_charge(world, account_id=missing), message=message)
    refused(world, NotFound, lambda: do_refund(world, account_id=missing), message=message)


@pytest.mark.parametrize("missing", [999, 10**12], ids=["999", "huge"])
def test_unknown_charge_request_refund_and_adjustment(world: Case, missing: int) -> None:
    refused(world, NotFound, lambda: do_refund(world, charge_id=missing),
            message=f"There is no charge with id {missing}.")
    refused(world, NotFound, lambda: do_approve(world, request_id=missing),
            message=f"There is no request #{missing}.")
    refused(world, NotFound, lambda: do_reject(world, request_id=missing),
            message=f"There is no request #{missing}.")
    refused(world, NotFound, lambda: do_reverse(world, refund_id=missing),
            message=f"There is no refund with id {missing}.")
    refused(world, NotFound, lambda: do_reverse(world, adjustment_id=missing),
            message=f"There is no adjustment with id {missing}.")
    refused(world, NotFound, lambda: do_approve(world, request_id="1"))


def test_reversal_needs_exactly_one_target(world: Case) -> None:
    adjustment_id = world.adjustment_id
    refused(world, InvalidInput, lambda: do_reverse(world, refund_id=None, adjustment_id=None),
            message="Choose one refund or one adjustment to reverse.")
    refused(world, InvalidInput,
            lambda: do_reverse(world, refund_id=adjustment_id, adjustment_id=adjustment_id),
            message="Choose one refund or one adjustment to reverse.")
    refused(world, InvalidInput, lambda: do_reverse(world, adjustment_id=True),
            message="The entry to reverse is not valid.")


def test_charge_of_another_account(world: Case) -> None:
    other = open_account(world.db, world.platform, name="Other", email="o@other.test")
    charge_id = charge(world, 40, account_id=other).charge_id
    refused(world, RuleBroken, lambda: do_refund(world, charge_id=charge_id),
            message=f"Charge {charge_id} belongs to another account (#{other}); refund it "
            "from that account.")


def test_refund_items(world: Case) -> None:
    a, b = world.charge_id, charge(world, 30).charge_id
    refused(world, InvalidInput, lambda: do_refund(
        world, items=[RefundItem(a), RefundItem(b), RefundItem(a, 5)]),
        message=f"Charge {a} is listed twice.")
    refused(world, InvalidInput, lambda: do_refund(world, items=[]),
            message="Choose at least one charge to refund.")
    refused(world, InvalidInput, lambda: do_refund(
        world, items=[RefundItem(n) for n in range(1, 1002)]),
        message="Refund at most 1,000 charges at once.")
    for bad in ("1", True, None):
        refused(world, InvalidInput,
                partial(do_refund, world, items=[RefundItem(bad)]),  # type: ignore[arg-type]
                message="A charge to refund is not valid.")
    # One bad item refuses the whole refund: the good one is not refunded either.
    refused(world, NotFound, lambda: do_refund(world, items=[RefundItem(a), RefundItem(999)]))


# -- who is asking -------------------------------------------------------------------------


def test_deactivated_staff_can_do_nothing(world: Case) -> None:
    for username in ("sam", "fay", "max", "platform"):
        set_staff_active(world.db, world.admin, username=username, active=False)
    calls: list[Callable[[], object]] = [
        lambda: do_refund(world),
        lambda: do_adjust(world),
        lambda: do_approve(world),
        lambda: do_reject(world),
        lambda: do_reverse(world),
        lambda: do_charge(world),
        lambda: do_buy(world),
        lambda: do_open(world),
    ]
    for call in calls:
        text = refused(world, PermissionDenied, call, denied=True)
        assert text.startswith("The staff account '") and text.endswith(
            "' is deactivated; ask an admin to restore it.")
    refused(world, PermissionDenied, lambda: roll_periods(world.db, world.platform),
            denied=True)


def test_roles_without_permission(world: Case) -> None:
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: do_adjust(world, world.support),
         "Adjusting purchased credits needs the finance or admin role."),
        (lambda: do_adjust(world, world.manager),
         "Adjusting purchased credits needs the finance or admin role."),
        (lambda: do_approve(world, world.support),
         "Approving requests needs the finance, manager or admin role."),
        (lambda: do_reject(world, world.support),
         "Approving requests needs the finance, manager or admin role."),
        (lambda: do_reverse(world, world.support),
         "Adjusting purchased credits needs the finance or admin role."),
        (lambda: do_refund(world, world.platform),
         "The system account cannot do this; it is reserved for staff."),
        (lambda: do_charge(world, world.support),
         "Usage is recorded by the ad platform, not by staff."),
        (lambda: do_buy(world, world.finance),
         "Customers buy packages through the platform; staff adjust purchased credits "
         "instead."),
        (lambda: do_open(world, world.manager),
         "Opening accounts is for the platform or an admin."),
        (lambda: roll_periods(world.db, world.support, until=world.at(days=40)),
         "Starting new billing periods by hand needs the admin role."),
        (lambda: create_staff(world.db, world.finance, username="x", display_name="X",
                              role="admin"),
         "Adding staff members needs the admin role."),
        (lambda: create_staff(world.db, None, username="x", display_name="X", role="admin"),
         "Only an admin can add staff members."),
        (lambda: set_staff_active(world.db, world.manager, username="sam", active=False),
         "Changing staff members needs the admin role."),
    ]
    for call, message in cases:
        refused(world, PermissionDenied, call, message=message, denied=True)
    rows = fetch(world.db, select(AuditEvent).where(AuditEvent.outcome == "denied")
                 .order_by(AuditEvent.id))
    assert len(rows) == len(cases)
    # The refusal names who tried: support's refused adjustment is signed by support.
    assert (rows[0].actor_id, rows[0].action, rows[0].account_id) == (
        world.support.staff_id, "adjustment", world.account_id)
    assert rows[0].detail == cases[0][1]


def test_a_removed_staff_member_is_refused(world: Case) -> None:
    ghost = Actor(staff_id=999, username="ghost", display_name="Ghost", role=world.admin.role)
    impostor = Actor(staff_id=world.support.staff_id, username="ada",
                     display_name="Ada Admin", role=world.admin.role)
    for actor in (ghost, impostor):
        refused(world, PermissionDenied, partial(do_adjust, world, actor),
                message="Your staff account was not found; please sign in again.", denied=True)
    # The role comes from the database, never from the caller's Actor.
    lying = Actor(world.support.staff_id, "sam", "Sam Support", world.admin.role)
    refused(world, PermissionDenied, lambda: do_adjust(world, lying), denied=True)


def test_naive_times_are_refused(world: Case) -> None:
    message = "Times must carry a time zone."
    calls: list[Callable[[], object]] = [
        lambda: do_refund(world, at=NAIVE),
        lambda: do_adjust(world, at=NAIVE),
        lambda: do_buy(world, at=NAIVE),
        lambda: do_charge(world, occurred_at=NAIVE),
        lambda: do_approve(world, at=NAIVE),
        lambda: do_reject(world, at=NAIVE),
        lambda: do_reverse(world, at=NAIVE),
        lambda: do_open(world, created_at=NAIVE),
        lambda: roll_periods(world.db, world.admin, until=NAIVE),
    ]
    for call in calls:
        refused(world, InvalidInput, call, message=message)


def test_an_idempotency_conflict_writes_nothing(world: Case) -> None:
    do_adjust(world, idempotency_key="same", delta=100)
    refused(world, IdempotencyConflict, lambda: do_adjust(world, idempotency_key="same",
                                                          delta=101))
    # A different kind of change under the same key is a conflict too.
    refused(world, IdempotencyConflict, lambda: do_buy(world, idempotency_key="same"))


# -- unusual text is kept verbatim -----------------------------------------------------------

VERBATIM = [
    "'; DROP TABLE accounts; --",
    'O\'Brien said "refund it" \\ back\\slash',
    "Robert'); DELETE FROM ledger_entries WHERE ('1'='1",
    "🎉 refund ✅ 👩‍👩‍👧 family",
    "تذكرة رقم ٤٤١١ \u200f(عاجل)",
    "עברית mixed with English 123",
    "%s %(name)s {0} $1 ?",
]


def test_unusual_text_is_stored_verbatim(world: Case) -> None:
    for n, value in enumerate(VERBATIM):
        _stored_verbatim(world, value, charge(world, 40).charge_id)
        # The SQL in the text did nothing: every table is still there and whole.
        assert len(fetch(world.db, select(Account.id))) == 2 + n
        assert len(fetch(world.db, select(Staff.id))) == 6


def _stored_verbatim(world: Case, value: str, charge_id: int) -> None:
    note = f"{value}\nsecond line\twith a tab"
    result = do_refund(world, charge_id=charge_id, ticket=value, note=note)
    op = fetch(world.db, select(Operation).where(Operation.id == result.operation_id))[0]
    assert (op.reference, op.note) == (value, note)
    refs = fetch(world.db, select(LedgerEntry.reference).where(
        LedgerEntry.operation_id == result.operation_id))
    assert refs == [value]
    adjusted = do_adjust(world, reference=value, note=value)
    entry = fetch(world.db, select(LedgerEntry).where(
        LedgerEntry.operation_id == adjusted.operation_id))[0]
    assert entry.reference == value
    reversed_ = do_reverse(world, reason=value, reference=value,
                           adjustment_id=adjusted.details["adjustment_id"])
    entry = fetch(world.db, select(LedgerEntry).where(
        LedgerEntry.operation_id == reversed_.operation_id))[0]
    assert (entry.reason, entry.reference) == (f"Reversal: {value}", value)
    opened = do_open(world, name=value)
    name = fetch(world.db, select(Account.name).where(
        Account.id == opened.details["account_id"]))
    assert name == [value]


def test_text_is_trimmed_but_otherwise_kept(world: Case) -> None:
    result = do_refund(world, ticket="  #4411 \n")
    refs = fetch(world.db, select(Operation.reference).where(
        Operation.id == result.operation_id))
    assert refs == ["#4411"]


def test_suspended_or_closed_account_cannot_be_charged(world: Case) -> None:
    for status in ("suspended", "closed"):
        world.db.write(partial(_set_status, status=status))
        refused(world, RuleBroken, lambda: do_charge(world),
                message=f"Account #{world.account_id} is {status}; it cannot be charged.")


def _set_status(session: Session, status: str) -> None:
    session.execute(update(Account).values(status=status))
