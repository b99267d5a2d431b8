"""The usage rollups: per-day, per-feature sums that the charts read instead of the charges.

Three tables (``store.models``): ``usage_daily_account`` (account, UTC day, feature),
``usage_daily`` (UTC day, feature, model, plan) and ``refunds_daily`` (UTC day of the
refund, feature, plan). Every figure is an exact integer sum, and is kept exact two ways:

* **Maintenance.** Every charge (``charges.record_charge``), refund
  (``refunds.apply_refunds``, which approvals and incident refunds also use) and reversal
  of a refund (``reversals.apply_reversal``) adds its deltas to the rows it changes, in
  its own transaction, with an upsert that adds (``INSERT … ON CONFLICT DO UPDATE SET
  x = x + excluded.x``), one statement per rollup table with the list of rows (an
  incident batch sums the deltas of all its accounts first). Refunding charge C adds
  the credits to ``refunded_credits`` of C's day and feature (and model and plan), and
  one refund of those credits to ``refunds_daily`` on the refund's day; reversing that
  refund subtracts the same on the reversal's day. Adjustments, purchases and period
  roll-overs do not touch usage. The rows each write touches are upserted in a fixed
  order (table, then key) so that concurrent writers on PostgreSQL queue rather than
  deadlock.
* **Backfill.** A database that had charges before the rollup existed (migration
  0002) holds in the setting ``rollup_backfill`` the last charge, refund and reversal
  id of that moment (the *watermark*) and how far the backfill has got. Rows above
  the watermark were maintained as they were written; the backfill adds the rows up
  to it, a chunk of ids at a time, each chunk one transaction that adds its
  aggregate (``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE``) and moves the
  position on. So an interrupted backfill resumes where it stopped, counts no row
  twice, and staff keep working while it runs. No setting means nothing to backfill.

The plan of a row is the account's plan when the row was written. No service changes
an account's plan today, so that is also the account's current plan, which is what the
backfill and ``credits-desktop check`` use; a future plan change must keep that true
(e.g. by storing the plan on the charge).

``credits-desktop check`` proves each table equal to the raw sums (``services.check``),
over the part built so far while a backfill is pending.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Insert,
    String,
    Table,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    Account,
    Base,
    Plan,
    Refund,
    RefundsDaily,
    Reversal,
    Setting,
    UsageCharge,
    UsageDaily,
    UsageDailyAccount,
)

__all__ = [
    "BACKFILL_KEY",
    "CHUNK_ROWS",
    "STAGE",
    "IdRange",
    "Progress",
    "RollupStatus",
    "add_charge",
    "add_refund_reversal",
    "add_refunds",
    "add_refunds_of",
    "backfill_statements",
    "build_chunk",
    "build_rollups",
    "compiled_backfill",
    "day_of",
    "plan_code_of",
    "reset_rollups",
    "rollup_status",
    "rollup_status_in",
    "utc_day",
]

BACKFILL_KEY = "rollup_backfill"
# Rows of one source table per backfill transaction: about a second of work on SQLite,
# so staff writing meanwhile wait at most that long for the write lock.
CHUNK_ROWS = 200_000
SOURCES = ("charges", "refunds", "reversals")
STAGE = "Building the usage rollup"

Progress = Callable[[str, int, int], None]


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


UDA, UD, RD = _table(UsageDailyAccount), _table(UsageDaily), _table(RefundsDaily)
UC, RF, RV = _table(UsageCharge), _table(Refund), _table(Reversal)
USAGE_MEASURES = ("charges", "credits", "failed", "failed_credits", "refunded_credits")
REFUND_MEASURES = ("refunds", "credits")
USAGE_KEYS: dict[str, tuple[str, ...]] = {
    "usage_daily_account": ("account_id", "day", "feature_code"),
    "usage_daily": ("day", "feature_code", "model", "plan_code"),
}
REFUND_KEYS = ("day", "feature_code", "plan_code")


# -- status ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdRange:
    """The ids ``lo < id <= hi`` of one source table."""

    lo: int
    hi: int

    @property
    def empty(self) -> bool:
        return self.hi <= self.lo


@dataclass(frozen=True)
class RollupStatus:
    """How far the backfill has got: per source table, the id it has reached (``done``)
    of the last id it has to cover (``upto``, the watermark). Ids above ``upto`` are
    maintained by the services as they are written."""

    charges_done: int = 0
    charges_upto: int = 0
    refunds_done: int = 0
    refunds_upto: int = 0
    reversals_done: int = 0
    reversals_upto: int = 0

    @property
    def ready(self) -> bool:
        """The rollup holds every charge, refund and reversal."""
        return all(self.position(s) >= self.watermark(s) for s in SOURCES)

    @property
    def done(self) -> int:
        """Ids covered so far, over the three tables (for a progress bar)."""
        return sum(min(self.position(s), self.watermark(s)) for s in SOURCES)

    @property
    def total(self) -> int:
        """Ids the backfill covers in all."""
        return sum(self.watermark(s) for s in SOURCES)

    def position(self, source: str) -> int:
        return int(getattr(self, f"{source}_done"))

    def watermark(self, source: str) -> int:
        return int(getattr(self, f"{source}_upto"))

    def built(self, source: str) -> IdRange:
        """The ids of ``source`` the rollup does *not* hold yet (empty when built)."""
        return IdRange(self.position(source), self.watermark(source))

    def describe(self) -> str:
        """One plain sentence for a terminal or a status bar."""
        if self.ready:
            return "The usage rollup is complete."
        percent = 100 * self.done / self.total if self.total else 100.0
        return (f"The usage rollup is being built: {self.done:,} of {self.total:,} rows "
                f"({percent:.0f}%) added; run 'credits-desktop rollup build' to finish it.")

    def to_json(self) -> str:
        return json.dumps({f"{s}_{k}": getattr(self, f"{s}_{k}")
                           for s in SOURCES for k in ("upto", "done")}, sort_keys=True)

    @classmethod
    def from_json(cls, value: str | None) -> RollupStatus:
        if not value:
            return cls()
        data = json.loads(value)
        return cls(**{f"{s}_{k}": int(data.get(f"{s}_{k}", 0))
                      for s in SOURCES for k in ("upto", "done")})


def rollup_status_in(session: Session, *, lock: bool = False) -> RollupStatus:
    """The backfill's state as this transaction sees it; ``lock`` holds its setting row
    until the transaction ends (PostgreSQL), so that two builders take turns."""
    stmt = select(Setting.value).where(Setting.key == BACKFILL_KEY)
    if lock and _dialect(session) == "postgresql":
        stmt = stmt.with_for_update()
    return RollupStatus.from_json(session.scalar(stmt))


def rollup_status(db: Database) -> RollupStatus:
    """Whether the rollup is complete, and how far its backfill has got."""
    return db.read(rollup_status_in)


def _save_status(session: Session, status: RollupStatus) -> None:
    row = session.get(Setting, BACKFILL_KEY)
    if row is None:
        session.add(Setting(key=BACKFILL_KEY, value=status.to_json()))
    else:
        row.value = status.to_json()
    session.flush()


# -- maintenance by the services ------------------------------------------------------------


def plan_code_of(session: Session, account: Account) -> str:
    """The account's plan code now (the identity map usually has the plan already)."""
    plan = session.get(Plan, account.plan_id)
    assert plan is not None, "every account has a plan (foreign key)"
    return plan.code


