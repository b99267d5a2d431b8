"""Filling an empty database with a realistic, reproducible demo data set.

``generate_demo`` adds the demo staff (one of every role), then a few thousand customer
accounts with months of AI usage: plan grants and expiries, package purchases, failed
generations (some refunded by support, most waiting in the queue), refunds by managers,
adjustments by finance, reversals and approval requests. Everything is what the services
would have written (see ``demo_sim``), bulk-loaded in one transaction (``demo_store``),
which also adds the loaded rows to the usage rollup (``rollups.compiled_backfill``).
The same seed and ``now`` always give the same data.
"""

from __future__ import annotations

import copy
import logging
import queue
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credits_desktop.domain.periods import add_months
from credits_desktop.domain.permissions import Role
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    Account,
    CreditPackage,
    Feature,
    FeaturePrice,
    Plan,
    Staff,
)
from credits_desktop.store.types import utcnow

from .catalog import ensure_catalog
from .demo_names import NameMaker
from .demo_sim import DAY, Ids, Rows, StaffIds, TimeText, World, dt, run_accounts, ts_of
from .demo_store import BulkWriter, open_writer
from .demo_world import (
    failure_tables,
    incident_window,
    make_options,
    price_steps,
    scenario_plan,
    slot_weights,
    time_table,
)
from .errors import InvalidInput, RuleBroken
from .operations import system_actor_id
from .periods import roll_detail
from .rollups import IdRange, compiled_backfill

