"""What one account's charts show: usage per feature over time, balances over time, and
the figures behind the credits forecast.

* :func:`usage_series`: credits used per feature per day, week or month, read from the
  per-account rollup ``usage_daily_account`` (exact per-day sums kept in the same
  transaction as the charges and refunds), so a year by day is a few hundred rows
  whatever the number of charges. Every bucket of the range is there, empty ones with
  zeros. Days are UTC calendar days: the rollup knows no other.
* :func:`balance_history`: plan, purchased and refund credits over time as step series,
  straight from the ledger (each entry moves one grant, whose source says which
  balance), with the billing resets to mark. It ends on the balances the account's
  cards show (``queries.account_summary``).
* :func:`forecast_inputs`: recent daily usage, balances, next reset and the catalogue,
  for ``domain.forecast``.
* :func:`load_chart_data`: all of it for one screen, as the account's Usage tab asks.
* :func:`usage_csv_rows` and :func:`write_export`: the exports (a file written beside
  the target and moved into place, and an audit row; only roles allowed to export).

Ranges are UTC calendar days ``start <= day < end`` (:class:`dashboard.DateRange`,
shared with the dashboard so the two read alike), as are the bucket rules (weeks start
on Monday, months on the 1st, the first and last bucket cut to the range).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.orm import Session

from credits_desktop.domain.forecast import (
    MONTHS,
    WINDOW_DAYS,
    Forecast,
    ForecastInputs,
    PackageOption,
    PlanOption,
    forecast,
)
from credits_desktop.domain.periods import Period, period_containing, periods_from
from credits_desktop.domain.permissions import Action, Role, decide
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    Account,
    AuditEvent,
    CreditGrant,
    CreditPackage,
    Feature,
    LedgerEntry,
    Plan,
    UsageDailyAccount,
)
from credits_desktop.store.types import utcnow

from .dashboard import (
    Bucket,
    DateRange,
    Granularity,
    add_months,
    check_range,
    make_buckets,
    snapshot,
)
from .errors import CreditsDeskError, InvalidInput, NotFound, PermissionDenied
from .operations import Actor, active_staff, audit_refusal
from .queries import AccountSummary, account_summary

__all__ = [
    "CSV_COLUMNS",
    "BalanceHistory",
    "BalancePoint",
    "BalanceStep",
    "Bucket",
    "ChartData",
    "DateRange",
    "FeatureSeries",
    "Granularity",
    "RangePreset",
    "Usage",
    "UsageSeries",
    "balance_history",
    "balance_step",
    "default_granularity",
    "forecast_inputs",
    "load_chart_data",
    "preset_range",
    "usage_csv_rows",
    "usage_series",
    "write_export",
]

MAX_ACCOUNT_ID = 2**31 - 1


# -- usage per feature ----------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Charges of one feature in one bucket (every status), and what was refunded of
    them (whenever refunded, less reversed refunds)."""

    charges: int = 0
    credits: int = 0
    failed: int = 0
    failed_credits: int = 0
    refunded_credits: int = 0

    @property
    def used(self) -> int:
        """Credits the customer was finally charged: charged less refunded."""
        return self.credits - self.refunded_credits

    @property
    def succeeded_credits(self) -> int:
        """Credits charged by the charges that succeeded."""
        return self.credits - self.failed_credits

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.charges + other.charges,
            self.credits + other.credits,
            self.failed + other.failed,
            self.failed_credits + other.failed_credits,
            self.refunded_credits + other.refunded_credits,
        )


ZERO = Usage()


@dataclass(frozen=True)
class FeatureSeries:
    """One feature's usage, one value per bucket of its :class:`UsageSeries`."""

    code: str
    name: str
    values: tuple[Usage, ...]

    @property
    def total(self) -> Usage:
        return sum(self.values, ZERO)