def utc_day(when: datetime) -> date:
    """The UTC calendar day of an aware time."""
    return when.astimezone(UTC).date()


class _Deltas:
    """What one write adds to each rollup row, summed per row before it is upserted."""

    def __init__(self) -> None:
        self.usage: dict[str, dict[tuple[Any, ...], list[int]]] = {
            name: defaultdict(lambda: [0] * len(USAGE_MEASURES)) for name in USAGE_KEYS
        }
        self.refunds: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])

    def _usage(self, charge: UsageCharge, plan_code: str, values: tuple[int, ...]) -> None:
        day = utc_day(charge.occurred_at)
        keys = {
            "usage_daily_account": (charge.account_id, day, charge.feature_code),
            "usage_daily": (day, charge.feature_code, charge.model or "", plan_code),
        }
        for name, key in keys.items():
            row = self.usage[name][key]
            for i, value in enumerate(values):
                row[i] += value

    def charge(self, charge: UsageCharge, plan_code: str) -> None:
        failed = charge.status == "failed"
        self._usage(charge, plan_code, (1, charge.credits, int(failed),
                                        charge.credits if failed else 0, 0))

    def refund(self, charge: UsageCharge, credits: int, plan_code: str, at: datetime,
               sign: int) -> None:
        self._usage(charge, plan_code, (0, 0, 0, 0, sign * credits))
        row = self.refunds[(utc_day(at), charge.feature_code, plan_code)]
        row[0] += sign
        row[1] += sign * credits

    def apply(self, session: Session) -> None:
        # The source rows first (inserting them is what a rebuild's table lock waits
        # for), then the rollup rows in a fixed order: tables, then keys.
        session.flush()
        for name, rows in self.usage.items():
            _upsert(session, UDA if name == "usage_daily_account" else UD, USAGE_KEYS[name],
                    USAGE_MEASURES, rows)
        _upsert(session, RD, REFUND_KEYS, REFUND_MEASURES, self.refunds)


