"""Incident (bulk) refunds on a real database (SQLite and PostgreSQL).

The scenario: image generation failed between 10:00 and 12:00 UTC on 10 Jan 2026
for five accounts. The run must refund each failed, still-charged image charge of
that window exactly once, whether run once, twice, cancelled half way and run
again, or raced by someone refunding a charge by hand; and touch nothing else.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import only_on
from sqlalchemy import bindparam, event, func, select, text

from credits_desktop.services.accounts import set_staff_active
from credits_desktop.services.errors import InvalidInput, PermissionDenied
from credits_desktop.services.incidents import (
    CSV_COLUMNS,
    IncidentScope,
    incident_key,
    preview_incident,
    run_incident,
    write_incident_csv,
)
from credits_desktop.services.purchases import buy_package
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    ApprovalRequest,
    AuditEvent,
    Operation,
    Refund,
    UsageCharge,
)
from credits_desktop.store.types import UTCDateTime

from .factories import (
    T0,
    World,
    assert_invariants,
    assert_nothing_written,
    assert_plain_sentence,
    balances,
    charge,
    denied_audits,
    fetch,
    grants_of,
    key,
    ledger_of,
    open_account,
    refund,
)
from .pg_logins import staff_logins

START = datetime(2026, 1, 10, 10, 0, tzinfo=UTC)
END = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
RUN_AT = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
# After the January period: the charges' plan grants have expired (their credits come back
# as new refund grants) and each account rolls into February on the way.
LATE = datetime(2026, 2, 5, 9, 0, tzinfo=UTC)
FEB_START = datetime(2026, 2, 1, tzinfo=UTC)
SCOPE = IncidentScope("ad_image", None, START, END)


@dataclass(frozen=True)
class Outage:
    """The charges of the scenario: by account, those the incident covers."""

    accounts: list[int]
    in_scope: dict[int, list[int]]  # account id -> charge ids, in id order
    credits: dict[int, int]  # charge id -> cost
    others: list[int]  # charges that must be left alone

    @property
    def ids(self) -> set[int]:
        return {c for ids in self.in_scope.values() for c in ids}

    @property
    def total(self) -> int:
        return sum(self.credits[c] for c in self.ids)


def _outage(world: World) -> Outage:
    """Five accounts: Acme (1,000 credits) with nine failed 60-credit images, four
    Starter accounts with six failed images each (25, 40, 60 twice), and around them
    charges the incident must not touch."""
    extra = [
        open_account(world.db, world.platform, name=f"Outage {i}", email=f"o{i}@x.test")
        for i in range(4)
    ]
    accounts = [world.account_id, *extra]
    in_scope: dict[int, list[int]] = {a: [] for a in accounts}
    credits: dict[int, int] = {}
    step = timedelta(minutes=10)

    def add(account: int, cost: int, model: str | None, at: datetime) -> None:
        c = charge(world, cost, account_id=account, model=model, at=at)
        in_scope[account].append(c.charge_id)
        credits[c.charge_id] = cost

    for i in range(9):
        # The first one exactly at the start: the window includes its start.
        add(world.account_id, 60, "imagen-ultra", START + i * step)
    for account in extra:
        for i, (cost, model) in enumerate(
            [(25, "flux-fast"), (40, None), (60, "imagen-ultra")] * 2
        ):
            add(account, cost, model, START + (i + 1) * step)
    a = extra[0]
    others = [
        charge(world, 40, account_id=a, at=END).charge_id,  # the end is excluded
        charge(world, 40, account_id=a, at=START - timedelta(minutes=1)).charge_id,
        charge(world, 40, account_id=a, status="succeeded", at=START + step).charge_id,
        charge(world, 0, account_id=a, at=START + step).charge_id,  # cost nothing
        charge(world, 15, account_id=a, feature_code="video_script",
               at=START + step).charge_id,
    ]
    return Outage(accounts, in_scope, credits, others)


def _refunds(world: World) -> list[Refund]:
    return fetch(world.db, select(Refund).order_by(Refund.charge_id))


def _count(world: World, model: Any) -> int:
    return int(world.db.read(
        lambda s: s.scalar(select(func.count()).select_from(model))) or 0)


def _direct_count(world: World, start: datetime, end: datetime,
                  model: str | None = None) -> tuple[int, int, int]:
    """The preview's figures by hand-written SQL, as a second opinion."""
    sql = (
        "SELECT count(*), count(DISTINCT c.account_id), coalesce(sum(c.credits), 0) "
        "FROM usage_charges c WHERE c.feature_code = 'ad_image' AND c.status = 'failed' "
        "AND c.credits > 0 AND c.occurred_at >= :s AND c.occurred_at < :e "
        "AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.charge_id = c.id)"
    )
    if model is not None:
        sql += " AND c.model = :m"
    stmt = text(sql).bindparams(bindparam("s", type_=UTCDateTime()),
                                bindparam("e", type_=UTCDateTime()))
    params: dict[str, Any] = {"s": start, "e": end}
    if model is not None:
        params["m"] = model
    row = world.db.read(lambda s: s.execute(stmt, params).one())
    return int(row[0]), int(row[1]), int(row[2])


