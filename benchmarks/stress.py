"""Concurrency stress of the real services on a few hot accounts, then proof that every
rule still holds (issue 6, "concurrency proof").

    python benchmarks/stress.py [--db URL] [--create] [--clients 16] [--seconds 60]
                                [--accounts 5] [--minutes-per-op 15] [--seed 1]
                                [--pgbench] [--pgbench-seconds 60] [--json FILE]

The database (``--db``; default a SQLite file in a new temporary directory) must be empty
or new: it is migrated to head, then given the catalogue, two staff members of every role
(approvals need someone other than the requester), the ad platform (the 'system' role) and
``--accounts`` hot accounts with purchased credits. ``--create`` first drops and creates
the PostgreSQL database named in ``--db``.

Then ``--clients`` processes, each with its own ``Database.open``, run random operations
through the services for ``--seconds``: charges recorded by the platform (some failed),
refunds by random roles (some above the limit or of a charge that did not fail, so they
become requests; some of an already refunded charge, so they are refused), purchased
credit adjustments by finance and admin (+/-, some above the limit), approvals and
rejections of pending requests (by an approver who is not the requester), and period
roll-overs by an admin. Now and then an applied operation is submitted again with the
same idempotency key (a double click), which must answer with the stored result.

Time is simulated: every operation takes its ``at`` from one clock shared by all
processes, advanced by ``--minutes-per-op`` per operation, so billing periods end and are
rolled over during the run (about three months in 60 s on PostgreSQL).

Counted per operation kind: attempts, outcomes (applied, requested, rejected, request
failed, replayed, refused by reason class) and transactions retried after a
serialization failure, deadlock, lock timeout or a busy SQLite file (counted from the
INFO records ``store.engine.run_in_transaction`` logs before each retry).

At the end ``credits-desktop check`` (``services.check.check_database``) must find no
violation, no charge may have two refunds, and the effects of every applied operation
must be in the database and nothing else: the charges, the refund rows per operation,
the adjustment rows per operation, the decided requests and the operations. With
``--pgbench`` a plain conditional ``UPDATE`` on as many hot rows is run by ``pgbench``
with as many clients on the same server, for the ratio of the two rates.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from credits_desktop.services.accounts import create_account, create_staff  # noqa: E402
from credits_desktop.services.adjustments import adjust_purchased  # noqa: E402
from credits_desktop.services.approvals import approve_request, reject_request  # noqa: E402
from credits_desktop.services.catalog import ensure_catalog  # noqa: E402
from credits_desktop.services.charges import record_charge  # noqa: E402
from credits_desktop.services.check import check_database  # noqa: E402
from credits_desktop.services.errors import CreditsDeskError  # noqa: E402
from credits_desktop.services.operations import Actor  # noqa: E402
from credits_desktop.services.periods import roll_periods  # noqa: E402
from credits_desktop.services.purchases import buy_package  # noqa: E402
from credits_desktop.services.refunds import RefundItem, refund_charges  # noqa: E402
from credits_desktop.services.results import ChargeResult, OperationResult  # noqa: E402
from credits_desktop.store.database import Database  # noqa: E402
from credits_desktop.store.engine import make_engine, parse_url  # noqa: E402
from credits_desktop.store.schema import schema_state, upgrade  # noqa: E402

START = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
KINDS = ("charge", "refund", "adjust", "approve", "reject", "roll")
# How often each kind is picked (approve/reject fall back to a charge when nothing waits).
WEIGHTS = {"charge": 42, "refund": 24, "adjust": 14, "approve": 11, "reject": 5, "roll": 4}
DOUBLE_SUBMIT = 0.1
FEATURES = ("ad_image", "video_transcription", "video_script", "url_brief",
            "radar_analysis", "review_mining")
RETRY_MESSAGES = ("retrying transaction after", "integrity conflict, retrying")


@dataclass(frozen=True)
class Options:
    url: str
    clients: int
    seconds: float
    accounts: int = 5
    minutes_per_op: float = 15.0
    seed: int = 1


@dataclass(frozen=True)
class World:
    """What the clients share: staff by role, the hot accounts, and where setup ended."""

    staff: dict[str, list[Actor]]
    platform: Actor
    account_ids: list[int]
    setup_last_operation: int


@dataclass
class KindStats:
    attempts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    retries: int = 0

    def merge(self, other: KindStats) -> None:
        self.attempts += other.attempts
        self.outcomes.update(other.outcomes)
        self.retries += other.retries

    @property
    def applied(self) -> int:
        return self.outcomes["applied"]

    @property
    def refused(self) -> int:
        return sum(n for k, n in self.outcomes.items() if k.startswith("refused"))


@dataclass
class ClientReport:
    """What one client did, and what the database must therefore hold."""

    stats: dict[str, KindStats] = field(default_factory=lambda: {k: KindStats() for k in KINDS})
    charge_ids: list[int] = field(default_factory=list)
    # operation id -> refund rows it wrote (direct refunds; approvals added at the end)
    refund_ops: dict[int, int] = field(default_factory=dict)
    adjustment_ops: list[int] = field(default_factory=list)
    requests_made: list[int] = field(default_factory=list)
    # (operation id, request id) of approvals by outcome: applied / failed; rejections
    approvals: list[tuple[int, int]] = field(default_factory=list)
    failed_approvals: list[tuple[int, int]] = field(default_factory=list)
    rejections: list[tuple[int, int]] = field(default_factory=list)
    operation_ids: set[int] = field(default_factory=set)
    grants_rolled: int = 0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: ClientReport) -> None:
        for kind, s in other.stats.items():
            self.stats[kind].merge(s)
        self.charge_ids += other.charge_ids
        self.refund_ops.update(other.refund_ops)
        self.adjustment_ops += other.adjustment_ops
        self.requests_made += other.requests_made
        self.approvals += other.approvals
        self.failed_approvals += other.failed_approvals
        self.rejections += other.rejections
        self.operation_ids |= other.operation_ids
        self.grants_rolled += other.grants_rolled
        self.errors += other.errors


@dataclass
class StressResult:
    options: Options
    dialect: str
    report: ClientReport
    elapsed: float
    check_text: str
    check_seconds: float
    proofs: dict[str, int]
    problems: list[str]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    simulated_until: datetime

    @property
    def attempts(self) -> int:
        return sum(s.attempts for s in self.report.stats.values())

    @property
    def retries(self) -> int:
        return sum(s.retries for s in self.report.stats.values())

    @property
    def ok(self) -> bool:
        return not self.problems


# -- setup ------------------------------------------------------------------------------


def prepare(url: str, accounts: int, seed: int) -> World:
    """Migrate an empty database and seed staff and hot accounts through the services."""
    engine = make_engine(url, pool_size=1)
    try:
        state = schema_state(engine)
        if not state.empty and not state.up_to_date:
            raise SystemExit(f"{url}: the schema is not at head; use an empty database.")
        upgrade(engine)
    finally:
        engine.dispose()
    rng = random.Random(seed)
    db = Database.open(url)
    try:
        has_accounts = db.read(lambda s: s.execute(text("SELECT count(*) FROM accounts"))
                               .scalar())
        if has_accounts:
            raise SystemExit(f"{db.display_url()} already holds accounts; use an empty one.")
        db.write(ensure_catalog)
        admin = create_staff(db, None, username="stress-admin-1", display_name="Ada Admin",
                             role="admin")
        staff: dict[str, list[Actor]] = {"admin": [admin]}
        for role in ("support", "finance", "manager", "admin"):
            while len(staff.setdefault(role, [])) < 2:
                n = len(staff[role]) + 1
                staff[role].append(create_staff(
                    db, admin, username=f"stress-{role}-{n}",
                    display_name=f"{role.title()} {n}", role=role))
        platform = create_staff(db, admin, username="stress-platform",
                                display_name="Ad platform", role="system")
        account_ids = []
        for i in range(accounts):
            result = create_account(
                db, platform, name=f"Hot account {i + 1}", email=f"hot{i + 1}@stress.test",
                plan_code=rng.choice(["growth", "pro"]), billing_day=rng.randint(1, 28),
                idempotency_key=f"stress-open-{i}", created_at=START)
            account_id = result.details["account_id"]
            assert isinstance(account_id, int)
            account_ids.append(account_id)
            buy_package(db, platform, account_id=account_id, package_code="pack_10000",
                        payment_reference=f"PAY-{i}", idempotency_key=f"stress-buy-{i}",
                        at=START)
        last = db.read(lambda s: int(s.execute(text("SELECT max(id) FROM operations"))
                                     .scalar() or 0))
        return World(staff, platform, account_ids, last)
    finally:
        db.close()


def create_pg_database(url: str) -> None:
    """Drop and create the PostgreSQL database named in ``url`` (for ``--create``)."""
    parsed = parse_url(url)
    name = parsed.database
    assert name and parsed.get_backend_name() == "postgresql"
    admin = make_engine(parsed.set(database="postgres"), pool_size=1).execution_options(
        isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


# -- one client -------------------------------------------------------------------------


class RetryCounter(logging.Handler):
    """Counts the retries ``run_in_transaction`` logs, against the operation running."""

    def __init__(self, report: ClientReport) -> None:
        super().__init__(logging.INFO)
        self.report = report
        self.kind = "charge"

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(RETRY_MESSAGES):
            self.report.stats[self.kind].retries += 1


def refusal_class(exc: CreditsDeskError) -> str:
    """``refused: <Error>: <message with numbers as N>``: one class per kind of refusal."""
    message = re.split(r" on | by ", exc.message)[0].rstrip(".")
    message = re.sub(r"'[^']*'", "'…'", re.sub(r"#?\d[\d,]*", "N", message))
    return f"refused: {type(exc).__name__}: {message[:90]}"


class Client:
    def __init__(self, index: int, db: Database, world: World, options: Options,
                 clock: Any) -> None:
        self.db = db
        self.world = world
        self.options = options
        self.clock = clock
        self.rng = random.Random(options.seed * 1000 + index)
        self.index = index
        self.serial = 0
        # Charges in the refund being attempted: an applied one writes one row each.
        self.refund_items = 0
        self.report = ClientReport()
        self.counter = RetryCounter(self.report)

    # Simulated time: one tick of the shared clock per operation, read after the reads
    # the operation is based on, so that a refund is never older than its charge.
    def now(self) -> datetime:
        with self.clock.get_lock():
            self.clock.value += 1
            tick = self.clock.value
        return START + timedelta(minutes=tick * self.options.minutes_per_op)

    def key(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.index}-{self.serial}"

    def actor(self, *roles: str, other_than: int | None = None) -> Actor:
        pool = [a for r in roles for a in self.world.staff[r] if a.staff_id != other_than]
        return self.rng.choice(pool)

    def run(self, deadline: float) -> ClientReport:
        kinds = list(WEIGHTS)
        weights = [WEIGHTS[k] for k in kinds]
        while time.time() < deadline:
            kind = self.rng.choices(kinds, weights)[0]
            call = getattr(self, f"op_{kind}")()
            if call is None:  # nothing to refund or decide yet
                kind, call = "charge", self.op_charge()
            self.attempt(kind, call, again=self.rng.random() < DOUBLE_SUBMIT)
        return self.report

    def attempt(self, kind: str, call: Callable[[], Any], *, again: bool) -> None:
        stats = self.report.stats[kind]
        self.counter.kind = kind
        stats.attempts += 1
        try:
            result = call()
        except CreditsDeskError as exc:
            stats.outcomes[refusal_class(exc)] += 1
            return
        except Exception as exc:
            stats.outcomes[f"error: {type(exc).__name__}"] += 1
            self.report.errors.append(f"{kind}: {traceback.format_exc()}")
            return
        outcome = self.record(kind, result)
        stats.outcomes[outcome] += 1
        if not again or kind == "roll":
            return
        # The same submission again: the stored answer, nothing applied twice.
        stats.attempts += 1
        try:
            second = call()
        except Exception:
            stats.outcomes["error: double submission raised"] += 1
            self.report.errors.append(f"{kind} again: {traceback.format_exc()}")
            return
        stats.outcomes["replayed"] += 1
        same = (second.charge_id == result.charge_id if isinstance(result, ChargeResult)
                else second.operation_id == result.operation_id)
        if not second.replayed or not same:
            self.report.errors.append(f"{kind} again was not a replay: {result} / {second}")

    def record(self, kind: str, result: Any) -> str:
        r = self.report
        if isinstance(result, ChargeResult):
            r.charge_ids.append(result.charge_id)
            return "applied"
        if kind == "roll":
            r.grants_rolled += result.grants_created
            return "applied"
        assert isinstance(result, OperationResult)
        r.operation_ids.add(result.operation_id)
        if result.status == "requested":
            assert result.request_id is not None
            r.requests_made.append(result.request_id)
        elif kind == "refund" and result.status == "applied":
            r.refund_ops[result.operation_id] = self.refund_items
        elif kind == "adjust" and result.status == "applied":
            r.adjustment_ops.append(result.operation_id)
        elif kind == "approve":
            assert result.request_id is not None
            pair = (result.operation_id, result.request_id)
            (r.approvals if result.status == "applied" else r.failed_approvals).append(pair)
        elif kind == "reject":
            assert result.request_id is not None
            r.rejections.append((result.operation_id, result.request_id))
        return "request failed" if result.status == "failed" else result.status

    # -- the operations: each returns the call to attempt (None: nothing to do) ---------

    def op_charge(self) -> Callable[[], ChargeResult]:
        account_id = self.rng.choice(self.world.account_ids)
        failed = self.rng.random() < 0.4
        # Mostly the feature's price; sometimes a big explicit cost, so that refunds of a
        # few charges go over the support limit.
        credits = self.rng.randint(150, 400) if self.rng.random() < 0.15 else None
        feature = self.rng.choice(FEATURES)
        at = self.now()
        ext = self.key("charge")
        return lambda: record_charge(
            self.db, self.world.platform, account_id=account_id, feature_code=feature,
            external_id=ext, occurred_at=at, status="failed" if failed else "succeeded",
            credits=credits, failure_reason="timeout" if failed else None)

    def op_refund(self) -> Callable[[], OperationResult] | None:
        account_id = self.rng.choice(self.world.account_ids)
        recent = self.db.read(lambda s: s.execute(text(
            "SELECT id, status FROM usage_charges WHERE account_id = :a AND credits > 0"
            " ORDER BY id DESC LIMIT 30"), {"a": account_id}).all())
        if not recent:
            return None
        failed = [row[0] for row in recent if row[1] == "failed"]
        pool = failed if failed and self.rng.random() < 0.85 else [row[0] for row in recent]
        ids = self.rng.sample(pool, min(len(pool), self.rng.choice([1, 1, 1, 2, 3])))
        partial = len(ids) == 1 and self.rng.random() < 0.2
        items = [RefundItem(c, 1 if partial else None) for c in ids]
        self.refund_items = len(items)
        actor = self.actor("support", "support", "finance", "manager", "admin")
        ticket = f"#{self.rng.randint(1000, 9999)}"
        at = self.now()
        key = self.key("refund")
        return lambda: refund_charges(
            self.db, actor, account_id=account_id, items=items,
            reason_code="failed_generation", ticket=ticket, idempotency_key=key, at=at)

    def op_adjust(self) -> Callable[[], OperationResult]:
        account_id = self.rng.choice(self.world.account_ids)
        roll = self.rng.random()
        if roll < 0.55:
            delta, reason = self.rng.randint(50, 1000), "manual_sale"
        elif roll < 0.85:
            delta, reason = -self.rng.randint(10, 400), "correction"
        else:  # above the limit: a request for someone else to approve
            delta = self.rng.choice([1, -1]) * self.rng.randint(1001, 3000)
            reason = "manual_sale" if delta > 0 else "chargeback"
        actor = self.actor("finance", "admin")
        reference = f"INV-{self.rng.randint(1, 999)}"
        at = self.now()
        key = self.key("adjust")
        return lambda: adjust_purchased(
            self.db, actor, account_id=account_id, delta=delta, reason_code=reason,
            reference=reference, idempotency_key=key, at=at)

    def _pending(self) -> tuple[int, int] | None:
        rows = self.db.read(lambda s: s.execute(text(
            "SELECT id, requested_by FROM approval_requests WHERE status = 'pending'"
            " ORDER BY id DESC LIMIT 10")).all())
        if not rows:
            return None
        request_id, requester = self.rng.choice(rows)
        return int(request_id), int(requester)

    def op_approve(self) -> Callable[[], OperationResult] | None:
        pending = self._pending()
        if pending is None:
            return None
        request_id, requester = pending
        actor = self.actor("finance", "manager", "admin", other_than=requester)
        at = self.now()
        key = self.key("approve")
        return lambda: approve_request(self.db, actor, request_id=request_id,
                                       idempotency_key=key, at=at)

    def op_reject(self) -> Callable[[], OperationResult] | None:
        pending = self._pending()
        if pending is None:
            return None
        request_id, requester = pending
        actor = self.actor("finance", "manager", "admin", other_than=requester)
        at = self.now()
        key = self.key("reject")
        return lambda: reject_request(self.db, actor, request_id=request_id,
                                      comment="Not justified by the ticket.",
                                      idempotency_key=key, at=at)

    def op_roll(self) -> Callable[[], Any]:
        actor = self.actor("admin")
        at = self.now()
        return lambda: roll_periods(self.db, actor, until=at)


def client_main(index: int, world: World, options: Options, clock: Any, barrier: Any,
                start: Any, results: Any) -> None:
    """One client process: open its own database, wait for the others, work, report."""
    report = ClientReport()
    try:
        db = Database.open(options.url)
        try:
            client = Client(index, db, world, options, clock)
            report = client.report
            engine_log = logging.getLogger("credits_desktop.store.engine")
            engine_log.setLevel(logging.INFO)
            engine_log.addHandler(client.counter)
            # The services log refusals and retries; the counts say it all.
            logging.getLogger("credits_desktop").propagate = False
            barrier.wait()
            barrier.wait()  # the parent has set the start time in between
            client.run(start.value + options.seconds)
        finally:
            db.close()
    except Exception:
        report.errors.append(f"client {index}: {traceback.format_exc()}")
    results.put(report)


# -- the run and its proof --------------------------------------------------------------


def run_stress(options: Options) -> StressResult:
    """Seed, run the clients, then check every invariant and every applied effect."""
    world = prepare(options.url, options.accounts, options.seed)
    # Fork: the clients start in milliseconds instead of importing everything again.
    ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    clock = ctx.Value("q", 0)
    start = ctx.Value("d", 0.0)
    barrier = ctx.Barrier(options.clients + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=client_main,
                         args=(i, world, options, clock, barrier, start, results))
             for i in range(options.clients)]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    load_before = os.getloadavg()
    start.value = time.time()
    barrier.wait()
    began = time.monotonic()
    report = ClientReport()
    for _ in procs:
        report.merge(results.get(timeout=options.seconds + 300))
    elapsed = min(time.monotonic() - began, options.seconds + 60)
    for p in procs:
        p.join(timeout=30)
    load_after = os.getloadavg()
    until = START + timedelta(minutes=(clock.value + 1) * options.minutes_per_op)
    db = Database.open(options.url)
    try:
        admin = world.staff["admin"][0]
        roll_periods(db, admin, until=until)  # so that nothing expired is left counted
        t0 = time.monotonic()
        check = check_database(db, at=until)
        check_seconds = time.monotonic() - t0
        problems = [] if check.ok else [check.render()]
        problems += report.errors[:5]
        if len(report.errors) > 5:
            problems.append(f"… and {len(report.errors) - 5} more client errors")
        proofs = prove_effects(db, world, report, problems)
    finally:
        db.close()
    return StressResult(options, make_url(options.url).get_backend_name(), report,
                        options.seconds if elapsed > options.seconds else elapsed,
                        check.render(), check_seconds, proofs, problems, load_before,
                        load_after, until)


def prove_effects(db: Database, world: World, report: ClientReport,
                  problems: list[str]) -> dict[str, int]:
    """Compare what the database holds with what the clients were told was done."""
    after = world.setup_last_operation

    def rows(session: Session, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in session.execute(text(sql), {"after": after})]

    def read(session: Session) -> dict[str, Any]:
        return {
            "double_refunds": rows(session, "SELECT charge_id FROM refunds GROUP BY charge_id"
                                            " HAVING count(*) > 1"),
            "charges": rows(session, "SELECT id FROM usage_charges"),
            "refunds": rows(session, "SELECT operation_id, count(*) FROM refunds"
                                     " WHERE operation_id > :after GROUP BY operation_id"),
            "adjustments": rows(session, "SELECT operation_id, count(*) FROM adjustments"
                                         " WHERE operation_id > :after GROUP BY operation_id"),
            "requests": rows(session, "SELECT id, status, kind, payload, decided_by"
                                      " FROM approval_requests"),
            "operations": rows(session, "SELECT id FROM operations WHERE id > :after"),
            "plan_grants": rows(session, "SELECT count(*) FROM credit_grants"
                                         " WHERE source = 'plan'"),
        }

    got = db.read(read)

    def expect(name: str, ok: bool, detail: str = "") -> None:
        if not ok:
            problems.append(f"{name}: {detail}")

    expect("double refunds", not got["double_refunds"], str(got["double_refunds"][:5]))
    charges = {r[0] for r in got["charges"]}
    expect("charges", charges == set(report.charge_ids) and
           len(report.charge_ids) == len(charges),
           f"{len(charges)} in the database, {len(report.charge_ids)} applied")
    requests = {r[0]: r for r in got["requests"]}
    expected_refunds: dict[int, int] = {}
    for op, n in report.refund_ops.items():
        expected_refunds[op] = n
    expected_adjustments = {op: 1 for op in report.adjustment_ops}
    for op, request_id in report.approvals:
        _, status, kind, payload, _ = requests[request_id]
        expect("approved request", status == "approved", f"#{request_id} is {status}")
        if kind == "refund":
            expected_refunds[op] = len(json.loads(payload)["items"])
        elif kind == "adjustment":
            expected_adjustments[op] = 1
    refunds = {op: n for op, n in got["refunds"]}
    expect("refunds", refunds == expected_refunds,
           f"{sum(refunds.values())} rows in {len(refunds)} operations in the database, "
           f"{len(expected_refunds)} applied refund operations")
    adjustments = {op: n for op, n in got["adjustments"]}
    expect("adjustments", adjustments == expected_adjustments,
           f"{len(adjustments)} in the database, {len(expected_adjustments)} applied")
    for _, request_id in report.failed_approvals:
        expect("failed request", requests[request_id][1] == "failed", f"#{request_id}")
    for _, request_id in report.rejections:
        expect("rejected request", requests[request_id][1] == "rejected", f"#{request_id}")
    expect("requests", set(report.requests_made) == set(requests),
           f"{len(requests)} in the database, {len(report.requests_made)} made")
    decided = [r for r in requests.values() if r[1] != "pending"]
    told = len(report.approvals) + len(report.failed_approvals) + len(report.rejections)
    expect("decisions", len(decided) == told, f"{len(decided)} decided, {told} reported")
    operations = {r[0] for r in got["operations"]}
    expect("operations", operations == report.operation_ids,
           f"{len(operations)} in the database, {len(report.operation_ids)} reported")
    return {
        "charges": len(charges),
        "refunds": sum(refunds.values()),
        "adjustments": sum(adjustments.values()),
        "requests": len(requests),
        "requests_decided": len(decided),
        "operations": len(operations),
        "double_refunds": len(got["double_refunds"]),
        "plan_grants": int(got["plan_grants"][0][0]),
        "accounts": len(world.account_ids),
    }


# -- pgbench ----------------------------------------------------------------------------

PGBENCH_SCRIPT = """\\set aid random(1, {rows})
UPDATE bench_accounts SET balance = balance - 1 WHERE id = :aid AND balance >= 1;
"""


def run_pgbench(url: str, rows: int, clients: int, seconds: int, jobs: int = 2) -> float:
    """TPS of pgbench's conditional update on ``rows`` hot rows, in a scratch database."""
    parsed = parse_url(url)
    scratch = parsed.set(database="credits_stress_pgbench")
    create_pg_database(scratch.render_as_string(hide_password=False))
    engine = make_engine(scratch, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_accounts (id int PRIMARY KEY,"
                              " balance bigint NOT NULL)"))
            conn.execute(text("INSERT INTO bench_accounts"
                              " SELECT g, 1000000000 FROM generate_series(1, :n) g"), {"n": rows})
    finally:
        engine.dispose()
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SCRIPT.format(rows=rows))
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    try:
        out = subprocess.run(
            ["pgbench", "-n", "-f", script.name, "-c", str(clients), "-j", str(jobs),
             "-T", str(seconds), "-h", parsed.host or "127.0.0.1",
             "-p", str(parsed.port or 5432), "-U", parsed.username or "postgres",
             "credits_stress_pgbench"],
            capture_output=True, text=True, check=True, env=env).stdout
    finally:
        os.unlink(script.name)
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    assert found, out
    return float(found.group(1))


