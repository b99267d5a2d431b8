"""The work queues (services.worklists) on SQLite and PostgreSQL: unrefunded failed
charges, approval requests, the audit log and its CSV export.

Data comes from the real write services; expectations are worked out from what the
test wrote or straight from the tables, never from the code under test.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from credits_desktop.services.accounts import create_staff
from credits_desktop.services.approvals import approve_request, reject_request
from credits_desktop.services.errors import InvalidInput, PermissionDenied
from credits_desktop.services.paging import Cursor, Page
from credits_desktop.services.worklists import (
    AUDIT_CSV_COLUMNS,
    audit_actions,
    audit_page,
    export_audit_csv,
    failed_charges_page,
    requests_page,
)
from credits_desktop.store.models import AuditEvent

from .factories import (
    World,
    adjust,
    charge,
    fetch,
    key,
    open_account,
    refund,
    refund_id_of,
    request_row,
    reverse_refund,
    rows,
)

T = TypeVar("T")


def collect(read: Callable[..., Page[T]], limit: int, **filters: Any) -> list[T]:
    """Every row of a list, read ``limit`` at a time."""
    got: list[T] = []
    after: Cursor | None = None
    while True:
        page = read(after=after, limit=limit, **filters)
        assert len(page.rows) <= limit
        got.extend(page.rows)
        if page.next_cursor is None:
            return got
        after = page.next_cursor


# -- failed charges ----------------------------------------------------------------


def test_failed_charges_lists_exactly_the_unrefunded_ones(world: World) -> None:
    other = open_account(world.db, world.platform, name="Beta Shop", email="hi@beta.test")
    w = world
    open_1 = charge(w, 40, at=w.at(hours=1), model="imagen-ultra").charge_id
    charge(w, 0, at=w.at(hours=2))  # cost nothing
    charge(w, 30, status="succeeded", at=w.at(hours=3))
    refunded = charge(w, 20, at=w.at(hours=4)).charge_id
    reversed_ = charge(w, 10, at=w.at(hours=5)).charge_id
    open_2 = charge(w, 25, at=w.at(hours=6), account_id=other, model="flux-fast",
                    feature_code="url_brief").charge_id
    # Two at the same moment: the id breaks the tie, and paging splits them.
    tie_a = charge(w, 5, at=w.at(hours=7), account_id=other).charge_id
    tie_b = charge(w, 6, at=w.at(hours=7)).charge_id
    refund(w, w.support, refunded)
    refund(w, w.support, reversed_)
    # A reversed refund is still the charge's one refund: the charge stays handled.
    reverse_refund(w, w.finance, refund_id_of(w, reversed_))

    listed = collect(lambda **k: failed_charges_page(w.db, **k), 1)
    assert [f.id for f in listed] == [max(tie_a, tie_b), min(tie_a, tie_b), open_2, open_1]
    first = next(f for f in listed if f.id == open_2)
    assert (first.account_id, first.account_name) == (other, "Beta Shop")
    c = first.charge
    name = rows(w.db, "SELECT name FROM features WHERE code = 'url_brief'")[0][0]
    assert (c.feature_code, c.feature_name, c.model, c.credits, c.status) == (
        "url_brief", name, "flux-fast", 25, "failed")
    assert c.failure_reason == "timeout" and c.refund_id is None
    assert c.occurred_at == w.at(hours=6)


def test_failed_charges_filters(world: World) -> None:
    w = world
    imagen = charge(w, 40, at=w.at(hours=1), model="Imagen-Ultra").charge_id
    flux = charge(w, 25, at=w.at(hours=2), model="flux-fast").charge_id
    brief = charge(w, 8, at=w.at(hours=3), feature_code="url_brief").charge_id

    def ids(**filters: Any) -> list[int]:
        return [f.id for f in collect(lambda **k: failed_charges_page(w.db, **k), 2,
                                      **filters)]

    assert ids(feature="ad_image") == [flux, imagen]
    assert ids(feature="url_brief") == [brief]
    # The start of the model's name, whatever its case; LIKE wildcards are plain text.
    assert ids(model="imagen") == [imagen]
    assert ids(model="  FLUX-") == [flux]
    assert ids(model="%") == [] and ids(model="_lux") == []
    assert ids(model="") == [brief, flux, imagen]  # empty: no filter
    assert ids(since=w.at(hours=2)) == [brief, flux]
    assert ids(until=w.at(hours=2)) == [imagen]
    assert ids(since=w.at(hours=1), until=w.at(hours=3), feature="ad_image") == [flux, imagen]


def test_failed_charges_refuses_bad_input(world: World) -> None:
    w = world
    charge(w, 40)
    charge(w, 40)
    page = failed_charges_page(w.db, limit=1)
    assert page.next_cursor is not None
    with pytest.raises(InvalidInput, match="another list"):
        requests_page(w.db, after=page.next_cursor)
    with pytest.raises(InvalidInput, match="time zone"):
        failed_charges_page(w.db, since=w.at().replace(tzinfo=None))
    with pytest.raises(InvalidInput, match="page size"):
        failed_charges_page(w.db, limit=0)


# -- approval requests -------------------------------------------------------------


def _three_requests(w: World) -> tuple[int, int, int]:
    """A support refund of a charge that did not fail, a finance removal of more
    purchased credits than the limit, and a support refund above the limit."""
    ok = charge(w, 40, status="succeeded", at=w.at(hours=1)).charge_id
    r1 = refund(w, w.support, ok, ticket="#1", at=w.at(days=1)).request_id
    r2 = adjust(w, w.finance, -1_500, at=w.at(days=1, hours=1), reason_code="correction",
                reference="COR-9").request_id
    big = charge(w, 600, at=w.at(hours=2)).charge_id
    r3 = refund(w, w.support, big, ticket="#3", at=w.at(days=1, hours=2)).request_id
    assert r1 is not None and r2 is not None and r3 is not None
    return r1, r2, r3


def test_requests_newest_first_with_who_what_and_why(world: World) -> None:
    w = world
    r1, r2, r3 = _three_requests(w)
    listed = collect(lambda **k: requests_page(w.db, **k), 1)
    assert [r.id for r in listed] == [r3, r2, r1]
    by_id = {r.id: r for r in listed}
    first = by_id[r1]
    assert (first.kind, first.account_id, first.account_name, first.credits, first.effect) == (
        "refund", w.account_id, "Acme Ads", 40, 40)
    assert first.requested_by == w.support.staff_id
    assert first.requested_by_name == "Sam Support"
    assert first.requested_at == w.at(days=1)
    assert first.why == (
        "Refunding a charge that did not fail needs approval by a finance, manager or "
        "admin colleague.")
    assert first.summary == "Refund 40 credits on 1 charge(s), ticket #1"
    assert first.reference == "#1" and first.status == "pending"
    assert first.decided_by is None and first.decided_by_name is None
    removal = by_id[r2]
    assert (removal.kind, removal.credits, removal.effect, removal.reference) == (
        "adjustment", 1_500, -1_500, "COR-9")
    assert removal.why.startswith("Adjustments above 1,000 credits need approval")
    assert by_id[r3].why.startswith("Refunds above 500 credits need approval")


def test_request_outcomes_and_filters(world: World) -> None:
    w = world
    r1, r2, r3 = _three_requests(w)
    approved = approve_request(w.db, w.manager, request_id=r1, idempotency_key=key(),
                               comment="Fine", at=w.at(days=2))
    assert approved.status == "applied"
    rejected = reject_request(w.db, w.finance, request_id=r3, comment="Not a failure",
                              idempotency_key=key(), at=w.at(days=2, hours=1))
    assert rejected.status == "rejected"
    # The account has 500 purchased credits: removing 1,500 cannot be applied.
    failed = approve_request(w.db, w.admin, request_id=r2, idempotency_key=key(),
                             at=w.at(days=2, hours=2))
    assert failed.status == "failed"

    by_id = {r.id: r for r in collect(lambda **k: requests_page(w.db, **k), 10)}
    assert (by_id[r1].status, by_id[r1].decided_by_name, by_id[r1].comment) == (
        "approved", "Max Manager", "Fine")
    assert by_id[r1].decided_at == w.at(days=2)
    assert (by_id[r3].status, by_id[r3].decided_by, by_id[r3].comment) == (
        "rejected", w.finance.staff_id, "Not a failure")
    assert by_id[r2].status == "failed"
    assert by_id[r2].failure_reason == request_row(w, r2).failure_reason
    assert by_id[r2].failure_reason

    def ids(**filters: Any) -> list[int]:
        return [r.id for r in collect(lambda **k: requests_page(w.db, **k), 1, **filters)]

    assert ids(status="approved") == [r1]
    assert ids(status="rejected") == [r3]
    assert ids(status="failed") == [r2]
    assert ids(status="pending") == []
    assert ids(requested_by=w.support.staff_id) == [r3, r1]
    assert ids(requested_by=w.finance.staff_id, status="failed") == [r2]
    with pytest.raises(InvalidInput, match="status is one of"):
        requests_page(w.db, status="waiting")


def test_own_request_cannot_be_approved_and_stays_pending(world: World) -> None:
    w = world
    _r1, r2, _r3 = _three_requests(w)
    row = next(r for r in requests_page(w.db).rows if r.id == r2)
    assert row.requested_by == w.finance.staff_id  # what the screen compares
    with pytest.raises(PermissionDenied, match=r"^You cannot approve your own request\.$"):
        approve_request(w.db, w.finance, request_id=r2, idempotency_key=key())
    with pytest.raises(PermissionDenied, match="Approving requests needs the finance"):
        approve_request(w.db, w.support, request_id=r2, idempotency_key=key())
    assert [r.status for r in requests_page(w.db).rows if r.id == r2] == ["pending"]


# -- audit log ---------------------------------------------------------------------


def _audit_ids(w: World, **where: Any) -> list[int]:
    """The ids of the audit events, newest first, straight from the table."""
    stmt = select(AuditEvent.id).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    for name, value in where.items():
        stmt = stmt.where(getattr(AuditEvent, name) == value)
    return list(fetch(w.db, stmt))


def test_audit_page_filters_and_pages(world: World) -> None:
    w = world
    other = open_account(w.db, w.platform, name="Beta Shop", email="hi@beta.test")
    c = charge(w, 40).charge_id
    refund(w, w.support, c, at=w.at(days=1))
    adjust(w, w.finance, 100, at=w.at(days=2))
    with pytest.raises(PermissionDenied):
        adjust(w, w.support, 100, at=w.at(days=3))  # refused, and audited

    def ids(**filters: Any) -> list[int]:
        return [a.id for a in collect(lambda **k: audit_page(w.db, **k), 2, **filters)]

    assert ids() == _audit_ids(w)
    assert ids(staff_id=w.support.staff_id) == _audit_ids(w, actor_id=w.support.staff_id)
    assert len(ids(staff_id=w.support.staff_id)) == 2
    assert ids(action="adjustment") == _audit_ids(w, action="adjustment")
    assert ids(account_id=other) == _audit_ids(w, account_id=other) != []
    # The refund (day 1) and the adjustment (day 2); the refusal on day 3 is out.
    window = ids(since=w.at(days=1), until=w.at(days=3))
    assert window == _audit_ids(w, action="adjustment", actor_id=w.finance.staff_id) + \
        _audit_ids(w, action="refund")
    denied = audit_page(w.db, staff_id=w.support.staff_id, action="adjustment").rows
    assert [(a.outcome, a.staff_name, a.account_name) for a in denied] == [
        ("denied", "Sam Support", "Acme Ads")]
    assert "finance or admin" in denied[0].detail
    assert ids(action="nothing like it") == []
    assert {"adjustment", "create_account", "refund"} <= set(audit_actions(w.db))
    assert audit_actions(w.db) == sorted(set(audit_actions(w.db)))


def test_audit_time_window(world: World) -> None:
    w = world
    c1, c2 = charge(w, 40).charge_id, charge(w, 30).charge_id
    refund(w, w.support, c1, at=w.at(days=1))
    refund(w, w.support, c2, at=w.at(days=2))
    window = audit_page(w.db, action="refund", since=w.at(days=1), until=w.at(days=2)).rows
    assert [a.at for a in window] == [w.at(days=1)]
    assert [a.at for a in audit_page(w.db, action="refund", since=w.at(days=1)).rows] == [
        w.at(days=2), w.at(days=1)]


# -- audit export ------------------------------------------------------------------


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty folder for exports (the SQLite database lives in ``tmp_path``)."""
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def test_export_is_refused_for_support_and_audited(world: World, out: Path) -> None:
    w = world
    target = out / "audit.csv"
    before = len(_audit_ids(w, action="export"))
    with pytest.raises(PermissionDenied) as refused:
        export_audit_csv(w.db, w.support, target)
    assert refused.value.message == "Exports need the finance, manager or admin role."
    assert not target.exists() and list(out.iterdir()) == []
    events = audit_page(w.db, action="export").rows
    assert len(events) == before + 1
    assert (events[0].outcome, events[0].staff_id) == ("denied", w.support.staff_id)


