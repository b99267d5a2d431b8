"""``credits-desktop check``: prove that the numbers obey the rules of the brief.

Every invariant is checked by set-based SQL: aggregates grouped in the database
and compared by joins, never a Python loop over a big table. The work is laid
out so that the big tables are read as few times as possible: one grouped pass
over the ledger serves the grant and account sums and the signature rules, one
pass merging the ledger with the charges in charge order serves the charge
rules, and the few entries staff wrote (refunds, adjustments, reversals) are
read once for their own rules. Each rule's query yields its offending rows, of
which only the first few travel, with their total from a window sum. The usage
rollups are compared with the raw sums of the charges, refunds and reversals (over
the part built so far while their backfill is pending, with a warning saying so).

A violation means the database breaks a rule (a balance that is not the sum of
the ledger, a refund above a charge's cost, …) and must be investigated. A
warning is a normal but unfinished state, such as plan credits that have
expired but will only be written off when ``credits-desktop roll`` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    Select,
    SQLColumnExpression,
    and_,
    case,
    cast,
    exists,
    func,
    join,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    union,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    Account,
    Adjustment,
    ApprovalRequest,
    CreditGrant,
    LedgerEntry,
    Operation,
    Plan,
    Refund,
    RefundsDaily,
    Reversal,
    Staff,
    UsageCharge,
    UsageDaily,
    UsageDailyAccount,
)
from credits_desktop.store.types import utcnow

from .rollups import RollupStatus, day_of, rollup_status_in

# Any query, whatever its columns (SQLAlchemy types a Select by its column types).
AnySelect: TypeAlias = Select[*tuple[Any, ...]]
AnyRow: TypeAlias = Row[*tuple[Any, ...]]

MAX_EXAMPLES = 5
# Memory for the aggregates' hash tables during the check (PostgreSQL, this transaction).
PG_WORK_MEM = "256MB"
PURCHASED = ("purchase", "adjustment")

# The rules, as they are reported (tests and the screen refer to them by these names).
GRANT_LEDGER = "A grant's remaining credits differ from the sum of its ledger entries."
GRANT_RANGE = "A grant holds fewer than 0 or more than its granted credits."
PLAN_CACHE = "An account's plan balance differs from its plan grants' remaining credits."
PURCHASED_CACHE = (
    "An account's purchased balance differs from its purchased grants' remaining credits."
)
REFUND_CACHE = "An account's refund balance differs from its refund grants' remaining credits."
NEGATIVE_BALANCE = "An account has a negative balance."
ACCOUNT_LEDGER = "An account's ledger does not add up to its grants' remaining credits."
CHARGE_LEDGER = "A charge's ledger entries do not add up to its cost."
CHARGE_ACCOUNT = "A charge's ledger entries are booked on another account."
REFUNDED_TWICE = "A charge was refunded more than once."
REFUND_ABOVE_COST = "A refund returned more than its charge cost."
REFUND_LEDGER = "A refund's ledger entries do not add up to the refunded credits."
REVERSAL_LEDGER = "A reversal's ledger entries do not add up to its credits."
ADJUSTMENT_LEDGER = "An adjustment's ledger entries do not add up to its amount."
UNRECORDED = "Ledger entries move credits for a refund, adjustment or reversal with no record."
REMOVAL_SOURCE = "An adjustment removed credits from a grant that is not purchased credits."
EXPIRED_COUNTED = "Plan credits from an ended billing period are still counted."
PLAN_PER_PERIOD = "An account has more than one plan grant for the same billing period."
NO_ACTOR = "A ledger entry is not signed by an existing staff member."
NO_REASON = "A ledger entry has no reason."
WRONG_ACTOR = "A staff member's ledger entry is signed by someone other than the operation's actor."
UNREFUNDED_COUNT = "An account's count of unrefunded failed charges is wrong."
OWN_APPROVAL = "An approval request was decided by the staff member who made it."
ROLLUP_ACCOUNT = (
    "The per-account daily usage rollup differs from the sums of the charges and refunds."
)
ROLLUP_DAILY = "The daily usage rollup differs from the sums of the charges and refunds."
ROLLUP_REFUNDS = "The daily refunds rollup differs from the sums of the refunds and reversals."
ROLLUP_PENDING = (
    "The usage rollup is still being built, so it was checked only over the part built so "
    "far; run 'credits-desktop rollup build' to finish it."
)
ROLL_PENDING = (
    "Plan credits have expired but the period roll has not run yet; "
    "run 'credits-desktop roll'."
)

# Every rule whose breach is a violation, in the order they are checked.
RULES: tuple[str, ...] = (
    GRANT_LEDGER, GRANT_RANGE, PLAN_CACHE, PURCHASED_CACHE, REFUND_CACHE, NEGATIVE_BALANCE,
    ACCOUNT_LEDGER, CHARGE_LEDGER, CHARGE_ACCOUNT, REFUNDED_TWICE, REFUND_ABOVE_COST,
    REFUND_LEDGER, UNRECORDED, REVERSAL_LEDGER, ADJUSTMENT_LEDGER, REMOVAL_SOURCE,
    UNREFUNDED_COUNT, EXPIRED_COUNTED, PLAN_PER_PERIOD, NO_ACTOR, NO_REASON, WRONG_ACTOR,
    OWN_APPROVAL, ROLLUP_ACCOUNT, ROLLUP_DAILY, ROLLUP_REFUNDS,
)


@dataclass(frozen=True)
class Finding:
    """One broken rule: how many rows break it, and a few of them."""

    rule: str
    count: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class CheckReport:
    violations: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def rules(self) -> set[str]:
        """The rules that were found broken (violations only)."""
        return {f.rule for f in self.violations}

    def render(self) -> str:
        """A short report for a terminal or a message box."""
        s = self.stats

        def many(key: str, word: str) -> str:
            return plural(s.get(key, 0), word)

        lines = [
            f"Checked {many('accounts', 'account')}, {many('charges', 'charge')}, "
            f"{many('ledger_entries', 'ledger entry')}, {many('grants', 'grant')}, "
            f"{many('refunds', 'refund')} and {many('adjustments', 'adjustment')}.",
            f"Credits available: {s.get('credits_available', 0):,}. "
            f"Requests waiting for approval: {s.get('pending_requests', 0):,}.",
        ]
        if self.ok:
            lines.append("OK: every balance equals the ledger and every rule holds.")
        else:
            n = len(self.violations)
            lines.append(f"PROBLEMS: {n} rule{'s' if n != 1 else ''} broken.")
            lines.extend(_finding_lines(self.violations))
        if self.warnings:
            lines.append("Warnings:")
            lines.extend(_finding_lines(self.warnings))
        return "\n".join(lines)


def plural(count: int, word: str) -> str:
    """``1 charge``, ``2 charges``, ``3 ledger entries``."""
    if count == 1:
        return f"1 {word}"
    return f"{count:,} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


def _finding_lines(findings: Sequence[Finding]) -> list[str]:
    lines = []
    for f in findings:
        lines.append(f"  - {f.rule} ({f.count:,} found)")
        if f.examples:
            more = ", …" if f.count > len(f.examples) else ""
            lines.append(f"      for example: {'; '.join(f.examples)}{more}")
    return lines


Describe = Callable[[AnyRow], str]


@dataclass(frozen=True)
class _Part:
    """One rule's query: its offending rows as columns ``k`` (the row's id, which orders
    the examples), ``a``, ``b``, ``c`` (integers or NULL, for the example's text) and
    ``n``, how many offences the row stands for (1, or the size of a group)."""

    rule: str
    stmt: AnySelect
    describe: Describe
    warning: bool = False


def _row(k: Any, a: Any = None, b: Any = None, c: Any = None, *, n: Any = None) -> list[Any]:
    """The columns every part selects (a typed NULL where a rule has less to say:
    PostgreSQL would take a bare NULL in every branch of a UNION for text)."""
    return [
        k.label("k"),
        *((cast(null(), BigInteger) if v is None else v).label(name) for name, v in
          (("a", a), ("b", b), ("c", c))),
        (literal(1) if n is None else n).label("n"),
    ]


class _Checker:
    """Runs the queries, in the caller's transaction, and collects what they find."""

    def __init__(self, session: Session, at: datetime) -> None:
        self.session = session
        self.at = at
        self.violations: list[Finding] = []
        self.warnings: list[Finding] = []

    def find(self, *parts: _Part) -> None:
        """Run several rules' queries as one statement and record the broken rules.

        One statement, so that the rules reading the same big aggregate (a CTE that
        their parts share) read the ledger once. Per rule, only the first few rows
        travel, with the total from a window sum.
        """
        branches = [
            part.stmt.add_columns(literal(i).label("part")) for i, part in enumerate(parts)
        ]
        every = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery()
        ranked = select(
            every,
            func.row_number().over(partition_by=every.c.part, order_by=every.c.k).label("rn"),
            func.sum(every.c.n).over(partition_by=every.c.part).label("total"),
        ).subquery()
        rows = self.session.execute(
            select(ranked).where(ranked.c.rn <= MAX_EXAMPLES).order_by(ranked.c.part,
                                                                       ranked.c.rn)
        ).all()
        found: dict[int, list[AnyRow]] = {}
        for row in rows:
            found.setdefault(int(row.part), []).append(row)
        for i, part in enumerate(parts):
            if i not in found:
                continue
            hits = found[i]
            finding = Finding(rule=part.rule, count=int(hits[0].total),
                              examples=tuple(part.describe(r) for r in hits))
            (self.warnings if part.warning else self.violations).append(finding)


def check_database(db: Database, *, at: datetime | None = None) -> CheckReport:
    """Check every invariant of the brief; ``at`` (default now) decides what has expired."""
    when = at or utcnow()

    def work(session: Session) -> CheckReport:
        if db.is_postgresql:
            # One snapshot for every query, so that staff working meanwhile cannot make
            # two figures that were taken at different moments disagree.
            session.connection(execution_options={
                "isolation_level": "REPEATABLE READ", "postgresql_readonly": True,
            })
            # Aggregates over millions of ledger rows: hash them in memory, and skip
            # the JIT compilation that costs more than it saves on these few queries.
            session.execute(text(f"SET LOCAL work_mem = '{PG_WORK_MEM}'"))
            session.execute(text("SET LOCAL jit = off"))
        return check_session(session, at=when)

    return db.read(work)


def check_session(session: Session, *, at: datetime) -> CheckReport:
    """The same check inside a transaction the caller holds (it writes nothing)."""
    checker = _Checker(session, at)
    for step in CHECKS:
        step(checker)
    order = {rule: i for i, rule in enumerate((*RULES, ROLL_PENDING))}
    return CheckReport(
        violations=tuple(sorted(checker.violations, key=lambda f: order[f.rule])),
        warnings=tuple(checker.warnings),
        stats=_stats(session, at),
    )


# -- the ledger's sums ----------------------------------------------------------------------


def _grants_by_account() -> AnySelect:
    g = CreditGrant

    def by(cond: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((cond, g.remaining), else_=0)), 0)

    return select(
        g.account_id.label("account_id"),
        by(g.source == "plan").label("plan"),
        by(g.source.in_(PURCHASED)).label("purchased"),
        by(g.source == "refund").label("refund"),
        func.sum(g.remaining).label("total"),
    ).group_by(g.account_id)