# -- the scope ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (END, START, "The end of the window must be after its start."),
        (START, START, "The end of the window must be after its start."),
        (START, START + timedelta(days=93), "An incident window can be at most 92 days long."),
        (START.replace(tzinfo=None), END, "The start of the window must carry a time zone."),
    ],
)
def test_a_bad_window_is_refused_in_words(start: datetime, end: datetime,
                                          message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        IncidentScope("ad_image", None, start, end)
    assert caught.value.message == message


def test_scope_keeps_utc_and_trims_the_model() -> None:
    paris = timezone(timedelta(hours=1))
    scope = IncidentScope(" ad_image ", "  ", START.astimezone(paris), END.astimezone(paris))
    assert scope.start == START and scope.start.tzinfo is UTC
    assert scope.feature_code == "ad_image" and scope.model is None
    assert scope.describe() == (
        "failed ad_image charges from 2026-01-10 10:00 to 2026-01-10 12:00 UTC"
    )


# -- preview --------------------------------------------------------------------------


def test_preview_counts_what_a_direct_sql_count_finds_and_writes_nothing(
    world: World
) -> None:
    outage = _outage(world)
    # One of them was refunded before the incident was noticed: not in scope any more.
    first = outage.in_scope[outage.accounts[1]][0]
    refund(world, world.support, first, account_id=outage.accounts[1], at=RUN_AT)
    with assert_nothing_written(world.db):
        preview = preview_incident(world.db, world.finance, SCOPE, sample=5)
    expected = _direct_count(world, START, END)
    assert (preview.charges, preview.accounts, preview.credits) == expected
    assert expected == (len(outage.ids) - 1, 5, outage.total - outage.credits[first])
    # The sample: the oldest first (then by id), with the account's name. At 10:10
    # come Acme's second charge and the first of each other account but the refunded.
    assert [r.charge_id for r in preview.sample] == outage.in_scope[world.account_id][:2] + [
        outage.in_scope[a][0] for a in outage.accounts[2:]
    ]
    assert preview.sample[0].account_name == "Acme Ads"
    assert preview.sample[0].occurred_at == START


def test_preview_of_one_model_only(world: World) -> None:
    _outage(world)
    scope = IncidentScope("ad_image", "imagen-ultra", START, END)
    preview = preview_incident(world.db, world.manager, scope, sample=0)
    assert (preview.charges, preview.accounts, preview.credits) == _direct_count(
        world, START, END, "imagen-ultra")
    assert preview.charges == 9 + 4 * 2 and preview.sample == ()


def test_preview_of_an_unknown_feature_is_refused(world: World) -> None:
    with pytest.raises(InvalidInput) as caught:
        preview_incident(world.db, world.finance, IncidentScope("teleport", None, START, END))
    assert caught.value.message == "There is no feature 'teleport'."


# -- the run --------------------------------------------------------------------------


def test_run_refunds_every_charge_in_scope_exactly_once(world: World) -> None:
    outage = _outage(world)
    before = {a: balances(world.db, a) for a in outage.accounts}
    seen: list[tuple[int, int]] = []
    # Batches of at most 8 charges of whole accounts: Acme's nine take 8, then its
    # last one goes with the six of the next account; then one account per batch.
    summary = run_incident(world.db, world.manager, SCOPE, incident_ref="INC-42",
                           batch_size=8, progress=lambda d, t: seen.append((d, t)),
                           at=RUN_AT)
    refunds = _refunds(world)
    assert [r.charge_id for r in refunds] == sorted(outage.ids)
    assert all(r.credits == outage.credits[r.charge_id] for r in refunds)
    assert {r.reason_code for r in refunds} == {"failed_generation"}
    assert (summary.charges_refunded, summary.accounts, summary.credits) == (
        len(outage.ids), 5, outage.total)
    assert (summary.skipped, summary.failed, summary.cancelled) == (0, 0, False)
    assert summary.complete and summary.stopped_by is None
    assert sorted(r.charge_id for r in summary.rows) == sorted(outage.ids)
    # Progress: from 0 to the total, a step per batch.
    assert seen == [(0, 33), (8, 33), (15, 33), (21, 33), (27, 33), (33, 33)]
    # Every credit went back: the accounts hold what they held plus their refunds.
    for a in outage.accounts:
        gained = sum(outage.credits[c] for c in outage.in_scope[a])
        after = balances(world.db, a)
        assert after.total == before[a].total + gained
        assert after.unrefunded_failed == before[a].unrefunded_failed - len(outage.in_scope[a])
    # The charges around the window are untouched.
    assert not {r.charge_id for r in refunds} & set(outage.others)
    # One operation per batch, each with the reference and the scope.
    ops = fetch(world.db, select(Operation).where(Operation.kind == "incident_refund")
                .order_by(Operation.id))
    assert [o.id for o in ops] == list(summary.operation_ids)
    assert [o.account_id for o in ops] == [outage.accounts[0], None, *outage.accounts[2:]]
    assert {o.reference for o in ops} == {"INC-42"}
    assert all("ad_image" in (o.note or "") and "2026-01-10 10:00" in (o.note or "")
               for o in ops)
    # Audit: each batch, each account of the two-account batch, and the run as a whole.
    audits = fetch(world.db, select(AuditEvent).where(AuditEvent.action == "incident_refund"))
    assert {e.outcome for e in audits} == {"applied"}
    per_account = sorted((e.account_id or 0) for e in audits if e.operation_id == ops[1].id)
    assert per_account == [0, *outage.accounts[:2]]
    whole = [e for e in audits if e.operation_id is None]
    assert len(audits) == 5 + 2 + 1
    assert len(whole) == 1 and "Refunded 33 charge(s)" in whole[0].detail
    assert_invariants(world.db, full=True)


def test_running_twice_refunds_nothing_the_second_time_and_asks_no_approval(
    world: World
) -> None:
    outage = _outage(world)
    # Finance's refund limit is 500 credits; Acme's 540 in one batch still applies at
    # once: an incident refund is not a per-account refund request.
    first = run_incident(world.db, world.finance, SCOPE, incident_ref="INC-7", at=RUN_AT)
    assert first.charges_refunded == len(outage.ids) and first.credits == outage.total
    assert _count(world, ApprovalRequest) == 0
    counts = (_count(world, Refund), _count(world, Operation))
    again = run_incident(world.db, world.finance, SCOPE, incident_ref="INC-7",
                         at=RUN_AT + timedelta(hours=1))
    assert (again.total, again.charges_refunded, again.credits, again.rows) == (0, 0, 0, ())
    assert again.complete
    assert (_count(world, Refund), _count(world, Operation)) == counts
    assert preview_incident(world.db, world.finance, SCOPE).charges == 0


def test_cancelled_run_stops_after_the_batch_and_a_rerun_finishes(world: World) -> None:
    outage = _outage(world)
    asked: list[bool] = []

    def cancelled() -> bool:
        asked.append(True)
        return len(asked) > 1  # Cancel pressed while the first batch ran

    first = run_incident(world.db, world.admin, SCOPE, incident_ref="INC-9", batch_size=4,
                         cancelled=cancelled, at=RUN_AT)
    assert first.cancelled and not first.complete
    assert first.charges_refunded == 4 and len(_refunds(world)) == 4
    assert first.text().startswith("Cancelled after 4 of 33 charge(s).")
    assert "Run it again" in first.text()
    audit = fetch(world.db, select(AuditEvent.outcome).where(
        AuditEvent.action == "incident_refund", AuditEvent.operation_id.is_(None)))
    assert audit == ["cancelled"]

    rest = run_incident(world.db, world.admin, SCOPE, incident_ref="INC-9", batch_size=4,
                        at=RUN_AT + timedelta(minutes=5))
    assert rest.total == len(outage.ids) - 4 and rest.charges_refunded == rest.total
    refunds = _refunds(world)
    assert [r.charge_id for r in refunds] == sorted(outage.ids)  # each exactly once
    assert sum(r.credits for r in refunds) == outage.total
    assert_invariants(world.db, full=True)


def test_charges_refunded_by_someone_else_during_the_run_are_skipped(world: World) -> None:
    outage = _outage(world)
    preview = preview_incident(world.db, world.finance, SCOPE)
    last, before_last = outage.accounts[-1], outage.accounts[-2]
    by_hand: list[int] = []

    def meanwhile(done: int, total: int) -> None:
        # Once the run has listed its charges, support refunds one charge of an
        # account the run reaches later, and both charges of a later batch.
        if done == 0:
            one = outage.in_scope[before_last][0]
            batch = outage.in_scope[last][4:]
            refund(world, world.support, one, account_id=before_last, at=RUN_AT)
            refund(world, world.support, *batch, account_id=last, at=RUN_AT)
            by_hand.extend([one, *batch])

    summary = run_incident(world.db, world.finance, SCOPE, incident_ref="INC-3",
                           batch_size=4, progress=meanwhile, at=RUN_AT)
    assert preview.charges == summary.total == len(outage.ids)
    assert summary.skipped == 3 and summary.failed == 0 and summary.complete
    assert summary.charges_refunded == len(outage.ids) - 3
    assert "3 charge(s) had been refunded meanwhile" in summary.text()
    refunds = _refunds(world)
    assert [r.charge_id for r in refunds] == sorted(outage.ids)
    hand_ops = {r.operation_id for r in refunds if r.charge_id in by_hand}
    assert not hand_ops & set(summary.operation_ids)
    assert not {r.charge_id for r in summary.rows} & set(by_hand)


def test_a_concurrent_run_of_the_same_incident_applies_each_batch_once(world: World) -> None:
    outage = _outage(world)
    inner: list[Any] = []

    def race(done: int, total: int) -> None:
        if done == 0 and not inner:
            # A colleague runs the same incident at the same moment: same batches,
            # same keys. The outer run gets each batch's stored answer.
            inner.append(run_incident(world.db, world.manager, SCOPE, incident_ref="INC-5",
                                      at=RUN_AT))

    outer = run_incident(world.db, world.manager, SCOPE, incident_ref="INC-5",
                         progress=race, at=RUN_AT)
    assert [r.charge_id for r in _refunds(world)] == sorted(outage.ids)
    assert outer.operation_ids == inner[0].operation_ids
    assert outer.credits == inner[0].credits == outage.total
    key = incident_key("incident", "INC-5", [(1, [2, 3]), (4, [9])])
    assert key == incident_key("incident", "INC-5", [(4, [9]), (1, [3, 2])])
    assert key != incident_key("incident", "INC-6", [(1, [2, 3]), (4, [9])])
    assert key != incident_key("incident", "INC-5", [(1, [2, 3])])
    assert len(incident_key("p" * 40, "I" * 100, [(2**31 - 1, [1])])) <= 100


def test_support_may_not_preview_or_run_and_nothing_is_written(world: World) -> None:
    _outage(world)
    denied = denied_audits(world.db)
    with assert_nothing_written(world.db):
        with pytest.raises(PermissionDenied) as caught:
            preview_incident(world.db, world.support, SCOPE)
        assert caught.value.message == (
            "Incident refunds need the finance, manager or admin role.")
        with pytest.raises(PermissionDenied) as caught:
            run_incident(world.db, world.support, SCOPE, incident_ref="INC-1", at=RUN_AT)
        assert_plain_sentence(caught.value.message)
    assert denied_audits(world.db) == denied + 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"incident_ref": "  "}, "An incident reference is required."),
        ({"incident_ref": "I" * 101},
         "An incident reference is too long: at most 100 characters."),
        ({"incident_ref": "INC", "batch_size": 0}, "A batch holds 1 to 1,000 charges."),
    ],
)
def test_bad_run_input_is_refused_and_writes_nothing(
    world: World, options: dict[str, Any], message: str
) -> None:
    charge(world, 40, at=START)
    with assert_nothing_written(world.db), pytest.raises(InvalidInput) as caught:
        run_incident(world.db, world.finance, SCOPE, at=RUN_AT, **options)
    assert caught.value.message == message