@dataclass(frozen=True)
class UsageSeries:
    """An account's usage per feature over ``range``, bucket by bucket.

    ``features`` are the features with at least one charge in the range, in the
    catalogue's order (by name); ``catalogue`` is every feature code in that order, so
    a chart can give each feature the same colour whatever the range shows.
    """

    account_id: int
    range: DateRange
    granularity: Granularity
    buckets: tuple[Bucket, ...]
    features: tuple[FeatureSeries, ...]
    catalogue: tuple[str, ...]

    def feature(self, code: str) -> FeatureSeries:
        for series in self.features:
            if series.code == code:
                return series
        return FeatureSeries(code, code, (ZERO,) * len(self.buckets))

    def bucket_total(self, index: int, codes: Sequence[str] | None = None) -> Usage:
        """The bucket's usage summed over ``codes`` (every feature by default)."""
        chosen = self.features if codes is None else [self.feature(c) for c in codes]
        return sum((f.values[index] for f in chosen), ZERO)

    @property
    def total(self) -> Usage:
        return sum((f.total for f in self.features), ZERO)


def usage_series(
    db: Database,
    account_id: int,
    *,
    start: date,
    end: date,
    granularity: Granularity | str = Granularity.DAY,
) -> UsageSeries:
    """The account's usage per feature over the UTC days ``start <= day < end``, by day,
    ISO week (from Monday) or calendar month; every bucket present, empty ones as 0."""
    aid = _check_id(account_id)
    rng = check_range(start, end)
    grain = _granularity(granularity)
    buckets = make_buckets(rng, grain)

    def work(session: Session) -> UsageSeries:
        _require_account(session, aid)
        catalogue = _catalogue(session)
        rows = session.execute(
            select(
                UsageDailyAccount.day,
                UsageDailyAccount.feature_code,
                UsageDailyAccount.charges,
                UsageDailyAccount.credits,
                UsageDailyAccount.failed,
                UsageDailyAccount.failed_credits,
                UsageDailyAccount.refunded_credits,
            ).where(
                UsageDailyAccount.account_id == aid,
                UsageDailyAccount.day >= rng.start,
                UsageDailyAccount.day < rng.end,
            )
        ).all()
        index = _day_index(buckets)
        sums: dict[str, list[Usage]] = {}
        for day, code, charges, credits, failed, failed_credits, refunded in rows:
            values = sums.setdefault(str(code), [ZERO] * len(buckets))
            at = index[_as_date(day)]
            values[at] = values[at] + Usage(int(charges), int(credits), int(failed),
                                            int(failed_credits), int(refunded))
        names = dict(catalogue)
        order = [code for code, _name in catalogue]
        # A code the catalogue lacks cannot happen (foreign key), but would sort last.
        order += sorted(set(sums) - set(order))
        features = tuple(
            FeatureSeries(code, names.get(code, code), tuple(sums[code]))
            for code in order if code in sums and any(v.charges for v in sums[code])
        )
        return UsageSeries(aid, rng, grain, buckets, features, tuple(order))

    return db.read(work)


# -- ranges -----------------------------------------------------------------------------------


class RangePreset(StrEnum):
    """The ranges the Usage tab offers."""

    CURRENT_PERIOD = "current_period"
    LAST_30_DAYS = "last_30_days"
    LAST_90_DAYS = "last_90_days"
    LAST_12_MONTHS = "last_12_months"
    CUSTOM = "custom"