def check_ledger(c: _Checker) -> None:
    """Grants and accounts against the ledger, and who signed each entry and why.

    One pass over the ledger, grouped by grant, account, signer and operation (a few
    rows per grant: usage and roll-overs have no operation), serves all these rules;
    each then reads the small grouped set.
    """
    le = LedgerEntry
    no_reason = or_(le.reason.is_(None), func.trim(le.reason) == "")
    groups = (
        select(
            le.grant_id, le.account_id, le.actor_id, le.operation_id,
            func.sum(le.delta).label("total"),
            func.count().label("n"),
            func.min(le.id).label("first_id"),
            func.sum(case((no_reason, 1), else_=0)).label("no_reason"),
            func.min(case((no_reason, le.id))).label("no_reason_id"),
        )
        .group_by(le.grant_id, le.account_id, le.actor_id, le.operation_id)
        .cte("ledger_groups")
    )
    per_grant = (
        select(groups.c.grant_id, func.sum(groups.c.total).label("total"))
        .group_by(groups.c.grant_id)
        .subquery()
    )
    per_account = (
        select(groups.c.account_id, func.sum(groups.c.total).label("total"))
        .group_by(groups.c.account_id)
        .subquery()
    )
    grants = _grants_by_account().subquery()
    grant_ledger = func.coalesce(per_grant.c.total, 0)
    account_ledger = func.coalesce(per_account.c.total, 0)
    account_grants = func.coalesce(grants.c.total, 0)
    c.find(
        _Part(
            GRANT_LEDGER,
            select(*_row(CreditGrant.id, CreditGrant.remaining, grant_ledger))
            .outerjoin(per_grant, per_grant.c.grant_id == CreditGrant.id)
            .where(CreditGrant.remaining != grant_ledger),
            lambda r: f"grant #{r.k}: remaining {r.a:,}, ledger {r.b:,}",
        ),
        _Part(
            ACCOUNT_LEDGER,
            select(*_row(Account.id, account_ledger, account_grants))
            .outerjoin(per_account, per_account.c.account_id == Account.id)
            .outerjoin(grants, grants.c.account_id == Account.id)
            .where(account_ledger != account_grants),
            lambda r: f"account #{r.k}: ledger {r.a:,}, grants hold {r.b:,}",
        ),
        _Part(
            NO_ACTOR,
            select(*_row(groups.c.first_id, groups.c.actor_id, n=groups.c.n))
            .where(~exists().where(Staff.id == groups.c.actor_id)),
            lambda r: f"ledger entry #{r.k} (staff id {r.a})",
        ),
        _Part(
            NO_REASON,
            select(*_row(groups.c.no_reason_id, n=groups.c.no_reason))
            .where(groups.c.no_reason > 0),
            lambda r: f"ledger entry #{r.k}",
        ),
        _Part(
            WRONG_ACTOR,
            select(*_row(groups.c.first_id, groups.c.actor_id, Operation.id,
                         Operation.actor_id, n=groups.c.n))
            .join(Operation, Operation.id == groups.c.operation_id)
            .where(groups.c.actor_id != Operation.actor_id),
            lambda r: f"ledger entry #{r.k}: staff id {r.a}, operation #{r.b} by staff id "
            f"{r.c}",
        ),
        _Part(
            OWN_APPROVAL,
            select(*_row(ApprovalRequest.id, ApprovalRequest.requested_by)).where(
                ApprovalRequest.decided_by == ApprovalRequest.requested_by
            ),
            lambda r: f"request #{r.k} (staff id {r.a})",
        ),
    )