def _insert(session: Session, table: Table) -> Any:
    module: Any = pg if _dialect(session) == "postgresql" else sqlite
    return module.insert(table)


def _upsert(session: Session, table: Table, keys: tuple[str, ...], measures: tuple[str, ...],
            rows: dict[tuple[Any, ...], list[int]]) -> None:
    if not rows:
        return
    values = [dict(zip(keys, key, strict=True)) | dict(zip(measures, row, strict=True))
              for key, row in sorted(rows.items())]
    stmt = _insert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys],
        set_={m: table.c[m] + stmt.excluded[m] for m in measures},
    )
    # One statement with a list of rows: the same SQL every time (compiled once, cached),
    # sent as one batch (psycopg pipelines it, sqlite3 loops in C), in key order.
    session.execute(stmt, values)


def add_charge(session: Session, charge: UsageCharge, plan_code: str) -> None:
    """Add a newly recorded charge to the rollup (in the charge's transaction)."""
    deltas = _Deltas()
    deltas.charge(charge, plan_code)
    deltas.apply(session)


def add_refunds(session: Session, refunded: Iterable[tuple[UsageCharge, int]],
                plan_code: str, at: datetime) -> None:
    """Add refunds made at ``at``: ``(charge, credits refunded)`` of one account."""
    add_refunds_of(session, ((charge, credits, plan_code) for charge, credits in refunded), at)


def add_refunds_of(session: Session, refunded: Iterable[tuple[UsageCharge, int, str]],
                   at: datetime) -> None:
    """Add refunds made at ``at`` on any number of accounts: ``(charge, credits refunded,
    the plan code of the charge's account)``. The deltas are summed per rollup row first,
    so each rollup table takes one upsert statement (with its list of rows) however
    many refunds there are."""
    deltas = _Deltas()
    for charge, credits, plan_code in refunded:
        deltas.refund(charge, credits, plan_code, at, +1)
    deltas.apply(session)


def add_refund_reversal(session: Session, charge: UsageCharge, credits: int, plan_code: str,
                        at: datetime) -> None:
    """Take out of the rollup a refund of ``credits`` on ``charge``, reversed at ``at``."""
    deltas = _Deltas()
    deltas.refund(charge, credits, plan_code, at, -1)
    deltas.apply(session)


# -- the backfill ----------------------------------------------------------------------------