def preset_range(
    preset: RangePreset | str,
    *,
    today: date,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    custom: tuple[date, date] | None = None,
) -> DateRange:
    """The UTC days a preset covers, ``today`` (a UTC day) included.

    The current billing period runs from its start to its end (periods begin at 00:00
    UTC, so they are whole days), the last 30 or 90 days end today, the last 12
    months are this calendar month and the 11 before it. ``custom`` is (first day, last
    day), both included. An account with no period yet falls back to the last 30 days.
    """
    try:
        chosen = RangePreset(preset)
    except ValueError:
        raise InvalidInput("Choose a range from the list.", "preset") from None
    tomorrow = today + timedelta(days=1)
    if chosen is RangePreset.CURRENT_PERIOD and period_start is not None \
            and period_end is not None:
        first = period_start.astimezone(UTC)
        last = period_end.astimezone(UTC)
        end = last.date() if last.time() == time(0) else last.date() + timedelta(days=1)
        return check_range(first.date(), end)
    if chosen is RangePreset.LAST_90_DAYS:
        return DateRange(today - timedelta(days=89), tomorrow)
    if chosen is RangePreset.LAST_12_MONTHS:
        return DateRange(add_months(today.replace(day=1), -11), tomorrow)
    if chosen is RangePreset.CUSTOM:
        if custom is None:
            raise InvalidInput("Choose the first and last day of the range.", "custom")
        first_day, last_day = custom
        if last_day < first_day:
            raise InvalidInput("The range must end on or after the day it starts.", "custom")
        return check_range(first_day, last_day + timedelta(days=1))
    return DateRange(today - timedelta(days=29), tomorrow)


def default_granularity(rng: DateRange) -> Granularity:
    """Bars a chart of ``rng`` reads best in: days up to two months, weeks up to about
    half a year, months beyond."""
    if rng.days <= 62:
        return Granularity.DAY
    if rng.days <= 190:
        return Granularity.WEEK
    return Granularity.MONTH


# -- balances over time ---------------------------------------------------------------------


@dataclass(frozen=True)
class BalancePoint:
    """The account's balances from ``at`` until the next point."""

    at: datetime
    plan: int
    purchased: int
    refund: int

    @property
    def total(self) -> int:
        return self.plan + self.purchased + self.refund


@dataclass(frozen=True)
class BalanceHistory:
    """Balances as steps from ``start`` to ``end``.

    ``points`` start with the balances just before ``start``, then one point for each
    instant up to ``end`` included at which a ledger entry (or the end of a billing
    period that the roll job has not yet written down, see ``pending_expiries``)
    changed them, and a closing point at ``end`` or now, whichever is sooner. Each
    point holds until the next. ``resets`` are the billing resets in the range, past
    and coming, ``end`` included.
    """

    account_id: int
    start: datetime
    end: datetime
    points: tuple[BalancePoint, ...]
    resets: tuple[datetime, ...]
    # Ends of periods whose unused plan credits expired but whose expiry entry the
    # roll job has not written yet: the steps there are not (yet) in the ledger.
    pending_expiries: tuple[datetime, ...]

    def at(self, moment: datetime) -> BalancePoint:
        """The balances in force at ``moment`` (the opening ones before ``start``)."""
        found = self.points[0]
        for point in self.points:
            if point.at > moment:
                break
            found = point
        return found


class BalanceStep(StrEnum):
    """How finely :func:`balance_history` follows the ledger."""

    ENTRY = "entry"  # a point at every instant an entry was made
    HOUR = "hour"  # a point at the last entry of each UTC hour
    DAY = "day"  # a point at the last entry of each UTC day


def balance_step(rng: DateRange) -> BalanceStep:
    """A step fine enough for a chart of ``rng`` and cheap for a busy account (one with
    thousands of charges a month): hours up to about two months, days beyond."""
    return BalanceStep.HOUR if rng.days <= 62 else BalanceStep.DAY