def check_balances(c: _Checker) -> None:
    """Cached figures against the grants (no ledger involved)."""
    g = _grants_by_account().subquery()
    parts = [
        _Part(
            rule,
            select(*_row(Account.id, cached, func.coalesce(summed, 0)))
            .outerjoin(g, g.c.account_id == Account.id)
            .where(cached != func.coalesce(summed, 0)),
            lambda r: f"account #{r.k}: shows {r.a:,}, grants hold {r.b:,}",
        )
        for rule, cached, summed in (
            (PLAN_CACHE, Account.plan_balance, g.c.plan),
            (PURCHASED_CACHE, Account.purchased_balance, g.c.purchased),
            (REFUND_CACHE, Account.refund_balance, g.c.refund),
        )
    ]
    c.find(
        *parts,
        _Part(
            NEGATIVE_BALANCE,
            select(*_row(Account.id, Account.plan_balance, Account.purchased_balance,
                         Account.refund_balance)).where(
                or_(Account.plan_balance < 0, Account.purchased_balance < 0,
                    Account.refund_balance < 0)
            ),
            lambda r: f"account #{r.k}: plan {r.a:,}, purchased {r.b:,}, refund {r.c:,}",
        ),
        _Part(
            GRANT_RANGE,
            select(*_row(CreditGrant.id, CreditGrant.remaining, CreditGrant.granted)).where(
                or_(CreditGrant.remaining < 0, CreditGrant.remaining > CreditGrant.granted)
            ),
            lambda r: f"grant #{r.k}: remaining {r.a:,} of {r.b:,}",
        ),
    )