def test_reference_is_stored_verbatim(world: World) -> None:
    _outage(world)
    ref = "INC-'; DROP TABLE refunds; -- 🔥"
    summary = run_incident(world.db, world.finance, SCOPE, incident_ref=ref, at=RUN_AT)
    refs = fetch(world.db, select(Operation.reference).where(
        Operation.id.in_(summary.operation_ids)))
    assert set(refs) == {ref}


def test_csv_lists_what_was_refunded(world: World, tmp_path: Path) -> None:
    outage = _outage(world)
    summary = run_incident(world.db, world.finance, SCOPE, incident_ref="INC-8",
                           batch_size=5, at=RUN_AT)
    path = tmp_path / "incident.csv"
    assert write_incident_csv(summary, path) == len(outage.ids)
    with path.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert tuple(lines[0]) == CSV_COLUMNS
    assert sorted(int(r["charge_id"]) for r in lines) == sorted(outage.ids)
    assert sum(int(r["credits_refunded"]) for r in lines) == summary.credits == outage.total
    refunds = {r.charge_id: r for r in _refunds(world)}
    for r in lines:
        stored = refunds[int(r["charge_id"])]
        assert int(r["operation_id"]) == stored.operation_id
        assert int(r["account_id"]) == stored.account_id
    acme = [r for r in lines if int(r["account_id"]) == world.account_id]
    assert acme[0]["account_name"] == "Acme Ads" and acme[0]["model"] == "imagen-ultra"
    assert acme[0]["occurred_at_utc"] == "2026-01-10 10:00:00"
    assert acme[0]["feature_code"] == "ad_image"
    charged = fetch(world.db, select(UsageCharge.id).where(UsageCharge.model.is_(None),
                                                           UsageCharge.id.in_(outage.ids)))
    assert all(r["model"] == "" for r in lines if int(r["charge_id"]) in charged)