def test_export_writes_every_matching_event_and_is_audited(
    world: World, out: Path
) -> None:
    w = world
    # A name a spreadsheet would run as a formula, and text with quotes and emoji.
    tricky = create_staff(w.db, w.admin, username="eve",
                          display_name='=HYPERLINK("x"), 🚀', role="finance")
    c = charge(w, 40).charge_id
    refund(w, w.support, c, at=w.at(days=1))
    adjust(w, tricky, 100, at=w.at(days=2))
    expected = collect(lambda **k: audit_page(w.db, **k), 500)
    target = out / "audit.csv"
    seen: list[int] = []

    result = export_audit_csv(w.db, w.finance, target, batch_size=2, progress=seen.append)

    assert result.rows == len(expected) and result.path == target
    assert seen[-1] == len(expected) and seen == sorted(seen)
    table = _read_csv(target)
    assert tuple(table[0]) == AUDIT_CSV_COLUMNS
    assert [int(r[0]) for r in table[1:]] == [a.id for a in expected]
    by_id = {int(r[0]): r for r in table[1:]}
    for a in expected:
        line = by_id[a.id]
        assert line[4] == a.action and line[5] == a.outcome
        assert line[1] == a.at.isoformat(timespec="seconds")
        assert line[6] == ("" if a.account_id is None else str(a.account_id))
        if a.staff_name != tricky.display_name:
            assert line[3] == (a.staff_name or "")
        assert line[9] == a.detail
    assert sum(r[3] == "'=HYPERLINK(\"x\"), 🚀" for r in table[1:]) == 1
    # Nothing is left beside the file.
    assert [p.name for p in out.iterdir()] == ["audit.csv"]
    # The export itself is on record, after the rows it exported.
    last = audit_page(w.db, action="export").rows[0]
    assert (last.outcome, last.staff_id) == ("applied", w.finance.staff_id)
    assert last.detail == f"Exported {len(expected)} audit events to audit.csv."
    assert last.id not in by_id


def test_export_with_filters(world: World, out: Path) -> None:
    w = world
    c1, c2 = charge(w, 40).charge_id, charge(w, 30).charge_id
    refund(w, w.support, c1, at=w.at(days=1))
    refund(w, w.support, c2, at=w.at(days=2))
    target = out / "refunds.csv"
    done = export_audit_csv(w.db, w.manager, target, action="refund",
                            staff_id=w.support.staff_id, account_id=w.account_id,
                            since=w.at(days=2))
    assert done.rows == 1
    table = _read_csv(target)
    assert [r[1] for r in table[1:]] == [w.at(days=2).isoformat(timespec="seconds")]
    last = audit_page(w.db, action="export").rows[0]
    assert last.account_id == w.account_id
    assert last.detail.startswith("Exported 1 audit event to refunds.csv (staff #")


def test_export_to_a_missing_folder_says_so_and_writes_nothing(
    world: World, out: Path
) -> None:
    w = world
    with pytest.raises(InvalidInput, match="does not exist"):
        export_audit_csv(w.db, w.finance, out / "nowhere" / "audit.csv")
    with pytest.raises(InvalidInput, match="is a folder"):
        export_audit_csv(w.db, w.finance, out)
    assert _audit_ids(w, action="export") == []