# -- charges ----------------------------------------------------------------------------------


def check_charges(c: _Checker) -> None:
    """Each charge against its ledger entries: one pass over each table."""
    le, uc = LedgerEntry, UsageCharge
    led = (
        select(
            le.charge_id,
            func.sum(case((le.kind == "charge", le.delta), else_=0)).label("charged"),
            func.sum(case((le.kind == "charge", 1), else_=0)).label("n"),
            # Every entry of a charge (drawn, refunded, reversed) is on its account.
            func.min(le.account_id).label("lo"),
            func.max(le.account_id).label("hi"),
        )
        .where(le.charge_id.is_not(None))
        .group_by(le.charge_id)
        .subquery()
    )
    drawn = -func.coalesce(led.c.charged, 0)
    n = func.coalesce(led.c.n, 0)
    wrong_sum = or_(drawn != uc.credits, and_(uc.credits == 0, n > 0))
    wrong_account = or_(led.c.lo != uc.account_id, led.c.hi != uc.account_id)
    # Only the offending charges are kept, so the two rules share a small set.
    bad = (
        select(
            uc.id, uc.credits, uc.account_id, drawn.label("drawn"),
            case((wrong_sum, 1), else_=0).label("wrong_sum"),
            case((led.c.lo != uc.account_id, led.c.lo), else_=led.c.hi).label("other"),
            case((wrong_account, 1), else_=0).label("wrong_account"),
        )
        .outerjoin(led, led.c.charge_id == uc.id)
        .where(or_(wrong_sum, wrong_account))
        .cte("charge_problems")
    )
    postgresql = c.session.get_bind().dialect.name == "postgresql"
    if postgresql:
        # Both sides can be read in charge order through their indexes and merged as
        # they stream; hashing ten million charges instead is several times slower.
        c.session.execute(text("SET LOCAL enable_hashjoin = off"))
    c.find(
        _Part(
            CHARGE_LEDGER,
            select(*_row(bad.c.id, bad.c.credits, bad.c.drawn)).where(bad.c.wrong_sum == 1),
            lambda r: f"charge #{r.k}: cost {r.a:,}, ledger drew {r.b:,}",
        ),
        _Part(
            CHARGE_ACCOUNT,
            select(*_row(bad.c.id, bad.c.account_id, bad.c.other))
            .where(bad.c.wrong_account == 1),
            lambda r: f"charge #{r.k} of account #{r.a} has ledger entries on account #{r.b}",
        ),
    )
    if postgresql:
        c.session.execute(text("SET LOCAL enable_hashjoin = on"))