def test_csv_to_an_unwritable_place_says_so(world: World, tmp_path: Path) -> None:
    _outage(world)
    summary = run_incident(world.db, world.finance, SCOPE, incident_ref="INC-8", at=RUN_AT)
    with pytest.raises(InvalidInput) as caught:
        write_incident_csv(summary, tmp_path / "missing" / "x.csv")
    assert caught.value.message == f"The folder '{tmp_path / 'missing'}' does not exist."


def test_a_run_whose_staff_member_is_deactivated_stops_with_what_is_done(
    world: World
) -> None:
    outage = _outage(world)

    def deactivate(done: int, total: int) -> None:
        if done == 8:  # after the first batch, an admin switches the runner off
            set_staff_active(world.db, world.admin, username="fay", active=False)

    summary = run_incident(world.db, world.finance, SCOPE, incident_ref="INC-11",
                           batch_size=8, progress=deactivate, at=RUN_AT)
    assert summary.charges_refunded == 8 and not summary.complete
    assert summary.stopped_by is not None and "deactivated" in summary.stopped_by
    assert summary.text().startswith("Stopped early: ")
    assert len(_refunds(world)) == 8
    # The same run by a colleague finishes the job, each charge once.
    rest = run_incident(world.db, world.manager, SCOPE, incident_ref="INC-11", at=RUN_AT)
    assert rest.charges_refunded == len(outage.ids) - 8
    assert [r.charge_id for r in _refunds(world)] == sorted(outage.ids)