def balance_history(
    db: Database,
    account_id: int,
    *,
    start: date | datetime,
    end: date | datetime,
    at: datetime | None = None,
    step: BalanceStep | str = BalanceStep.ENTRY,
) -> BalanceHistory:
    """Plan, purchased and refund credits of the account from ``start`` to ``end``.

    Dates mean 00:00 UTC of that day (a chart of the days ``start <= day < end`` ends
    on the instant ``end``). Every ledger entry moves one grant, and the grant's
    source says which balance: plan, purchased (purchases and staff adjustments) or
    refund. Entries are taken in time order (then in the order written). Plan credits
    of a period that has ended by ``at`` (default now) count as expired at the
    period's end even if the roll job has not written the expiry yet, as the
    account's cards count them, so the last point equals ``queries.account_summary``
    at ``at``, and the cached balances once the roll is current.

    ``step``: with ``entry`` there is a point at every instant an entry was made; with
    ``hour`` or ``day`` the database sums the entries of each UTC hour or day and there
    is one point per hour or day, at its last entry. Every point is exact either way
    (the ledger's sum at its instant); the coarser steps only leave out the changes in
    between, which a chart of months cannot show anyway, and read a busy account's
    year in a few hundred rows instead of tens of thousands.
    """
    aid = _check_id(account_id)
    low = _instant(start, "start")
    high = _instant(end, "end")
    if high <= low:
        raise InvalidInput("The range must end after it starts.", "end")
    now = utcnow() if at is None else _instant(at, "at")
    try:
        fineness = BalanceStep(str(step))
    except ValueError:
        raise InvalidInput("Choose entries, hours or days.", "step") from None

    def work(session: Session) -> BalanceHistory:
        snapshot(session)
        account = session.get(Account, aid)
        if account is None:
            raise NotFound(f"There is no account with id {aid}.")
        source = CreditGrant.source
        opening = {"plan": 0, "purchased": 0, "refund": 0}
        for grant_source, total in session.execute(
            select(source, func.sum(LedgerEntry.delta))
            .join(CreditGrant, CreditGrant.id == LedgerEntry.grant_id)
            .where(LedgerEntry.account_id == aid, LedgerEntry.created_at < low)
            .group_by(source)
        ):
            opening[_kind(grant_source)] += int(total or 0)
        in_range = (LedgerEntry.account_id == aid, LedgerEntry.created_at >= low,
                    LedgerEntry.created_at <= high)
        # (step, time, order, kind, delta): the ledger's moves, then pending expiries.
        moves: list[tuple[datetime, datetime, int, str, int]] = []
        if fineness is BalanceStep.ENTRY:
            for moment, entry_id, grant_source, delta in session.execute(
                select(LedgerEntry.created_at, LedgerEntry.id, source, LedgerEntry.delta)
                .join(CreditGrant, CreditGrant.id == LedgerEntry.grant_id)
                .where(*in_range)
            ):
                moves.append((moment, moment, int(entry_id), _kind(grant_source),
                              int(delta)))
        else:
            bucket = _time_bucket(session, fineness)
            for last, grant_source, delta in session.execute(
                select(func.max(LedgerEntry.created_at), source, func.sum(LedgerEntry.delta))
                .join(CreditGrant, CreditGrant.id == LedgerEntry.grant_id)
                .where(*in_range)
                .group_by(bucket, source)
            ):
                moves.append((_truncate(last, fineness), last, 0, _kind(grant_source),
                              int(delta or 0)))
        pending: list[datetime] = []
        for expires_at, remaining in session.execute(
            select(CreditGrant.expires_at, CreditGrant.remaining).where(
                CreditGrant.account_id == aid,
                CreditGrant.source == "plan",
                CreditGrant.remaining > 0,
                CreditGrant.expires_at <= now,
            )
        ):
            if expires_at is None:
                continue
            if expires_at < low:
                opening["plan"] -= int(remaining)
            elif expires_at <= high:
                # After every entry of that instant: nothing is drawn from a grant once
                # it has expired, so what it holds now is what it held then.
                key = expires_at if fineness is BalanceStep.ENTRY else \
                    _truncate(expires_at, fineness)
                moves.append((key, expires_at, MAX_ORDER, "plan", -int(remaining)))
                pending.append(expires_at)
        moves.sort(key=lambda m: (m[0], m[1], m[2]))
        current = dict(opening)
        points = [BalancePoint(low, opening["plan"], opening["purchased"], opening["refund"])]
        for number, (key, moment, _order, kind, delta) in enumerate(moves):
            current[kind] += delta
            if number + 1 < len(moves) and moves[number + 1][0] == key:
                continue  # one point per step, after its last move
            points.append(BalancePoint(moment, current["plan"], current["purchased"],
                                       current["refund"]))
        closing = min(high, max(now, low))
        if points[-1].at < closing:
            last_point = points[-1]
            points.append(BalancePoint(closing, last_point.plan, last_point.purchased,
                                       last_point.refund))
        resets = _resets(session, account, low, high)
        return BalanceHistory(aid, low, high, tuple(points), resets,
                              tuple(sorted(set(pending))))

    return db.read(work)