def check_unrefunded(c: _Checker) -> None:
    failed = (
        select(UsageCharge.account_id.label("account_id"), func.count().label("n"))
        .where(
            UsageCharge.status == "failed",
            UsageCharge.credits > 0,
            ~exists().where(Refund.charge_id == UsageCharge.id),
        )
        .group_by(UsageCharge.account_id)
        .subquery()
    )
    actual = func.coalesce(failed.c.n, 0)
    c.find(
        _Part(
            UNREFUNDED_COUNT,
            select(*_row(Account.id, Account.unrefunded_failed, actual))
            .outerjoin(failed, failed.c.account_id == Account.id)
            .where(Account.unrefunded_failed != actual),
            lambda r: f"account #{r.k}: shows {r.a:,}, there are {r.b:,}",
        )
    )


# -- refunds, adjustments and reversals -----------------------------------------------------

KIND_CODES = {"refund": 1, "adjustment": 2, "reversal": 3}
SOURCE_CODES = {"plan": 1, "purchase": 2, "refund": 3, "adjustment": 4}


def _code(column: SQLColumnExpression[str], codes: dict[str, int]) -> ColumnElement[int]:
    """A short text column as a number, so that every part's columns are integers."""
    return case(*((column == name, code) for name, code in codes.items()), else_=0)


def _name(code: object, codes: dict[str, int]) -> str:
    return next((name for name, value in codes.items() if value == code), "unknown")