def day_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """SQL for the UTC calendar day of a stored time (``store.types.UTCDateTime``).

    SQLite keeps naive UTC text ('YYYY-MM-DD HH:MM:SS…'), whose first ten characters are
    the day, in the form its Date columns hold; PostgreSQL converts from timestamptz in
    UTC, whatever the session's time zone.
    """
    # Constants inline, not bound: PostgreSQL matches a GROUP BY expression with the
    # SELECT's only when they are written the same.
    if dialect == "postgresql":
        return cast(func.timezone(literal_column("'UTC'"), column), Date)
    return func.substr(column, literal_column("1"), literal_column("10"), type_=String)


def _upsert_select(dialect: str, table: Table, keys: tuple[str, ...],
                   measures: tuple[str, ...], query: Any) -> Insert:
    module: Any = pg if dialect == "postgresql" else sqlite
    stmt = module.insert(table).from_select([*keys, *measures], query)
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=[table.c[k] for k in keys],
        set_={m: table.c[m] + stmt.excluded[m] for m in measures},
    )


def _usage_statements(dialect: str, rows: Any, cond: ColumnElement[bool],
                      measures: list[Any]) -> list[Insert]:
    """Both usage tables from ``rows`` (a join that includes the charges) where ``cond``,
    grouped by the charge's day; ``measures`` are the five usage measures' SQL."""
    uc = UC
    day = day_of(uc.c.occurred_at, dialect)
    by_account = (
        select(uc.c.account_id, day, uc.c.feature_code, *measures)
        .select_from(rows)
        .where(cond)
        .group_by(uc.c.account_id, day, uc.c.feature_code)
        .order_by(uc.c.account_id, day, uc.c.feature_code)
    )
    model = func.coalesce(uc.c.model, literal_column("''"))
    overall = (
        select(day, uc.c.feature_code, model, Plan.code, *measures)
        .select_from(rows.join(Account, Account.id == uc.c.account_id)
                     .join(Plan, Plan.id == Account.plan_id))
        .where(cond)
        .group_by(day, uc.c.feature_code, model, Plan.code)
        .order_by(day, uc.c.feature_code, model, Plan.code)
    )
    return [
        _upsert_select(dialect, UDA, USAGE_KEYS["usage_daily_account"], USAGE_MEASURES,
                       by_account),
        _upsert_select(dialect, UD, USAGE_KEYS["usage_daily"], USAGE_MEASURES, overall),
    ]


def backfill_statements(dialect: str, *, charges: IdRange | None = None,
                        refunds: IdRange | None = None,
                        reversals: IdRange | None = None) -> list[Insert]:
    """Statements that add the given id ranges of charges, refunds and reversals (of
    refunds) to the rollup: set-based, one ``INSERT … SELECT … GROUP BY`` upsert per
    rollup table and source. Each range must be added once (the caller's bookkeeping)."""
    out: list[Insert] = []
    uc, rf, rv = UC, RF, RV
    zero = literal(0)
    if charges is not None and not charges.empty:
        failed = uc.c.status == "failed"
        out += _usage_statements(
            dialect, uc, uc.c.id.between(charges.lo + 1, charges.hi),
            [func.count(), func.sum(uc.c.credits), func.sum(case((failed, 1), else_=0)),
             func.sum(case((failed, uc.c.credits), else_=0)), zero],
        )
    for rng, sign in ((refunds, 1), (reversals, -1)):
        if rng is None or rng.empty:
            continue
        if sign > 0:
            joined = rf.join(uc, uc.c.id == rf.c.charge_id)
            made_at = rf.c.created_at
            cond = rf.c.id.between(rng.lo + 1, rng.hi)
        else:
            # A reversal of an adjustment has no refund: the inner join leaves it out.
            joined = rv.join(rf, rf.c.id == rv.c.refund_id).join(uc, uc.c.id == rf.c.charge_id)
            made_at = rv.c.created_at
            cond = rv.c.id.between(rng.lo + 1, rng.hi)
        credits = sign * func.sum(rf.c.credits)
        out += _usage_statements(dialect, joined, cond, [zero, zero, zero, zero, credits])
        day = day_of(made_at, dialect)
        by_day = (
            select(day, uc.c.feature_code, Plan.code, sign * func.count(), credits)
            .select_from(joined.join(Account, Account.id == uc.c.account_id)
                         .join(Plan, Plan.id == Account.plan_id))
            .where(cond)
            .group_by(day, uc.c.feature_code, Plan.code)
            .order_by(day, uc.c.feature_code, Plan.code)
        )
        out.append(_upsert_select(dialect, RD, REFUND_KEYS, REFUND_MEASURES, by_day))
    return out