# -- cost -----------------------------------------------------------------------------


@contextmanager
def _statements(db: Database) -> Iterator[Counter[str]]:
    """The statements sent on ``db``'s write engine meanwhile, by their first three words
    (a statement run with a list of rows counts once: it is sent as one)."""
    sent: Counter[str] = Counter()

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
        sent[" ".join(statement.split()[:3])] += 1

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


SHAPE = [(25, "flux-fast"), (40, None), (60, "imagen-ultra")]


def _failing_accounts(world: World, count: int, feature: str, tag: str, *,
                      buyer: bool = False) -> list[int]:
    """``count`` new accounts alike (Starter, no purchase), each with the failed charges of
    :data:`SHAPE` of ``feature`` in the window. With ``buyer`` the first one bought 500
    credits and used 450 of its plan's 500 before: its failed charges drew from both."""
    ids = [open_account(world.db, world.platform, name=f"{tag} {i}", email=f"{tag}{i}@x.test")
           for i in range(count)]
    if buyer:
        buy_package(world.db, world.platform, account_id=ids[0], package_code="pack_500",
                    payment_reference=key("pay"), idempotency_key=key("buy"), at=T0)
        charge(world, 450, account_id=ids[0], feature_code=feature, status="succeeded",
               at=START - timedelta(minutes=1))
    for account in ids:
        for i, (cost, model) in enumerate(SHAPE):
            charge(world, cost, account_id=account, feature_code=feature, model=model,
                   at=START + timedelta(minutes=10 * (i + 1)))
    return ids