def check_staff_entries(c: _Checker) -> None:
    """What staff did (refunds, adjustments, reversals) against the ledger entries it wrote.

    Those entries are few; they are read from the ledger once into a CTE that every
    part shares.
    """
    le = LedgerEntry
    rows = (
        select(le.id, le.kind, le.delta, le.grant_id, le.charge_id, le.operation_id,
               le.account_id)
        .where(le.kind.in_(tuple(KIND_CODES)))
        .cte("staff_entries")
    )

    def summed(kind: str, *keys: str) -> Any:
        cols = [rows.c[k] for k in keys]
        return (
            select(*cols, func.sum(rows.c.delta).label("total"))
            .where(rows.c.kind == kind)
            .group_by(*cols)
            .subquery()
        )

    refunds = summed("refund", "charge_id", "operation_id")
    # Twice: two refund rows (the unique key forbids it, but a check must not trust
    # that), or 'refund' entries written by two different operations.
    twice = union(
        select(Refund.charge_id.label("charge_id"))
        .group_by(Refund.charge_id)
        .having(func.count() > 1),
        select(refunds.c.charge_id)
        .where(refunds.c.charge_id.is_not(None))
        .group_by(refunds.c.charge_id)
        .having(func.count() > 1),
    ).subquery()
    placed = func.coalesce(refunds.c.total, 0)
    reversals = summed("reversal", "operation_id", "account_id")
    reversed_ = func.coalesce(reversals.c.total, 0)
    adjustments = summed("adjustment", "operation_id", "account_id")
    adjusted = func.coalesce(adjustments.c.total, 0)
    unrecorded = or_(
        and_(rows.c.kind == "refund", ~exists().where(Refund.charge_id == rows.c.charge_id)),
        and_(rows.c.kind == "adjustment",
             ~exists().where(Adjustment.operation_id == rows.c.operation_id)),
        and_(rows.c.kind == "reversal",
             ~exists().where(Reversal.operation_id == rows.c.operation_id)),
    )
    # Removing purchased credits (an adjustment, or reversing one that added credits)
    # may only ever draw on purchased grants.
    removal = or_(
        rows.c.kind == "adjustment",
        and_(
            rows.c.kind == "reversal",
            exists().where(Reversal.operation_id == rows.c.operation_id,
                           Reversal.adjustment_id.is_not(None)),
        ),
    )
    c.find(
        _Part(
            REFUNDED_TWICE,
            select(*_row(twice.c.charge_id)),
            lambda r: f"charge #{r.k}",
        ),
        _Part(
            REFUND_ABOVE_COST,
            select(*_row(Refund.id, Refund.credits, Refund.charge_id, UsageCharge.credits))
            .join(UsageCharge, UsageCharge.id == Refund.charge_id)
            .where(Refund.credits > UsageCharge.credits),
            lambda r: f"refund #{r.k}: {r.a:,} credits for charge #{r.b} that cost {r.c:,}",
        ),
        _Part(
            REFUND_LEDGER,
            select(*_row(Refund.id, Refund.credits, placed))
            .outerjoin(refunds, and_(refunds.c.charge_id == Refund.charge_id,
                                     refunds.c.operation_id == Refund.operation_id))
            .where(placed != Refund.credits),
            lambda r: f"refund #{r.k}: {r.a:,} credits, ledger gave back {r.b:,}",
        ),
        _Part(
            UNRECORDED,
            select(*_row(rows.c.id, _code(rows.c.kind, KIND_CODES))).where(unrecorded),
            lambda r: f"ledger entry #{r.k} ({_name(r.a, KIND_CODES)})",
        ),
        _Part(
            REVERSAL_LEDGER,
            select(*_row(Reversal.id, Reversal.credits, reversed_))
            .outerjoin(reversals, and_(reversals.c.operation_id == Reversal.operation_id,
                                       reversals.c.account_id == Reversal.account_id))
            .where(reversed_ != Reversal.credits),
            lambda r: f"reversal #{r.k}: {r.a:,} credits, ledger moved {r.b:,}",
        ),
        _Part(
            ADJUSTMENT_LEDGER,
            select(*_row(Adjustment.id, Adjustment.delta, adjusted))
            .outerjoin(adjustments,
                       and_(adjustments.c.operation_id == Adjustment.operation_id,
                            adjustments.c.account_id == Adjustment.account_id))
            .where(adjusted != Adjustment.delta),
            lambda r: f"adjustment #{r.k}: {r.a:+,} credits, ledger moved {r.b:+,}",
        ),
        _Part(
            REMOVAL_SOURCE,
            select(*_row(rows.c.id, CreditGrant.id, _code(CreditGrant.source, SOURCE_CODES)))
            .join(CreditGrant, CreditGrant.id == rows.c.grant_id)
            .where(rows.c.delta < 0, removal, CreditGrant.source.not_in(PURCHASED)),
            lambda r: f"ledger entry #{r.k} took from {_name(r.b, SOURCE_CODES)} "
            f"grant #{r.a}",
        ),
    )


# -- billing periods ------------------------------------------------------------------------