__all__ = ["DEMO_STAFF", "DemoSummary", "generate_demo"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

# username, display name, role, active. Lee left the support team: deactivated.
DEMO_STAFF = (
    ("platform", "Ad platform", Role.SYSTEM, True),
    ("dana", "Dana Whitfield", Role.SUPPORT, True),
    ("sam", "Sam Okafor", Role.SUPPORT, True),
    ("lee", "Lee Brandt", Role.SUPPORT, False),
    ("fay", "Fay Lindqvist", Role.FINANCE, True),
    ("mo", "Morgan Reyes", Role.MANAGER, True),
    ("ada", "Ada Novak", Role.ADMIN, True),
)

MAX_ACCOUNTS = 1_000_000
MAX_MONTHS = 120
# Accounts simulated between two progress reports, and charges buffered before a write.
ACCOUNTS_PER_STEP = 100
CHARGES_PER_WRITE = 50_000
SWITCH_INTERVAL = 0.0002


@dataclass(frozen=True)
class DemoSummary:
    """What ``generate_demo`` wrote and how long it took."""

    accounts: int
    charges: int
    ledger_entries: int
    refunds: int
    adjustments: int
    seconds: float

    @property
    def charges_per_second(self) -> float:
        return self.charges / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Catalog:
    staff: StaffIds
    plans: dict[str, tuple[int, int]]
    packages: dict[str, tuple[int, int, str]]
    features: dict[str, str]
    enabled: set[str]
    prices: list[tuple[str, str | None, int, int]]


def generate_demo(
    db: Database,
    *,
    accounts: int = 2000,
    months: int = 6,
    seed: int = 1,
    now: datetime | None = None,
    progress: Progress | None = None,
    cross_check: bool = False,
    usage_percent: int = 100,
) -> DemoSummary:
    """Fill the empty database ``db`` with demo data whose history ends at ``now``.

    Refuses (RuleBroken) a database that already has accounts. ``progress`` is called
    with (stage, done, total) as the work advances, on the calling thread; an exception
    raised from it cancels the generation, and no account is kept (the catalogue and the
    demo staff, written first, stay). ``cross_check`` (for tests; slow) has every charge
    planned by ``domain.grants.plan_charge`` too and compared. ``usage_percent`` scales
    how much of their allotment the accounts use (100 is the usual demo).
    """
    began = time.perf_counter()
    for value, name, top in ((accounts, "accounts", MAX_ACCOUNTS), (months, "months", MAX_MONTHS)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise InvalidInput(f"The number of {name} must be from 1 to {top:,}.", name)
    if (isinstance(usage_percent, bool) or not isinstance(usage_percent, int)
            or not 1 <= usage_percent <= 1000):
        raise InvalidInput("The usage must be from 1 to 1,000 percent.", "usage_percent")
    when = now or utcnow()
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidInput("Times must carry a time zone.", "now")
    when = when.astimezone(UTC)
    report = progress or (lambda stage, done, total: None)
    report("Preparing the database", 0, accounts)
    start = datetime.combine(add_months(when.date(), -months, when.day), when.timetz())
    catalog = db.write(lambda session: _prepare(session, start))
    writer: BulkWriter = open_writer(db.engine)
    pipe = _WriterThread(writer)
    try:
        world = _world(catalog, start, when, seed, accounts, writer.times_as_text)
        world.cross_check = cross_check
        world.usage_percent = usage_percent
        writer.begin()
        if writer.has_accounts():
            raise RuleBroken("This database already has accounts; the demo data goes only "
                             "into an empty database.")
        ids = Ids(**{field: writer.max_id(table) for field, table in _ID_TABLES.items()})
        loaded_after = copy.copy(ids)
        rows = Rows()
        names = NameMaker()
        pipe.start()
        for first in range(0, accounts, ACCOUNTS_PER_STEP):
            count = min(ACCOUNTS_PER_STEP, accounts - first)
            run_accounts(world, ids, rows, first, count, seed, names, pipe.put,
                         CHARGES_PER_WRITE)
            report("Generating accounts", first + count, accounts)
        _roll_audit(world, ids, rows)
        pipe.put(rows)
        report("Saving", accounts, accounts)
        pipe.finish()
        log.info("demo: %d accounts simulated and written in %.2f s", accounts,
                 time.perf_counter() - began)
        # The rows loaded bypassed the services, so they go into the usage rollup here,
        # set-based and in the same transaction: the demo database's rollup is complete.
        rolled = time.perf_counter()
        writer.run(compiled_backfill(
            db.engine.dialect,
            charges=IdRange(loaded_after.charge, ids.charge),
            refunds=IdRange(loaded_after.refund, ids.refund),
            reversals=IdRange(loaded_after.reversal, ids.reversal),
        ))
        log.info("demo: usage rollup built in %.2f s", time.perf_counter() - rolled)
        writer.commit({table: getattr(ids, field) for field, table in _ID_TABLES.items()})
    except BaseException:
        pipe.abandon()
        writer.rollback()
        raise
    totals = pipe.totals
    report("Done", accounts, accounts)
    return DemoSummary(
        accounts=totals["accounts"],
        charges=totals["usage_charges"],
        ledger_entries=totals["ledger_entries"],
        refunds=totals["refunds"],
        adjustments=totals["adjustments"],
        seconds=time.perf_counter() - began,
    )


class _WriterThread:
    """Writes row batches on a thread of its own while the next accounts are simulated.

    The database does most of its work (index pages, the PostgreSQL server) without the
    GIL, so on two cores the simulation and the writing overlap. The queue is short, so
    memory stays bounded: the simulation waits when the writer falls behind.
    """

    def __init__(self, writer: BulkWriter) -> None:
        self.writer = writer
        self.queue: queue.Queue[list[tuple[str, Any, int]] | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.cancelled = False
        self.totals = dict.fromkeys(
            ("accounts", "usage_charges", "ledger_entries", "refunds", "adjustments"), 0)
        self.thread = threading.Thread(target=self._run, name="demo-writer", daemon=True)
        self.switch_interval = sys.getswitchinterval()

    def start(self) -> None:
        # The writer needs the GIL back quickly after each batch of rows the database
        # took: with the default 5 ms it would wait on the simulation most of the time.
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.thread.start()

    def _run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.error is not None or self.cancelled:
                continue  # drain, so that the producer never blocks on a dead writer
            try:
                for table, prepared, count in batch:
                    self.writer.write(table, prepared)
                    if table in self.totals:
                        self.totals[table] += count
            except BaseException as exc:
                self.error = exc

    def put(self, rows: Rows) -> None:
        """Queue what ``rows`` holds for writing and empty it."""
        if self.error is not None:
            raise self.error
        batch = rows.take()
        self.queue.put([(table, self.writer.prepare(table, table_rows), len(table_rows))
                        for table, table_rows in batch.tables() if table_rows])

    def finish(self) -> None:
        """Wait until everything queued is written; raise what the writer raised."""
        self._stop()
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        """Stop without writing what is still queued (the load is rolled back)."""
        self.cancelled = True
        self._stop()

    def _stop(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        sys.setswitchinterval(self.switch_interval)


_ID_TABLES = {
    "account": "accounts",
    "operation": "operations",
    "grant": "credit_grants",
    "charge": "usage_charges",
    "ledger": "ledger_entries",
    "refund": "refunds",
    "adjustment": "adjustments",
    "reversal": "reversals",
    "request": "approval_requests",
    "audit": "audit_events",
}


def _prepare(session: Session, start: datetime) -> _Catalog:
    """Check the database is empty, add the catalogue and the demo staff, read them back."""
    if session.scalar(select(Account.id).limit(1)) is not None:
        raise RuleBroken("This database already has accounts; the demo data goes only into "
                         "an empty database.")
    ensure_catalog(session)
    system = system_actor_id(session)
    existing = {s.username: s for s in session.scalars(select(Staff))}
    ids: dict[str, int] = {}
    for username, display_name, role, active in DEMO_STAFF:
        staff = existing.get(username)
        if staff is None:
            staff = Staff(username=username, display_name=display_name, role=role.value,
                          active=active,
                          created_at=start.replace(microsecond=0) - timedelta(days=30))
            session.add(staff)
            session.flush()
        elif staff.role != role.value:
            raise RuleBroken(f"The staff member '{username}' already exists with the role "
                             f"{staff.role}; the demo needs '{username}' as {role.value}.")
        ids[username] = staff.id
    plans = {p.code: (p.id, p.monthly_allotment)
             for p in session.scalars(select(Plan).where(Plan.active.is_(True)).order_by(Plan.id))}
    packages = {
        p.code: (p.id, p.credits, p.name)
        for p in session.scalars(
            select(CreditPackage).where(CreditPackage.active.is_(True)).order_by(CreditPackage.id)
        )
    }
    features = {f.code: f.name for f in session.scalars(select(Feature))}
    enabled = set(session.scalars(select(Feature.code).where(Feature.enabled.is_(True))))
    prices = [
        (p.feature_code, p.model, p.credits, ts_of(p.valid_from))
        for p in session.scalars(select(FeaturePrice).order_by(FeaturePrice.id))
    ]
    if not plans or not packages:
        raise RuleBroken("The catalogue has no active plan or credit package to use.")
    return _Catalog(
        staff=StaffIds(
            system=system, platform=ids["platform"], support=(ids["dana"], ids["sam"]),
            former_support=ids["lee"], finance=ids["fay"], manager=ids["mo"],
            admin=ids["ada"],
        ),
        plans=plans, packages=packages, features=features, enabled=enabled, prices=prices,
    )


def _world(catalog: _Catalog, start: datetime, now: datetime, seed: int, accounts: int,
           times_as_text: bool) -> World:
    rng = random.Random(seed)
    start_ts, now_ts = ts_of(start), ts_of(now)
    options = make_options(catalog.features, catalog.enabled,
                           [(f, m) for f, m, _, _ in catalog.prices])
    if not options:
        raise RuleBroken("No enabled AI feature has a price; there is nothing to charge.")
    weights = slot_weights(start_ts, now_ts)
    return World(
        start_ts=start_ts,
        now_ts=now_ts,
        # From before the oldest account's first period to after the current ones end.
        text=TimeText(start_ts // DAY - 120, now_ts // DAY + 40, as_text=times_as_text),
        staff=catalog.staff,
        plans=catalog.plans,
        packages=catalog.packages,
        options=options,
        price_steps=price_steps(options, catalog.prices, start_ts, now_ts),
        fail_rates=[o.fail_rate for o in options],
        failures=failure_tables(options, incident=False),
        incident=incident_window(rng, start_ts, now_ts),
        incident_rates=[0.35 if o.feature == "ad_image" else o.fail_rate for o in options],
        incident_failures=failure_tables(options, incident=True),
        slot_weights=weights,
        time_table=time_table(weights),
        scenarios=scenario_plan(rng, accounts),
    )


def _roll_audit(world: World, ids: Ids, rows: Rows) -> None:
    """The scheduler's audit events: one per run of ``roll_periods`` that rolled accounts."""
    for ts in sorted(world.roll_counts):
        ids.audit += 1
        rows.audit_events.append((
            ids.audit, world.text(ts), world.staff.system, "roll_periods", "applied", None,
            None, roll_detail(world.roll_counts[ts], dt(ts)),
        ))