def test_a_batch_costs_a_fixed_number_of_statements_however_many_charges(
    world: World
) -> None:
    # Two incidents, one batch each: 2 accounts (6 charges), then 7 accounts (21
    # charges), alike otherwise. Each account rolls into February on the way and every
    # charge's credits come back as a new refund grant, so every path of a batch runs.
    small = _failing_accounts(world, 2, "video_script", "Small")
    big = _failing_accounts(world, 7, "url_brief", "Big")
    sent: dict[str, Counter[str]] = {}
    for feature, ids in (("video_script", small), ("url_brief", big)):
        scope = IncidentScope(feature, None, START, END)
        with _statements(world.db) as counted:
            summary = run_incident(world.db, world.finance, scope, incident_ref=f"INC-{feature}",
                                   batch_size=1_000, at=LATE)
        assert summary.complete and len(summary.operation_ids) == 1
        assert summary.charges_refunded == len(SHAPE) * len(ids)
        sent[feature] = counted
        for account in ids:
            sources = Counter(g.source for g in grants_of(world.db, account))
            assert sources == {"plan": 2, "refund": len(SHAPE)}
    # SQLite cannot hand back the ids of a multi-row insert in order, so SQLAlchemy
    # inserts new grants there one at a time (in process, no round trip); on
    # PostgreSQL they go in as one statement like every other kind of row.
    grants = "INSERT INTO credit_grants"
    if world.db.is_postgresql:
        assert sent["url_brief"][grants] == sent["video_script"][grants]
    else:
        assert sent["url_brief"][grants] == 7 * 4 and sent["video_script"][grants] == 2 * 4
    for counted in sent.values():
        del counted[grants]
    assert sent["url_brief"] == sent["video_script"]
    # About 30 for the batch, with the run's listing and its closing audit row; the
    # code before batching sent about 14 per charge (~300 here).
    assert sum(sent["url_brief"].values()) <= 35, sorted(sent["url_brief"].items())
    assert_invariants(world.db, full=True)