def check_periods(c: _Checker) -> None:
    g = CreditGrant
    other = aliased(CreditGrant)
    # Two plan grants of one account for the same period: same start, or same end.
    same = union_all(
        select(g.account_id.label("account_id"), func.count().label("n"))
        .where(g.source == "plan")
        .group_by(g.account_id, g.period_start)
        .having(func.count() > 1),
        select(other.account_id, func.count())
        .where(other.source == "plan")
        .group_by(other.account_id, other.expires_at)
        .having(func.count() > 1),
    ).subquery()
    duplicated = (
        select(same.c.account_id, func.max(same.c.n).label("n"))
        .group_by(same.c.account_id)
        .subquery()
    )
    # Credits of a period that has ended but was not rolled yet: legitimate until the
    # roll (or the account's next write) expires them, but balances overstate until then.
    pending = (
        select(g.account_id.label("account_id"), func.sum(g.remaining).label("credits"))
        .join(Account, Account.id == g.account_id)
        .where(
            g.source == "plan",
            g.remaining > 0,
            g.expires_at <= literal(c.at, CreditGrant.expires_at.type),
            or_(Account.period_start.is_(None), g.expires_at > Account.period_start),
        )
        .group_by(g.account_id)
        .subquery()
    )
    c.find(
        _Part(
            EXPIRED_COUNTED,
            select(*_row(g.id, g.account_id, g.remaining))
            .join(Account, Account.id == g.account_id)
            .where(g.source == "plan", g.remaining > 0, Account.period_start.is_not(None),
                   g.expires_at <= Account.period_start),
            lambda r: f"grant #{r.k} of account #{r.a} still holds {r.b:,}",
        ),
        _Part(
            PLAN_PER_PERIOD,
            select(*_row(duplicated.c.account_id, duplicated.c.n)),
            lambda r: f"account #{r.k}: {r.a} plan grants for one period",
        ),
        _Part(
            ROLL_PENDING,
            select(*_row(pending.c.account_id, pending.c.credits)),
            lambda r: f"account #{r.k} ({r.a:,} credits)",
            warning=True,
        ),
    )


# -- the usage rollups -----------------------------------------------------------------------

USAGE_MEASURES = ("charges", "credits", "failed", "failed_credits", "refunded_credits")


def _built(ids: Any, status: RollupStatus, source: str) -> ColumnElement[bool]:
    """The rows of ``source`` the rollup holds: all once built, else those above the
    backfill's watermark (kept by the services) and those it has reached."""
    todo = status.built(source)
    if todo.empty:
        return literal(True)
    return or_(ids <= todo.lo, ids > todo.hi)


def _differences(keys: Sequence[str], measures: Sequence[str],
                 branches: Sequence[AnySelect], order: str) -> AnySelect:
    """The keys at which the rollup (the first branch) and the raw rows (the other
    branches, negated) do not cancel out, with the difference of each measure."""
    every = union_all(*branches).subquery()
    sums = [func.sum(every.c[m]).label(m) for m in measures]
    return (
        select(every.c[order].label("k"), *(every.c[k] for k in keys), *sums,
               literal(1).label("n"))
        .group_by(*(every.c[k] for k in keys))
        .having(or_(*(func.sum(every.c[m]) != 0 for m in measures)))
    )


def _describe_difference(what: Callable[[AnyRow], str], measures: Sequence[str]) -> Describe:
    def describe(row: AnyRow) -> str:
        off = ", ".join(f"{m.replace('_', ' ')} {int(getattr(row, m)):+,}" for m in measures
                        if getattr(row, m))
        return f"{what(row)}: the rollup is off by {off}"

    return describe


