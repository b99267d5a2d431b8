"""The credits forecast: "how many credits do I actually need?".

Given an account's recent daily usage, its balances, its next plan reset and the
catalogue, :func:`forecast` says

* at what pace the account uses credits,
* when its credits run out, or that they last past the next reset,
* how many plan credits will be left unused at that reset (they do not carry over),
* which plan (with top-up packages if even the largest plan falls short) would have
  covered its last three billing months at the lowest price,

and :meth:`Forecast.sentences` says it in plain English that a support agent can paste
into a reply.

The pace
--------
The pace is the mean of the net credits used (charged minus refunded) per complete UTC
day over the last :data:`WINDOW_DAYS` days, or since the account opened if it is
younger. Four whole weeks rather than 30 days: usage of an ad tool follows the working
week, and a 30-day window counts two weekdays twice, which skews the mean by the day of
the week the forecast is made; 28 days weigh every weekday equally. Today is left out
because it is not over: a morning would read as a slow day. A mean (not a median or a
recent-days weighting) because the question is how many credits a month needs, which
is exactly the mean times the days, bursty days included. The arithmetic is done in
exact fractions so that "runs out exactly at the reset" is decided exactly.

Pure Python: no clock, no database, no Qt. Times are UTC; ``sentences`` takes the time
zone to show dates in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from fractions import Fraction

from credits_desktop.domain._checks import require_int, require_utc

__all__ = [
    "MONTHS",
    "WINDOW_DAYS",
    "Forecast",
    "ForecastInputs",
    "Pace",
    "PackageOption",
    "PlanOption",
    "Recommendation",
    "cheapest_packages",
    "forecast",
    "recommend_plan",
]

# Days of recent usage the pace is taken over (four whole weeks; see the module doc).
WINDOW_DAYS = 28
# Billing months the plan recommendation looks back over.
MONTHS = 3
# Beyond this the run-out date means nothing (and would overflow a datetime).
HORIZON_DAYS = 36_500
# Above this many package-size units the cheapest-packages search fills the bulk with
# the best-value package and searches exactly only the remainder.
_EXACT_UNITS = 50_000

_DAY_SECONDS = 86_400


class Pace(StrEnum):
    """What the recent usage says."""

    NO_HISTORY = "no_history"  # no complete day of history yet
    IDLE = "idle"  # no credits used over the window
    USING = "using"


@dataclass(frozen=True)
class PlanOption:
    """A plan as the recommendation weighs it; ``monthly_price_cents`` None when the
    catalogue has no price for plans (then the smallest allotment that covers wins)."""

    code: str
    name: str
    allotment: int
    monthly_price_cents: int | None = None

    def __post_init__(self) -> None:
        if require_int(self.allotment, "A plan's allotment") < 0:
            raise ValueError("A plan's allotment cannot be negative.")
        if self.monthly_price_cents is not None and \
                require_int(self.monthly_price_cents, "A plan's price") < 0:
            raise ValueError("A plan's price cannot be negative.")


@dataclass(frozen=True)
class PackageOption:
    """A top-up package: ``credits`` for ``price_cents``."""

    code: str
    name: str
    credits: int
    price_cents: int

    def __post_init__(self) -> None:
        if require_int(self.credits, "A package's credits") <= 0:
            raise ValueError("A package must hold at least one credit.")
        if require_int(self.price_cents, "A package's price") < 0:
            raise ValueError("A package's price cannot be negative.")


@dataclass(frozen=True)
class ForecastInputs:
    """Everything the forecast needs, gathered by ``services.account_charts``.

    ``recent_daily``: net credits used per complete UTC day before ``at``'s day, oldest
    first, at most :data:`WINDOW_DAYS` (fewer for a young account, none for one opened
    today). ``period_usage``: net credits used in each of the last complete billing
    periods, oldest first, at most :data:`MONTHS`. Balances are the live ones at ``at``;
    ``next_reset`` is when the current billing period ends (None before the first).
    """

    at: datetime
    recent_daily: tuple[int, ...]
    plan_left: int
    purchased: int
    refund: int
    next_reset: datetime | None
    plan_code: str
    allotment: int
    period_usage: tuple[int, ...] = ()
    plans: tuple[PlanOption, ...] = ()
    packages: tuple[PackageOption, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", require_utc(self.at, "The forecast time"))
        if self.next_reset is not None:
            reset = require_utc(self.next_reset, "The next reset")
            if reset <= self.at:
                raise ValueError("The next reset must come after the forecast time.")
            object.__setattr__(self, "next_reset", reset)
        for name in ("plan_left", "purchased", "refund", "allotment"):
            if require_int(getattr(self, name), f"The {name.replace('_', ' ')}") < 0:
                raise ValueError(f"The {name.replace('_', ' ')} cannot be negative.")
        object.__setattr__(self, "recent_daily", tuple(self.recent_daily))
        object.__setattr__(self, "period_usage", tuple(self.period_usage))
        for value in (*self.recent_daily, *self.period_usage):
            if require_int(value, "Credits used") < 0:
                raise ValueError("Credits used cannot be negative.")
        object.__setattr__(self, "plans", tuple(self.plans))
        object.__setattr__(self, "packages", tuple(self.packages))

    @property
    def total(self) -> int:
        return self.plan_left + self.purchased + self.refund


@dataclass(frozen=True)
class Recommendation:
    """The plan (and packages) that would have covered ``months`` at the lowest price.

    ``packages`` are (package, how many), largest first; ``shortfall`` is the credits
    the plan alone would have missed over those months, which the packages cover (they
    never expire, so one month's extra can carry to the next).
    """

    plan: PlanOption
    packages: tuple[tuple[PackageOption, int], ...]
    shortfall: int
    months: tuple[int, ...]
    is_current: bool

    @property
    def peak(self) -> int:
        return max(self.months) if self.months else 0

    @property
    def package_credits(self) -> int:
        return sum(p.credits * n for p, n in self.packages)

    @property
    def package_cost_cents(self) -> int:
        return sum(p.price_cents * n for p, n in self.packages)


@dataclass(frozen=True)
class Forecast:
    """What :func:`forecast` found; :meth:`sentences` says it in plain English."""

    at: datetime
    pace: Pace
    # Net credits a day, exact; None with no history.
    per_day: Fraction | None
    days_observed: int
    plan_left: int
    total: int
    allotment: int
    next_reset: datetime | None
    # When the credits run out; None when they last past the next reset (or for ever).
    run_out_at: datetime | None
    # When the plan credits alone are used up, if that happens before the reset.
    plan_used_up_at: datetime | None
    # Plan credits expected to expire unused at the next reset; None if unknown.
    unused_at_reset: int | None
    recommendation: Recommendation | None
    months_considered: int

    @property
    def runs_out_before_reset(self) -> bool:
        return self.run_out_at is not None

    @property
    def per_day_rounded(self) -> float:
        """The pace as shown: whole credits, or tenths below ten a day."""
        if self.per_day is None:
            return 0.0
        value = float(self.per_day)
        return round(value, 1) if value < 10 else float(round(value))

    def projection(self) -> tuple[tuple[datetime, int], ...]:
        """The total balance going forward at this pace, as (time, credits) points: now,
        then the run-out (at 0) or the next reset (before its new grant). Empty when
        there is no pace to project."""
        if self.per_day is None:
            return ()
        start = (self.at, self.total)
        if self.run_out_at is not None:
            return (start, (self.run_out_at, 0))
        if self.next_reset is None:
            return (start,)
        days = _days_between(self.at, self.next_reset)
        left = self.total - _round(self.per_day * days)
        return (start, (self.next_reset, max(left, 0)))

    def sentences(self, tz: tzinfo = UTC) -> list[str]:
        """Plain sentences for a customer, dates in ``tz`` (the staff member's zone)."""
        out: list[str] = []
        reset = _day(self.next_reset, self.at, tz) if self.next_reset is not None else None
        out.append(self._pace_sentence(reset, tz))
        unused = self._unused_sentence(reset, tz)
        if unused:
            out.append(unused)
        advice = self._plan_sentence()
        if advice:
            out.append(advice)
        return out

    # -- the sentences ------------------------------------------------------------------

    def _pace_text(self) -> str:
        value = self.per_day_rounded
        if value < 10:
            shown = f"{value:,.1f}".rstrip("0").rstrip(".")
            if shown in ("0", ""):
                return "less than one credit a day"
            return f"about {shown} credit{'' if shown == '1' else 's'} a day"
        return f"about {value:,.0f} credits a day"

    def _pace_sentence(self, reset: str | None, tz: tzinfo) -> str:
        resets = f"your plan resets on {reset}" if reset else ""
        if self.pace is Pace.NO_HISTORY:
            lead = "There is no usage history yet, so there is no pace to forecast from"
            if self.total == 0:
                return f"{lead}; you have no credits left right now."
            return f"{lead}; you have {_credits(self.total)} available right now."
        if self.total == 0:
            if reset:
                return (f"You have no credits left right now; {resets}, adding "
                        f"{_credits(self.allotment)}.") if self.allotment else \
                    f"You have no credits left right now; {resets}."
            return "You have no credits left right now."
        if self.pace is Pace.IDLE:
            since = (f"in the last {self.days_observed} days"
                     if self.days_observed >= WINDOW_DAYS else "since your account opened")
            return (f"You have not used any credits {since}, so at this pace your "
                    f"{_credits(self.total)} will not run out.")
        lead = f"At your recent pace of {self._pace_text()}"
        if self.run_out_at is not None:
            day = _day(self.run_out_at, self.at, tz)
            if self.run_out_at.astimezone(tz).date() == self.at.astimezone(tz).date():
                ends = f"your credits will run out today ({day})"
            else:
                ends = f"your credits will last until {day}"
            if reset:
                return f"{lead}, {ends}, before {resets}."
            return f"{lead}, {ends}."
        if reset:
            return f"{lead}, your credits will last past your plan reset on {reset}."
        return f"{lead}, your credits will last for the foreseeable future."

    def _unused_sentence(self, reset: str | None, tz: tzinfo) -> str:
        if reset is None or self.unused_at_reset is None or self.plan_left == 0:
            return ""
        if self.unused_at_reset > 0:
            count = _credits(self.unused_at_reset, "plan credit")
            if self.pace is Pace.USING:
                return (f"About {count} will be left unused when your plan resets on "
                        f"{reset}; unused plan credits do not carry over.")
            # No usage: every plan credit left goes unused, exactly.
            return (f"Your {count} left will go unused when your plan resets on {reset}; "
                    "unused plan credits do not carry over.")
        if self.plan_used_up_at is not None and self.total > self.plan_left:
            day = _day(self.plan_used_up_at, self.at, tz)
            return (f"Your plan credits will all be used by about {day}, before your "
                    f"plan resets on {reset}; after that your other credits are used.")
        return ""

    def _plan_sentence(self) -> str:
        rec = self.recommendation
        if rec is None:
            if self.months_considered == 0 and self.pace is not Pace.NO_HISTORY:
                return ("There is not yet a full billing month of usage to recommend a "
                        "plan from.")
            return ""
        span = _months_text(len(rec.months))
        busiest = (" (you used no credits in them)" if rec.peak == 0 else
                   f" (your busiest used {_credits(rec.peak)})" if len(rec.months) > 1 else
                   f" (you used {_credits(rec.peak)})")
        plan = f"{rec.plan.name} plan ({_credits(rec.plan.allotment)} a month)"
        if rec.packages:
            packs = " and ".join(f"{n:,} × {p.name}" for p, n in rec.packages)
            plan += f" plus packages of {packs}"
        if rec.is_current and not rec.packages:
            return (f"Your current {plan} is the smallest that would have covered your "
                    f"{span}{busiest}.")
        return f"The {plan} would have covered your {span}{busiest}."


def forecast(inputs: ForecastInputs) -> Forecast:
    """Work out the forecast for ``inputs`` (see the module doc for the pace)."""
    i = inputs
    days = len(i.recent_daily)
    per_day = Fraction(sum(i.recent_daily), days) if days else None
    to_reset = _days_between(i.at, i.next_reset) if i.next_reset is not None else None
    run_out: datetime | None = None
    plan_used_up: datetime | None = None
    unused: int | None = None
    if per_day is None:
        pace = Pace.NO_HISTORY
    elif per_day == 0:
        pace = Pace.IDLE
        unused = i.plan_left if to_reset is not None else None
    else:
        pace = Pace.USING
        # Lasting exactly to the reset counts as lasting: new plan credits arrive then.
        if to_reset is None or i.total < per_day * to_reset:
            run_out = _after(i.at, Fraction(i.total) / per_day)
        if to_reset is not None:
            # Plan credits go first (they expire soonest), so they take the whole pace.
            used_by_reset = per_day * to_reset
            unused = max(0, _round(i.plan_left - used_by_reset))
            if 0 < i.plan_left < used_by_reset:
                plan_used_up = _after(i.at, Fraction(i.plan_left) / per_day)
    return Forecast(
        at=i.at,
        pace=pace,
        per_day=per_day,
        days_observed=days,
        plan_left=i.plan_left,
        total=i.total,
        allotment=i.allotment,
        next_reset=i.next_reset,
        run_out_at=run_out,
        plan_used_up_at=plan_used_up,
        unused_at_reset=unused,
        recommendation=recommend_plan(i.period_usage, i.plans, i.packages,
                                      current_code=i.plan_code),
        months_considered=len(i.period_usage),
    )


def recommend_plan(
    months: Sequence[int],
    plans: Sequence[PlanOption],
    packages: Sequence[PackageOption],
    *,
    current_code: str | None = None,
) -> Recommendation | None:
    """The plan (and packages) that would have covered ``months`` at the lowest price.

    When every plan has a price: the lowest total of the plan's price for each month
    plus the cheapest packages covering what the plan would have missed. Otherwise
    (the catalogue has no plan prices): the smallest allotment that covers the busiest
    month; if no plan does, the largest plan plus the cheapest packages for the
    shortfall. Ties go to the current plan, then the smaller allotment. None with no
    month or no plan to choose from, or when the shortfall cannot be bought.
    """
    usage = tuple(months)
    if not usage or not plans:
        return None
    peak = max(usage)

    def shortfall(plan: PlanOption) -> int:
        return sum(max(0, u - plan.allotment) for u in usage)

    def build(plan: PlanOption) -> Recommendation | None:
        missing = shortfall(plan)
        packs = cheapest_packages(missing, packages) if missing else ()
        if packs is None:
            return None
        return Recommendation(plan=plan, packages=packs, shortfall=missing, months=usage,
                              is_current=plan.code == current_code)

    def tie(plan: PlanOption) -> tuple[bool, int, str]:
        return (plan.code != current_code, plan.allotment, plan.code)

    if all(p.monthly_price_cents is not None for p in plans):
        best: tuple[int, tuple[bool, int, str], Recommendation] | None = None
        for plan in plans:
            option = build(plan)
            if option is None:
                continue
            assert plan.monthly_price_cents is not None
            cost = plan.monthly_price_cents * len(usage) + option.package_cost_cents
            key = (cost, tie(plan))
            if best is None or key < best[:2]:
                best = (cost, tie(plan), option)
        return best[2] if best is not None else None
    covering = [p for p in plans if p.allotment >= peak]
    if covering:
        # The same allotment under two codes: the current one, then by code.
        smallest = min(p.allotment for p in covering)
        chosen = min((p for p in covering if p.allotment == smallest), key=tie)
        return build(chosen)
    largest = max(p.allotment for p in plans)
    return build(min((p for p in plans if p.allotment == largest), key=tie))


def cheapest_packages(
    need: int, packages: Sequence[PackageOption]
) -> tuple[tuple[PackageOption, int], ...] | None:
    """The cheapest set of packages holding at least ``need`` credits, as (package,
    count) largest first; ties go to fewer credits bought, then fewer packages. Empty
    for ``need`` 0; None when there is no package to buy."""
    require_int(need, "The credits needed")
    if need <= 0:
        return ()
    offers = [p for p in packages if p.credits > 0]
    if not offers:
        return None
    unit = math.gcd(*(p.credits for p in offers))
    units = -(-need // unit)
    counts: dict[str, int] = {}
    # Very large needs: most of it is bought as the best-value package, and only the
    # last stretch is searched exactly.
    best_value = min(offers, key=lambda p: (Fraction(p.price_cents, p.credits), -p.credits))
    best_units = best_value.credits // unit
    if units > _EXACT_UNITS:
        bulk = (units - _EXACT_UNITS) // best_units
        counts[best_value.code] = bulk
        units -= bulk * best_units
    sizes = [(p.credits // unit, p) for p in offers]
    # cost[x]: the cheapest (cost, credits bought, packages) reaching at least x units.
    inf = (math.inf, 0, 0)
    cost: list[tuple[float, int, int]] = [(0, 0, 0)] + [inf] * units
    pick: list[int] = [-1] * (units + 1)
    for x in range(1, units + 1):
        best = inf
        choice = -1
        for index, (size, pkg) in enumerate(sizes):
            prev = cost[max(0, x - size)]
            candidate = (prev[0] + pkg.price_cents, prev[1] + size, prev[2] + 1)
            if candidate < best:
                best, choice = candidate, index
        cost[x] = best
        pick[x] = choice
    x = units
    while x > 0:
        size, pkg = sizes[pick[x]]
        counts[pkg.code] = counts.get(pkg.code, 0) + 1
        x = max(0, x - size)
    by_code = {p.code: p for p in offers}
    chosen = [(by_code[code], n) for code, n in counts.items() if n > 0]
    return tuple(sorted(chosen, key=lambda c: (-c[0].credits, c[0].code)))


# -- helpers ---------------------------------------------------------------------------------


def _days_between(start: datetime, end: datetime) -> Fraction:
    delta = end - start
    micros = (delta.days * _DAY_SECONDS + delta.seconds) * 1_000_000 + delta.microseconds
    return Fraction(micros, _DAY_SECONDS * 1_000_000)


def _after(start: datetime, days: Fraction) -> datetime:
    days = min(days, Fraction(HORIZON_DAYS))
    micros = math.floor(days * _DAY_SECONDS * 1_000_000)
    return start + timedelta(microseconds=micros)


def _round(value: Fraction | int) -> int:
    """Round half up: 0.5 credit left reads as one credit, not as banker's zero."""
    return math.floor(Fraction(value) + Fraction(1, 2))


def _credits(value: int, noun: str = "credit") -> str:
    return f"{value:,} {noun}{'' if value == 1 else 's'}"


def _day(moment: datetime | None, now: datetime, tz: tzinfo) -> str:
    """``3 Dec``, with the year when it is not the current one."""
    if moment is None:
        return ""
    local = moment.astimezone(tz).date()
    text = f"{local.day} {local.strftime('%b')}"
    if local.year != now.astimezone(tz).year:
        text += f" {local.year}"
    return text


def _months_text(count: int) -> str:
    words = {1: "last month", 2: "last two months", 3: "last three months"}
    return words.get(count, f"last {count} months")