def _shape_of(world: World, account: int) -> dict[str, Any]:
    """What refunds did to an account, without ids, times of writing or references."""
    grants = grants_of(world.db, account)
    position = {g.id: i for i, g in enumerate(grants)}
    charges = {c: i for i, c in enumerate(fetch(world.db, select(UsageCharge.id).where(
        UsageCharge.account_id == account).order_by(UsageCharge.id)))}
    return {
        "balances": balances(world.db, account),
        "grants": [(g.source, g.granted, g.remaining, g.expires_at, g.period_start)
                   for g in grants],
        "ledger": [(e.kind, e.delta, position[e.grant_id],
                    None if e.charge_id is None else charges[e.charge_id])
                   for e in ledger_of(world.db, account)],
        "refunds": sorted((charges[r.charge_id], r.credits, r.reason_code) for r in fetch(
            world.db, select(Refund).where(Refund.account_id == account))),
    }


def test_a_batch_writes_what_refunding_each_account_on_its_own_writes(world: World) -> None:
    # Accounts alike: three refunded by one incident batch, three by a manager's refund
    # of each account's charges. Run after the period ended (rolls and refund grants),
    # with a purchase on the first of each set (credits back to a live grant too).
    batched = _failing_accounts(world, 3, "video_script", "Batched", buyer=True)
    alone = _failing_accounts(world, 3, "url_brief", "Alone", buyer=True)
    summary = run_incident(world.db, world.manager, IncidentScope("video_script", None, START,
                                                                  END),
                           incident_ref="INC-SAME", batch_size=1_000, at=LATE)
    assert summary.charges_refunded == 9 and len(summary.operation_ids) == 1
    for account in alone:
        ids = fetch(world.db, select(UsageCharge.id).where(
            UsageCharge.account_id == account, UsageCharge.status == "failed"))
        assert refund(world, world.manager, *ids, account_id=account, at=LATE).status == \
            "applied"
    for mine, theirs in zip(batched, alone, strict=True):
        assert _shape_of(world, mine) == _shape_of(world, theirs)
    buyer = _shape_of(world, batched[0])
    assert {(kind, source) for kind, _, g, _ in buyer["ledger"] if kind == "refund"
            for source in [buyer["grants"][g][0]]} == {("refund", "refund"),
                                                        ("refund", "purchase")}
    assert_invariants(world.db, full=True)


@only_on("postgresql")
def test_a_run_as_a_finance_login_passes_the_database_rules(world: World,
                                                            db_url: str) -> None:
    # The batched writes (grants inserted empty and filled, rolls of several accounts in
    # one flush, rows sent in lists) satisfy the rules PostgreSQL holds for staff logins.
    outage = _outage(world)
    with staff_logins(world, db_url) as logins:
        finance = logins.finance
        summary = run_incident(finance.db, finance.actor, SCOPE, incident_ref="INC-DB",
                               batch_size=8, at=LATE)
        assert summary.complete and summary.charges_refunded == len(outage.ids)
    assert [r.charge_id for r in _refunds(world)] == sorted(outage.ids)
    # Every account rolled into February as the system, and got refund grants.
    for account in outage.accounts:
        grants = grants_of(world.db, account)
        assert any(g.period_start == FEB_START for g in grants)
        assert any(g.source == "refund" for g in grants)
    made_by = {e.actor_id for e in fetch(world.db, select(AuditEvent).where(
        AuditEvent.action == "incident_refund"))}
    assert made_by == {finance.actor.staff_id}
    assert_invariants(world.db, full=True)