def check_rollups(c: _Checker) -> None:
    """Each rollup table against the sums of the charges, refunds and reversals.

    Per table, the rollup rows and the raw rows (with their signs turned) are put
    together and summed per key: a key whose figures do not cancel out is wrong. While
    a backfill is pending only the rows the rollup already holds are counted, and a
    warning says so.
    """
    status = rollup_status_in(c.session)
    dialect = c.session.get_bind().dialect.name
    uc, rf, rv = UsageCharge, Refund, Reversal
    charges_in = _built(uc.id, status, "charges")
    refunds_in = _built(rf.id, status, "refunds")
    reversals_in = _built(rv.id, status, "reversals")
    charge_day = day_of(uc.occurred_at, dialect)
    failed = uc.status == "failed"
    zero = literal(0)
    model = func.coalesce(uc.model, literal_column("''"))

    def with_plan(rows: Any) -> Any:
        return join(rows, Account, Account.id == uc.account_id).join(
            Plan, Plan.id == Account.plan_id)

    refunded = join(rf, uc, uc.id == rf.charge_id)
    reversed_ = join(rv, rf, rf.id == rv.refund_id).join(uc, uc.id == rf.charge_id)

    # PostgreSQL hashes each source's sums per key before they meet the rollup's rows,
    # which halves the rows the final grouping sorts; SQLite groups only by sorting, and
    # one sort of the rows themselves is cheaper there than two.
    presum = dialect == "postgresql"

    def summed(keys: list[Any], rows: Any, built: ColumnElement[bool],
               measures: list[Any]) -> AnySelect:
        """A source's ``measures`` (SQL per row; None for 0) summed per key where
        presummed, else as they are, a row each."""
        if presum:
            return select(*keys, *(zero if m is None else func.sum(m) for m in measures)
                          ).select_from(rows).where(built).group_by(*keys)
        return select(*keys, *(zero if m is None else m for m in measures)
                      ).select_from(rows).where(built)

    def usage(keys: list[Any], account_level: bool) -> list[AnySelect]:
        """The raw figures of a usage table, each measure negated; ``keys`` are the key
        columns' SQL, read from the charge."""
        def source(rows: Any) -> Any:
            return rows if account_level else with_plan(rows)

        nothing = [None] * 4
        return [
            summed(keys, source(uc), charges_in,
                   [literal(-1), -uc.credits, -case((failed, 1), else_=0),
                    -case((failed, uc.credits), else_=0), None]),
            summed(keys, source(refunded), refunds_in, [*nothing, -rf.credits]),
            summed(keys, source(reversed_), reversals_in, [*nothing, rf.credits]),
        ]

    uda, ud, rd = UsageDailyAccount, UsageDaily, RefundsDaily
    measures = [getattr(uda, m) for m in USAGE_MEASURES]
    account_keys = ("account_id", "day", "feature_code")
    by_account = _differences(
        account_keys, USAGE_MEASURES,
        [select(uda.account_id, uda.day, uda.feature_code, *measures),
         *usage([uc.account_id, charge_day, uc.feature_code], True)],
        "account_id",
    )
    daily_keys = ("day", "feature_code", "model", "plan_code")
    daily = _differences(
        daily_keys, USAGE_MEASURES,
        [select(ud.day, ud.feature_code, ud.model, ud.plan_code,
                *(getattr(ud, m) for m in USAGE_MEASURES)),
         *usage([charge_day, uc.feature_code, model, Plan.code], False)],
        "day",
    )
    refund_measures = ("refunds", "credits")
    refunds = _differences(
        ("day", "feature_code", "plan_code"), refund_measures,
        [select(rd.day, rd.feature_code, rd.plan_code, rd.refunds, rd.credits),
         *(summed([made, uc.feature_code, Plan.code], with_plan(rows), built,
                  [literal(sign), sign * rf.credits])
           for made, sign, rows, built in (
               (day_of(rf.created_at, dialect), -1, refunded, refunds_in),
               (day_of(rv.created_at, dialect), 1, reversed_, reversals_in)))],
        "day",
    )
    for rule, stmt, what, names in (
        (ROLLUP_ACCOUNT, by_account,
         lambda r: f"account #{r.account_id} on {r.day}, {r.feature_code}", USAGE_MEASURES),
        (ROLLUP_DAILY, daily,
         lambda r: f"{r.day}, {r.feature_code}, model '{r.model}', plan {r.plan_code}",
         USAGE_MEASURES),
        (ROLLUP_REFUNDS, refunds,
         lambda r: f"{r.day}, {r.feature_code}, plan {r.plan_code}", refund_measures),
    ):
        # One statement per table: their columns differ, so they cannot share a UNION.
        c.find(_Part(rule, stmt, _describe_difference(what, names)))
    if not status.ready:
        c.warnings.append(Finding(
            rule=ROLLUP_PENDING, count=status.total - status.done,
            examples=tuple(
                f"{source} up to id {status.position(source):,} of {status.watermark(source):,}"
                for source in ("charges", "refunds", "reversals")
                if not status.built(source).empty
            ),
        ))


CHECKS: tuple[Callable[[_Checker], None], ...] = (
    check_ledger,
    check_balances,
    check_charges,
    check_unrefunded,
    check_staff_entries,
    check_periods,
    check_rollups,
)


def _stats(session: Session, at: datetime) -> dict[str, int]:
    def count(stmt: AnySelect) -> int:
        return int(session.scalar(stmt) or 0)

    live = or_(CreditGrant.expires_at.is_(None),
               CreditGrant.expires_at > literal(at, CreditGrant.expires_at.type))
    return {
        "accounts": count(select(func.count()).select_from(Account)),
        "charges": count(select(func.count()).select_from(UsageCharge)),
        "ledger_entries": count(select(func.count()).select_from(LedgerEntry)),
        "grants": count(select(func.count()).select_from(CreditGrant)),
        "refunds": count(select(func.count()).select_from(Refund)),
        "adjustments": count(select(func.count()).select_from(Adjustment)),
        "pending_requests": count(
            select(func.count()).select_from(ApprovalRequest)
            .where(ApprovalRequest.status == "pending")
        ),
        "credits_available": count(
            select(func.coalesce(func.sum(CreditGrant.remaining), 0)).where(live)
        ),
    }