# -- report -----------------------------------------------------------------------------


def render(result: StressResult) -> str:
    o = result.options
    s = result.elapsed
    lines = [
        f"{result.dialect}: {o.clients} clients x {o.seconds:g} s on {o.accounts} hot accounts,"
        f" simulated time {START:%Y-%m-%d} to {result.simulated_until:%Y-%m-%d}"
        f" ({o.minutes_per_op:g} min per operation)",
        f"load average before {result.load_before[0]:.2f}, after {result.load_after[0]:.2f}",
        "",
        "| operation | attempts | per s | applied | requested | rejected | request failed |"
        " replayed | refused | retried conflicts |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in KINDS:
        st = result.report.stats[kind]
        lines.append(
            f"| {kind} | {st.attempts:,} | {st.attempts / s:,.1f} | {st.applied:,} |"
            f" {st.outcomes['requested']:,} | {st.outcomes['rejected']:,} |"
            f" {st.outcomes['request failed']:,} | {st.outcomes['replayed']:,} |"
            f" {st.refused:,} | {st.retries:,} |")
    total = result.attempts
    lines.append(f"| **all** | {total:,} | {total / s:,.1f} |"
                 f" {sum(x.applied for x in result.report.stats.values()):,} | | | | |"
                 f" {sum(x.refused for x in result.report.stats.values()):,} |"
                 f" {result.retries:,} ({100 * result.retries / max(total, 1):.2f} %) |")
    lines += ["", "Refusals by reason:"]
    reasons: Counter[str] = Counter()
    for st in result.report.stats.values():
        reasons.update({k: n for k, n in st.outcomes.items()
                        if k.startswith(("refused", "error"))})
    lines += [f"- {n:,} × {k}" for k, n in reasons.most_common()]
    p = result.proofs
    lines += [
        "",
        f"Database afterwards: {p.get('charges', 0):,} charges, {p.get('refunds', 0):,}"
        f" refunds, {p.get('adjustments', 0):,} adjustments, {p.get('requests', 0):,}"
        f" requests ({p.get('requests_decided', 0):,} decided),"
        f" {p.get('operations', 0):,} operations, {p.get('plan_grants', 0):,} plan grants"
        f" for {p.get('accounts', 0)} accounts; {p.get('double_refunds', 0)} charges refunded"
        " twice.",
        f"check ({result.check_seconds:.1f} s): {result.check_text}",
        "PROOF: OK" if result.ok else "PROOF FAILED:\n" + "\n".join(result.problems),
    ]
    return "\n".join(lines)


def summary(result: StressResult) -> dict[str, Any]:
    s = result.elapsed
    return {
        "dialect": result.dialect, "clients": result.options.clients, "seconds": s,
        "ops_per_s": result.attempts / s, "retries": result.retries,
        "retry_rate": result.retries / max(result.attempts, 1), "ok": result.ok,
        "per_kind": {k: {"attempts": v.attempts, "per_s": v.attempts / s,
                         "outcomes": dict(v.outcomes), "retries": v.retries}
                     for k, v in result.report.stats.items()},
        "proofs": result.proofs, "load": [result.load_before, result.load_after],
        "problems": result.problems,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: a new SQLite file)")
    parser.add_argument("--create", action="store_true",
                        help="drop and create the PostgreSQL database of --db first")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--accounts", type=int, default=5)
    parser.add_argument("--minutes-per-op", type=float, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pgbench", action="store_true",
                        help="also run pgbench's conditional update on the same server")
    parser.add_argument("--pgbench-seconds", type=int, default=None)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='credits-stress-')}/stress.db"
    if args.create:
        create_pg_database(url)
    options = Options(url, args.clients, args.seconds, args.accounts, args.minutes_per_op,
                      args.seed)
    result = run_stress(options)
    print(render(result))
    out = summary(result)
    if args.pgbench:
        tps = run_pgbench(url, args.accounts, args.clients,
                          args.pgbench_seconds or int(args.seconds))
        ratio = out["ops_per_s"] / tps
        out["pgbench_tps"] = tps
        out["ratio"] = ratio
        print(f"\npgbench (conditional UPDATE on {args.accounts} rows, -c {args.clients}"
              f" -j 2): {tps:,.0f} TPS; stress / pgbench = {ratio:.4f}"
              f" (1 : {1 / ratio:,.0f})")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