def _time_bucket(session: Session, step: BalanceStep) -> ColumnElement[Any]:
    """The UTC hour or day of a ledger entry, as SQL (constants inline, so PostgreSQL
    sees one GROUP BY expression whatever the parameters)."""
    if session.get_bind().dialect.name == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), LedgerEntry.created_at)
        return func.date_trunc(literal_column(f"'{step.value}'"), utc)
    # SQLite stores the naive UTC time as text 'YYYY-MM-DD HH:MM:SS.ffffff'.
    width = 13 if step is BalanceStep.HOUR else 10
    return func.substr(LedgerEntry.created_at, literal_column("1"),
                       literal_column(str(width)))


def _truncate(moment: datetime, step: BalanceStep) -> datetime:
    moment = moment.astimezone(UTC)
    if step is BalanceStep.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


MAX_ORDER = 2**63


def _kind(source: object) -> str:
    if source == "plan":
        return "plan"
    if source == "refund":
        return "refund"
    return "purchased"


def _resets(session: Session, account: Account, low: datetime,
            high: datetime) -> tuple[datetime, ...]:
    """Billing resets in ``low <= t <= high``: the starts and ends of the plan grants
    (the periods as they were), and the periods from the account's current one on."""
    found: set[datetime] = set()
    for period_start, expires_at in session.execute(
        select(CreditGrant.period_start, CreditGrant.expires_at).where(
            CreditGrant.account_id == account.id, CreditGrant.source == "plan")
    ):
        found.update(t for t in (period_start, expires_at) if t is not None)
    if account.period_start is not None and account.period_end is not None:
        first = Period(account.period_start, account.period_end)
    else:
        first = period_containing(account.billing_day, account.created_at)
    # Plans with no allotment have no plan grant: their past periods come from the
    # billing day, from the period the account opened in.
    opened = period_containing(account.billing_day, account.created_at)
    for chain in (opened, first):
        for period in periods_from(account.billing_day, chain, high):
            found.update((period.start, period.end))
    return tuple(sorted(t for t in found if low <= t <= high and t >= opened.start))


# -- the forecast's inputs ------------------------------------------------------------------


def forecast_inputs(db: Database, account_id: int, at: datetime | None = None
                    ) -> ForecastInputs:
    """What ``domain.forecast.forecast`` needs for the account at ``at`` (default now):
    the net credits used on each of the last :data:`WINDOW_DAYS` complete UTC days (or
    since the account opened), the live balances, the next reset, the plan, the net
    credits used in each of the last :data:`MONTHS` complete billing periods, and the
    active plans and packages of the catalogue (plans carry no price there)."""
    summary = account_summary(db, account_id, at=at)
    return db.read(lambda session: _forecast_inputs(session, summary, _when(at)))