def compiled_backfill(dialect: Dialect, **ranges: IdRange | None) -> list[str]:
    """:func:`backfill_statements` as SQL text with the values inlined, for a connection
    outside SQLAlchemy (the demo's bulk loader)."""
    return [
        str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        for stmt in backfill_statements(dialect.name, **ranges)
    ]


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _next_range(session: Session, source: str, status: RollupStatus, rows: int) -> IdRange:
    """The next chunk of ``source``: up to ``rows`` existing ids after the position."""
    ids = {"charges": UC, "refunds": RF, "reversals": RV}[source].c.id
    lo, upto = status.position(source), status.watermark(source)
    hi = session.scalar(
        select(ids).where(ids > lo, ids <= upto).order_by(ids).offset(rows - 1).limit(1)
    )
    return IdRange(lo, upto if hi is None else int(hi))


def build_chunk(session: Session, rows: int = CHUNK_ROWS) -> RollupStatus:
    """Add the next chunk of the backfill, in the caller's transaction; the new status."""
    status = rollup_status_in(session, lock=True)
    for source in SOURCES:
        if status.position(source) >= status.watermark(source):
            continue
        chunk = _next_range(session, source, status, rows)
        for stmt in backfill_statements(_dialect(session), **{source: chunk}):
            session.execute(stmt)
        status = RollupStatus(**{**status.__dict__, f"{source}_done": chunk.hi})
        _save_status(session, status)
        break
    return status


def build_rollups(
    db: Database,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> RollupStatus:
    """Run the backfill to its end, a chunk per transaction; returns where it stands.

    ``progress(stage, done, total)`` hears of each chunk; ``cancelled()`` is asked before
    each, and True stops there (as does an exception, Ctrl+C included: the chunk under way
    rolls back). Either way what was committed stays and a later call resumes after it.
    Staff may keep working meanwhile.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    status = rollup_status(db)
    if progress is not None and not status.ready:
        progress(STAGE, status.done, status.total)
    while not status.ready:
        if cancelled is not None and cancelled():
            break
        status = db.write(lambda session: build_chunk(session, chunk_rows))
        if progress is not None:
            progress(STAGE, status.done, status.total)
    return status


def reset_rollups(db: Database) -> RollupStatus:
    """Empty the rollup and set the backfill to rebuild it all (a repair, after ``check``
    found it wrong); :func:`build_rollups` then does the work. Writers wait meanwhile."""

    def work(session: Session) -> RollupStatus:
        if _dialect(session) == "postgresql":
            # Every writer inserts its charge, refund or reversal before touching the
            # rollup: holding these tables, no write is half in and half out of the reset.
            session.execute(text("LOCK TABLE usage_charges, refunds, reversals IN SHARE MODE"))
        rollup_status_in(session, lock=True)
        for table in (UDA, UD, RD):
            session.execute(table.delete())
        marks = {
            f"{source}_upto": int(session.scalar(select(func.coalesce(func.max(t.c.id), 0)))
                                  or 0)
            for source, t in (("charges", UC), ("refunds", RF), ("reversals", RV))
        }
        status = RollupStatus(**marks)
        _save_status(session, status)
        return status

    return db.write(work)