def _forecast_inputs(session: Session, summary: AccountSummary,
                     now: datetime) -> ForecastInputs:
    account = session.get(Account, summary.id)
    if account is None:
        raise NotFound(f"There is no account with id {summary.id}.")
    today = now.date()
    opened = account.created_at.astimezone(UTC).date()
    window_start = max(today - timedelta(days=WINDOW_DAYS), opened)
    periods = _past_periods(account, summary, now)
    earliest = min([window_start, *(p.start.date() for p in periods)])
    daily: dict[date, int] = {}
    for day, used in session.execute(
        select(UsageDailyAccount.day,
               func.sum(UsageDailyAccount.credits - UsageDailyAccount.refunded_credits))
        .where(UsageDailyAccount.account_id == account.id,
               UsageDailyAccount.day >= earliest, UsageDailyAccount.day < today)
        .group_by(UsageDailyAccount.day)
    ):
        daily[_as_date(day)] = int(used or 0)
    recent = tuple(daily.get(window_start + timedelta(days=n), 0)
                   for n in range((today - window_start).days))
    period_usage = tuple(
        sum(v for d, v in daily.items() if p.start.date() <= d < p.end.date())
        for p in periods
    )
    plans = tuple(
        PlanOption(code=r[0], name=r[1], allotment=int(r[2]))
        for r in session.execute(
            select(Plan.code, Plan.name, Plan.monthly_allotment).where(Plan.active)
            .order_by(Plan.monthly_allotment, Plan.code))
    )
    packages = tuple(
        PackageOption(code=r[0], name=r[1], credits=int(r[2]), price_cents=int(r[3]))
        for r in session.execute(
            select(CreditPackage.code, CreditPackage.name, CreditPackage.credits,
                   CreditPackage.price_cents).where(CreditPackage.active)
            .order_by(CreditPackage.credits, CreditPackage.code))
    )
    next_reset = summary.next_reset if summary.next_reset and summary.next_reset > now \
        else None
    return ForecastInputs(
        at=now,
        recent_daily=recent,
        plan_left=summary.plan_left,
        purchased=summary.purchased,
        refund=summary.refund,
        next_reset=next_reset,
        plan_code=summary.plan_code,
        allotment=summary.allotment,
        period_usage=period_usage,
        plans=plans,
        packages=packages,
    )


def _past_periods(account: Account, summary: AccountSummary, now: datetime) -> list[Period]:
    """The last complete billing periods before the current one (at most MONTHS),
    oldest first, leaving out any that ended before the account opened."""
    if summary.period_start is None:
        return []
    found: list[Period] = []
    end = summary.period_start
    while len(found) < MONTHS and end > account.created_at:
        period = period_containing(account.billing_day, end - timedelta(microseconds=1))
        period = Period(period.start, end)
        found.append(period)
        end = period.start
    return list(reversed([p for p in found if p.end <= now]))


# -- one screen's worth -----------------------------------------------------------------------


@dataclass(frozen=True)
class ChartData:
    """Everything the account's Usage tab draws, read for one request."""

    summary: AccountSummary
    range: DateRange
    series: UsageSeries
    balances: BalanceHistory
    forecast: Forecast


def load_chart_data(
    db: Database,
    account_id: int,
    *,
    preset: RangePreset | str = RangePreset.CURRENT_PERIOD,
    granularity: Granularity | str | None = None,
    custom: tuple[date, date] | None = None,
    at: datetime | None = None,
) -> ChartData:
    """The usage series, balance history and forecast for a preset range (see
    :func:`preset_range`; today is ``at``'s UTC day). ``granularity`` None picks
    :func:`default_granularity`."""
    now = _when(at)
    summary = account_summary(db, account_id, at=now)
    rng = preset_range(preset, today=now.date(), period_start=summary.period_start,
                       period_end=summary.next_reset, custom=custom)
    grain = default_granularity(rng) if granularity is None else _granularity(granularity)
    series = usage_series(db, summary.id, start=rng.start, end=rng.end, granularity=grain)
    history = balance_history(db, summary.id, start=rng.start, end=rng.end, at=now,
                              step=balance_step(rng))
    inputs = db.read(lambda session: _forecast_inputs(session, summary, now))
    return ChartData(summary, rng, series, history, forecast(inputs))


# -- exports ----------------------------------------------------------------------------------

CSV_COLUMNS = (
    "Bucket start (UTC day)",
    "Bucket end (UTC day, included)",
    "Feature code",
    "Feature",
    "Charges",
    "Credits charged",
    "Failed charges",
    "Failed credits",
    "Refunded credits",
    "Credits used",
)


def usage_csv_rows(series: UsageSeries, codes: Sequence[str] | None = None) -> list[list[str]]:
    """The series as CSV rows (header first): one row per bucket and feature shown
    (``codes``, default every feature with charges), zeros included, so the "Credits
    used" column adds up to the chart's total."""
    chosen = series.features if codes is None else [series.feature(c) for c in codes]
    out = [list(CSV_COLUMNS)]
    for number, bucket in enumerate(series.buckets):
        for feature in chosen:
            u = feature.values[number]
            out.append([
                bucket.start.isoformat(), bucket.last.isoformat(), feature.code,
                _cell(feature.name), str(u.charges), str(u.credits), str(u.failed),
                str(u.failed_credits), str(u.refunded_credits), str(u.used),
            ])
    return out


def write_export(
    db: Database,
    actor: Actor,
    account_id: int,
    path: str | os.PathLike[str],
    data: bytes,
    *,
    what: str,
) -> Path:
    """Write an export of the account's charts (``data``, already rendered) to
    ``path`` and record it in the audit log; ``what`` says what it is ("usage chart as
    PNG"). Only roles allowed to export may: a refusal is audited and nothing is
    written. The file is written beside ``path`` and moved into place, so a failed
    export never leaves half a file."""
    aid = _check_id(account_id)
    target = _export_path(path)
    started = utcnow()

    def check(session: Session) -> None:
        staff = active_staff(session, actor)
        decision = decide(Role(staff.role), Action.EXPORT)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)
        _require_account(session, aid)

    try:
        db.read(check)
    except PermissionDenied as exc:
        audit_refusal(db, actor, "export", (aid,), exc.message, started)
        raise
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                             dir=target.parent)
    except OSError as exc:
        raise _file_error(target, exc) from exc
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise _file_error(target, exc) from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise

    def audit(session: Session) -> None:
        session.add(AuditEvent(
            at=utcnow(), actor_id=actor.staff_id, action="export", outcome="applied",
            account_id=aid,
            detail=f"Exported the {what} of account #{aid} to {target.name}."[:2000],
        ))

    db.write(audit)
    return target


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    # A spreadsheet would run such a cell as a formula.
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _export_path(path: object) -> Path:
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise InvalidInput("Choose a file to export to.", "path")
    target = Path(path)
    if target.is_dir():
        raise InvalidInput(f"'{target}' is a folder; choose a file name.", "path")
    if not target.parent.is_dir():
        raise InvalidInput(f"The folder '{target.parent}' does not exist.", "path")
    return target


def _file_error(target: Path, exc: OSError) -> CreditsDeskError:
    why = exc.strerror or "the file could not be written"
    return CreditsDeskError(
        f"The export could not be written to '{target}': {why.rstrip('.')}. "
        "Nothing was exported; choose another place and try again."
    )


# -- shared checks ---------------------------------------------------------------------------


def _check_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("Choose an account.", "account_id")
    return value


def _require_account(session: Session, account_id: int) -> None:
    # PostgreSQL refuses even to compare an INTEGER column with a larger number.
    if not 0 < account_id <= MAX_ACCOUNT_ID or session.scalar(
            select(Account.id).where(Account.id == account_id)) is None:
        raise NotFound(f"There is no account with id {account_id}.")


def _granularity(value: object) -> Granularity:
    try:
        return Granularity(str(value))
    except ValueError:
        raise InvalidInput("Choose days, weeks or months.", "granularity") from None


def _instant(value: object, field: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInput("Times must be given with a time zone.", field)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    raise InvalidInput("Choose a day or a time.", field)


def _when(at: datetime | None) -> datetime:
    return utcnow() if at is None else _instant(at, "at")


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _catalogue(session: Session) -> list[tuple[str, str]]:
    rows = session.execute(select(Feature.code, Feature.name)).all()
    # Sorted here, not in SQL, so both databases agree whatever their collation.
    return sorted(((str(c), str(n)) for c, n in rows), key=lambda r: (r[1].casefold(), r[0]))


def _day_index(buckets: Sequence[Bucket]) -> dict[date, int]:
    index: dict[date, int] = {}
    for number, bucket in enumerate(buckets):
        day = bucket.start
        while day < bucket.end:
            index[day] = number
            day += timedelta(days=1)
    return index
