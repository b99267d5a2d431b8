"""The in-memory simulation behind the demo data: one account at a time, in time order.

Each account is played from its opening to ``now`` exactly as the services would have
recorded it (``services/book.py`` and the write services), but without a database round
trip per action: the simulator keeps the account's grants in memory, asks
``domain.grants`` and ``domain.periods`` every question that has a non-obvious answer,
and appends ready-made row tuples (the columns of ``demo_store.COLUMNS``) to a
:class:`Rows` buffer that is bulk-inserted afterwards.

Speed matters (millions of charges): the charge loop works on integer epoch seconds and
plain lists, and only the common case of a charge taken whole from the first grant in
consumption order is decided inline. That case is exactly what ``plan_charge`` returns for
it; every other charge (spread over several grants) is planned by ``plan_charge`` itself,
and ``cross_check`` makes every charge go through ``plan_charge`` as well, to prove the
shortcut right in the tests.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
import uuid
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from credits_desktop.domain.grants import (
    Draw,
    GrantSource,
    GrantView,
    consumption_order,
    plan_charge,
    plan_purchased_removal,
    plan_refund,
)
from credits_desktop.domain.periods import Period, next_period, period_containing
from credits_desktop.domain.permissions import Action, Role, Verdict, decide

from .accounts import normalise
from .adjustments import adjustment_payload
from .demo_names import NameMaker
from .operations import fingerprint
from .reasons import REASON_LABELS
from .refunds import RefundItem, refund_payload
from .results import OperationResult
from .reversals import reversal_payload

__all__ = ["AccountSim", "Ids", "Option", "Rows", "StaffIds", "TimeText", "World"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DAY = 86_400
HOUR = 3_600

# Indexes into a grant's state list (a list, not an object: the charge loop is hot).
G_ID, G_SOURCE, G_GRANTED, G_REM, G_CREATED, G_EXPIRES, G_PERIOD, G_PACKAGE, G_OP = range(9)

PLAN_EXPIRY_REASON = "Unused plan credits expired at the end of the billing period"

GENERAL_FAILURES = (
    ("Model timeout", 30),
    ("Content filter false positive", 20),
    ("GPU worker crashed", 15),
    ("Upstream provider 503", 15),
    ("Output failed the quality check", 10),
    ("Rate limited by the model provider", 10),
)
FEATURE_FAILURES = {
    "video_transcription": ("Audio track could not be decoded", 25),
    "url_brief": ("The page could not be fetched (HTTP 403)", 30),
    "review_mining": ("Review source returned no data", 15),
}
# Share of failed generations that still cost credits (the rest are charged 0 credits).
FAILED_BUT_CHARGED = 0.65
# Share of the costly failures a support colleague refunds; the rest wait in the queue.
SUPPORT_REFUND_SHARE = 0.4


def dt(ts: int) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return EPOCH + timedelta(seconds=ts)


def ts_of(when: datetime) -> int:
    """An aware datetime as whole epoch seconds (rounded down)."""
    return math.floor((when - EPOCH).total_seconds())


class TimeText:
    """Epoch seconds to the value the bulk writer stores, from two lookup tables.

    For SQLite, the naive UTC text exactly as ``store.types.UTCDateTime`` writes it
    ('YYYY-MM-DD HH:MM:SS.ffffff'); for PostgreSQL's binary COPY, an aware datetime. Either
    way a value is ``days[day - first_day] + tod[second of the day]``, which the charge
    loop inlines.
    """

    def __init__(self, first_day: int, last_day: int, *, as_text: bool) -> None:
        self.first_day = first_day
        self.as_text = as_text
        self.days: list[Any]
        self.tod: list[Any]
        if as_text:
            self.days = [self._day(d) + " " for d in range(first_day, last_day + 1)]
            self.tod = [f"{h:02d}:{m:02d}:{s:02d}.000000" for h in range(24)
                        for m in range(60) for s in range(60)]
        else:
            self.days = [EPOCH + timedelta(days=d) for d in range(first_day, last_day + 1)]
            self.tod = [timedelta(seconds=s) for s in range(DAY)]

    @staticmethod
    def _day(day: int) -> str:
        return date.fromordinal(EPOCH_ORDINAL + day).isoformat()

    def __call__(self, ts: int) -> Any:
        day, second = divmod(ts, DAY)
        index = day - self.first_day
        if 0 <= index < len(self.days):
            return self.days[index] + self.tod[second]
        if self.as_text:
            return self._day(day) + " " + self.tod[second]
        return dt(ts)


@dataclass(frozen=True)
class Option:
    """Something a charge can be for: a feature with a model, and what it costs."""

    feature: str
    model: str | None
    reason: str  # the ledger reason, "Usage: <feature name>"
    prefix: str  # the platform's charge id prefix
    weight: float  # how often accounts use it, before each account's own taste
    fail_rate: float
    failures: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class StaffIds:
    """The staff rows the demo acts as."""

    system: int
    platform: int
    support: tuple[int, ...]
    former_support: int
    finance: int
    manager: int
    admin: int


@dataclass
class Ids:
    """The last id used in each table; the simulator takes the next ones."""

    account: int = 0
    operation: int = 0
    grant: int = 0
    charge: int = 0
    ledger: int = 0
    refund: int = 0
    adjustment: int = 0
    reversal: int = 0
    request: int = 0
    audit: int = 0


@dataclass
class Rows:
    """Row tuples waiting to be inserted, per table, in ``demo_store.COLUMNS`` order."""

    accounts: list[tuple[Any, ...]] = field(default_factory=list)
    operations: list[tuple[Any, ...]] = field(default_factory=list)
    credit_grants: list[tuple[Any, ...]] = field(default_factory=list)
    usage_charges: list[tuple[Any, ...]] = field(default_factory=list)
    ledger_entries: list[tuple[Any, ...]] = field(default_factory=list)
    refunds: list[tuple[Any, ...]] = field(default_factory=list)
    adjustments: list[tuple[Any, ...]] = field(default_factory=list)
    reversals: list[tuple[Any, ...]] = field(default_factory=list)
    approval_requests: list[tuple[Any, ...]] = field(default_factory=list)
    audit_events: list[tuple[Any, ...]] = field(default_factory=list)

    def tables(self) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """(table, rows) with parents before children, for foreign keys."""
        return [
            ("accounts", self.accounts),
            ("operations", self.operations),
            ("credit_grants", self.credit_grants),
            ("usage_charges", self.usage_charges),
            ("ledger_entries", self.ledger_entries),
            ("refunds", self.refunds),
            ("adjustments", self.adjustments),
            ("reversals", self.reversals),
            ("approval_requests", self.approval_requests),
            ("audit_events", self.audit_events),
        ]

    def take(self) -> Rows:
        """Hand the buffered rows over, leaving this buffer empty."""
        taken = Rows(**vars(self))
        for name in vars(self):
            setattr(self, name, [])
        return taken


@dataclass
class World:
    """Everything shared by the accounts of one demo run."""

    start_ts: int
    now_ts: int
    text: TimeText
    staff: StaffIds
    plans: dict[str, tuple[int, int]]  # code -> (plan id, monthly allotment)
    packages: dict[str, tuple[int, int, str]]  # code -> (package id, credits, name)
    options: list[Option]
    # (from, price per option or -1 when the option has no price yet), oldest first.
    price_steps: list[tuple[int, list[int]]]
    fail_rates: list[float]  # per option, on a normal day
    failures: list[tuple[list[str], list[int]]]  # per option: reasons, cumulative weights
    incident: tuple[int, int]  # when the image GPU workers kept crashing
    incident_rates: list[float]
    incident_failures: list[tuple[list[str], list[int]]]
    slot_weights: list[float]  # cumulative usage weight per local hour of the window
    time_table: list[int]  # inverse distribution: equally likely local hour offsets
    scenarios: dict[int, list[str]]  # account index -> staff scenarios to play
    cross_check: bool = False
    roll_counts: Counter[int] = field(default_factory=Counter)
    # Percent of the usual usage: below 100 the accounts use a smaller share of their
    # allotment (a benchmark's 100,000 accounts over 12 months at 10 million charges).
    usage_percent: int = 100


class AccountSim:
    """Plays one account from its opening to ``now`` into ``rows``."""

    def __init__(
        self, world: World, ids: Ids, rows: Rows, index: int, rng: random.Random,
        name: str, email: str,
    ) -> None:
        self.w = world
        self.ids = ids
        self.rows = rows
        self.rng = rng
        self.index = index
        self.name = name
        self.email = email
        self.text = world.text
        self.grants: list[list[Any]] = []  # every grant, in creation order
        self.by_id: dict[int, list[Any]] = {}
        self.nx: list[list[Any]] = []  # non-expiring grants, in consumption order
        self.nx_first = 0
        self.nx_total = 0
        self.pg: list[Any] = []  # the plan grant of the current period
        self.events: list[tuple[int, int, str, Any]] = []
        self.seq = itertools.count()
        self.change_seq = 0
        self.last_activity = 0
        self.unrefunded = 0
        self.prices = world.price_steps[0][1]
        # Charges staff may later act on: charge id -> (credits, draws, failed).
        self.charges: dict[int, tuple[int, list[tuple[list[Any], int]], bool]] = {}
        self.last_ok: int | None = None  # the latest successful charge, when tracked
        self.claimed: set[int] = set()  # charges refunded or asked to be refunded
        self.open_ticket: list[int] | None = None
        self.requests: list[list[Any]] = []
        # (refund id, charge id, credits, operation id, [(grant, credits placed)])
        self.refunds_made: list[tuple[int, int, int, int, list[tuple[list[Any], int]]]] = []
        self._profile()

    # -- who the customer is ------------------------------------------------------

    def _profile(self) -> None:
        w, rng = self.w, self.rng
        codes = list(w.plans)
        mix = {"starter": 42, "growth": 33, "pro": 17, "agency": 8}
        self.plan_code = rng.choices(codes, weights=[mix.get(c, 10) for c in codes])[0]
        self.plan_id, self.allotment = w.plans[self.plan_code]
        self.billing_day = rng.randint(1, 31)
        scenarios = w.scenarios.get(self.index, [])
        status_roll = rng.random()
        if scenarios or status_roll < 0.92:
            self.status = "active"
        else:
            self.status = "suspended" if status_roll < 0.97 else "closed"
        window = w.now_ts - w.start_ts
        if rng.random() < 0.78:
            self.created = w.start_ts - rng.randint(HOUR, 75 * DAY)
        else:
            self.created = w.start_ts + rng.randint(0, max(0, window - 2 * DAY))
        self.tz = HOUR * rng.choice((-8, -7, -6, -5, -4, -3, 0, 0, 1, 1, 1, 2, 3, 5, 8, 9, 10))
        activity = rng.lognormvariate(-0.15, 0.75)
        self.buyer = rng.random() < 0.3 or (activity > 1.3 and rng.random() < 0.7)
        if not self.buyer:
            # Customers who never top up stay around their allotment.
            activity = min(activity, 1.1)
        self.activity = activity
        self.taste = [o.weight * rng.gammavariate(2.0, 0.5) for o in w.options]
        self.fail_factor = rng.lognormvariate(0.0, 0.35)
        self.act_start = max(self.created, w.start_ts)
        self.act_end = w.now_ts
        if self.status != "active":
            self.act_end = self.act_start + int(rng.random() * (w.now_ts - self.act_start))
        self.scenarios = scenarios
        self.track_ok = bool(scenarios)

    # -- the run --------------------------------------------------------------------

    def run(self) -> None:
        self.aid = self.ids.account = self.ids.account + 1
        self._open_account()
        for kind in self.scenarios:
            self._plan_scenario(kind)
        for start, prices in self.w.price_steps[1:]:
            self._push(start, "prices", prices)
        self._charge_loop()
        self._drain(self.w.now_ts)
        self._finish()

    def _push(self, ts: int, kind: str, payload: Any) -> None:
        heapq.heappush(self.events, (ts, next(self.seq), kind, payload))

    def _drain(self, until: int) -> None:
        """Play every event due at or before ``until``, in time order."""
        events = self.events
        while events and events[0][0] <= until:
            ts, _, kind, payload = heapq.heappop(events)
            getattr(self, "_on_" + kind)(ts, payload)

    # -- rows shared by every kind of write ----------------------------------------

    def _ledger(self, grant: list[Any], kind: str, delta: int, ts: int, *, charge_id: int | None,
                op: int | None, actor: int, reason: str, reference: str | None) -> None:
        grant[G_REM] += delta
        if grant[G_EXPIRES] is None:
            self.nx_total += delta
            self._fix_first()
        self.ids.ledger += 1
        self.rows.ledger_entries.append((
            self.ids.ledger, self.aid, grant[G_ID], kind, delta, charge_id, op, actor,
            reason[:200], reference, self.text(ts),
        ))

    def _new_grant(self, source: GrantSource, credits: int, ts: int, *, kind: str,
                   op: int | None, actor: int, reason: str, reference: str | None,
                   expires: int | None = None, package_id: int | None = None,
                   charge_id: int | None = None) -> list[Any]:
        self.ids.grant += 1
        grant: list[Any] = [self.ids.grant, source.value, credits, 0, ts, expires,
                            ts if expires is not None else None, package_id, op]
        self.grants.append(grant)
        self.by_id[grant[G_ID]] = grant
        if expires is None:
            self.nx.append(grant)
        self._ledger(grant, kind, credits, ts, charge_id=charge_id, op=op, actor=actor,
                     reason=reason, reference=reference)
        return grant

    def _fix_first(self) -> None:
        """Point ``nx_first`` at the first non-expiring grant that still holds credits."""
        nx = self.nx
        i = 0
        while i < len(nx) and nx[i][G_REM] == 0:
            i += 1
        self.nx_first = i

    def _touch(self, ts: int) -> None:
        self.change_seq += 1
        if ts > self.last_activity:
            self.last_activity = ts

    def _views(self) -> list[GrantView]:
        live = [self.pg, *self.nx] if self.pg else list(self.nx)
        return [
            GrantView(g[G_ID], GrantSource(g[G_SOURCE]), g[G_REM],
                      None if g[G_EXPIRES] is None else dt(g[G_EXPIRES]), dt(g[G_CREATED]))
            for g in live if g[G_REM] > 0
        ]

    def _view(self, g: list[Any]) -> GrantView:
        return GrantView(g[G_ID], GrantSource(g[G_SOURCE]), g[G_REM],
                         None if g[G_EXPIRES] is None else dt(g[G_EXPIRES]), dt(g[G_CREATED]))

    def _operation(
        self, ts: int, *, kind: str, actor: int, key: str, request: dict[str, Any],
        reason: str, reference: str | None, note: str | None, status: str, message: str,
        credits: int = 0, request_id: int | None = None,
        details: dict[str, int | str | None] | None = None,
        account_ids: tuple[int, ...] | None = None, op: int | None = None,
    ) -> int:
        """Write the operations row and audit event ``services.operations.perform`` writes."""
        if op is None:
            op = self._next_op()
        # OperationResult.to_json, without the dataclass round trip (a test compares them).
        result = json.dumps({
            "account_ids": [self.aid] if account_ids is None else list(account_ids),
            "credits": credits, "details": details or {}, "kind": kind, "message": message,
            "operation_id": op, "request_id": request_id, "status": status,
        }, sort_keys=True)
        if self.w.cross_check:
            expected = OperationResult(
                operation_id=op, kind=kind, status=status, message=message,
                account_ids=(self.aid,) if account_ids is None else account_ids,
                credits=credits, request_id=request_id, details=details or {},
            ).to_json()
            if result != expected:
                raise AssertionError(f"demo operation result {result} != {expected}")
        text = self.text(ts)
        self.rows.operations.append((
            op, key, fingerprint(kind, request), kind, actor, self.aid, reason[:200], reference,
            note, text, result,
        ))
        self.ids.audit += 1
        self.rows.audit_events.append(
            (self.ids.audit, text, actor, kind, status, self.aid, op, message[:2000])
        )
        # perform() bumps every account it locked once per operation.
        self.change_seq += 1
        return op

    def _next_op(self) -> int:
        self.ids.operation += 1
        return self.ids.operation

    def _key(self) -> str:
        """An idempotency key as the desk's dialogs make them (a random UUID)."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # -- opening and billing periods --------------------------------------------------

    def _open_account(self) -> None:
        w = self.w
        op = self._next_op()
        # create_account opens the account's first period inside the same operation.
        first = period_containing(self.billing_day, dt(self.created))
        self._open_period(first)
        self._touch(self.created)
        request = {"name": self.name, "email": self.email, "plan": self.plan_code,
                   "billing_day": self.billing_day}
        self._operation(
            self.created, kind="create_account", actor=w.staff.platform,
            key=f"signup-{self.aid:08d}", request=request, reason="Account opened",
            reference=None, note=None, status="applied", message=f"Opened account #{self.aid}.",
            details={"account_id": self.aid}, account_ids=(), op=op,
        )

    def _open_period(self, period: Period) -> None:
        start, end = ts_of(period.start), ts_of(period.end)
        self.period = (start, end)
        if self.allotment > 0:
            self.pg = self._new_grant(
                GrantSource.PLAN, self.allotment, start, kind="plan_grant", op=None,
                actor=self.w.staff.system,
                reason=f"Plan credits for the period from {period.start:%d %b %Y}",
                reference=None, expires=end,
            )
        else:
            # A plan without credits gets no grant (AccountBook._open_period); an empty
            # stand-in keeps the charge loop free of a special case.
            self.pg = [0, GrantSource.PLAN.value, 0, 0, start, end, start, None, None]
        self._push(end, "boundary", period)

    def _on_boundary(self, ts: int, period: Period) -> None:
        """The scheduler's roll at a period's end: expire what is left, grant the next."""
        pg = self.pg
        if pg[G_REM] > 0:
            self._ledger(pg, "plan_expiry", -pg[G_REM], ts, charge_id=None, op=None,
                         actor=self.w.staff.system, reason=PLAN_EXPIRY_REASON, reference=None)
        self._open_period(next_period(self.billing_day, period))
        self.change_seq += 1
        self.w.roll_counts[ts] += 1

    def _on_prices(self, ts: int, prices: list[int]) -> None:
        self.prices = prices

    # -- usage ---------------------------------------------------------------------------

    def _charge_times(self) -> list[int]:
        """When the customer uses the features: busy hours, weekdays, a little growth."""
        w, rng = self.w, self.rng
        cw = w.slot_weights
        slots = len(cw) - 1
        lo = min(max((self.act_start + self.tz - w.start_ts) // HOUR, 0), slots)
        hi = min(max((self.act_end + self.tz - w.start_ts) // HOUR + 1, 0), slots)
        weight = cw[hi] - cw[lo]
        if weight <= 0:
            return []
        # The allotment at the account's own feature mix, scaled by how busy it is.
        mean_price = sum(
            t * max(p, 0) for t, p in zip(self.taste, self.prices, strict=True)
        ) / sum(self.taste)
        per_day = self.allotment * self.activity / (30.44 * max(mean_price, 1.0))
        if w.usage_percent != 100:
            per_day = per_day * w.usage_percent / 100
        expected = per_day * weight
        n = max(0, round(rng.gauss(expected, math.sqrt(expected))))
        if n == 0:
            return []
        r = rng.random
        origin = w.start_ts - self.tz
        first, last = self.act_start, self.act_end
        share = weight / cw[-1]
        if share < 0.5:
            # A short life: draw within its own hours (a bisection per charge).
            base = cw[lo]
            times = [origin + (bisect_right(cw, base + r() * weight) - 1) * HOUR
                     + int(r() * HOUR) for _ in range(n)]
        else:
            # Most accounts: one lookup in the window's inverse distribution per charge,
            # dropping the few that fall outside the account's life.
            table = w.time_table
            span = len(table) * HOUR
            times = []
            while len(times) < n:
                draws = int((n - len(times)) / share) + 8
                times += [t for t in [origin + table[u // HOUR] + u % HOUR
                                      for u in [int(r() * span) for _ in range(draws)]]
                          if first <= t < last]
            del times[n:]
        times = [t for t in times if first <= t < last]
        times.sort()
        return times

    def _mix(self, size: int = 1024) -> list[int]:
        """Option indexes in proportion to the account's taste, for uniform lookups."""
        total = sum(self.taste)
        mix: list[int] = []
        running = 0.0
        for index, weight in enumerate(self.taste):
            running += weight
            mix += [index] * (round(running / total * size) - len(mix))
        return mix

    def _charge_loop(self) -> None:
        """Record the account's charges, playing due events (periods, staff) in between."""
        w, rng = self.w, self.rng
        r = rng.random
        times = self._charge_times()
        n = len(times)
        options = w.options
        # Which option each charge is for: one lookup in the account's own mix.
        mix = self._mix()
        size = len(mix)
        opts = [mix[int(r() * size)] for _ in range(n)]
        # Whether each generation fails: more often for images during the incident.
        normal = [rate * self.fail_factor for rate in w.fail_rates]
        incident = [rate * self.fail_factor for rate in w.incident_rates]
        begin, end = w.incident
        fails = [r() < (incident[o] if begin <= t < end else normal[o])
                 for t, o in zip(times, opts, strict=True)]
        text = self.text
        days, tod, first_day = text.days, text.tod, text.first_day
        texts = [days[t // DAY - first_day] + tod[t % DAY] for t in times]
        features = [o.feature for o in options]
        models = [o.model for o in options]
        reasons = [o.reason for o in options]
        prefixes = [o.prefix for o in options]
        aid = self.aid
        platform = w.staff.platform
        add_charge = self.rows.usage_charges.append
        add_ledger = self.rows.ledger_entries.append
        ids = self.ids
        cid = first_cid = ids.charge
        lid = ids.ledger
        prices = self.prices
        events = self.events
        next_event = events[0][0] if events else 1 << 62
        check = w.cross_check
        track_ok = self.track_ok
        keep = track_ok or check
        charges = self.charges
        nx = self.nx
        nx_first = self.nx_first
        nx_total = self.nx_total
        buyer = self.buyer
        rem = G_REM
        pg = self.pg
        plan_left = pg[rem]  # the live plan grant's credits, written back before any call
        last_ts = 0
        for ts, o, failed, tstr in zip(times, opts, fails, texts, strict=True):
            if ts >= next_event:
                pg[rem] = plan_left
                ids.charge, ids.ledger = cid, lid
                self.nx_first, self.nx_total = nx_first, nx_total
                self._drain(ts)
                cid, lid = ids.charge, ids.ledger
                nx_first, nx_total = self.nx_first, self.nx_total
                pg, prices = self.pg, self.prices
                plan_left = pg[rem]
                next_event = events[0][0] if events else 1 << 62
            cost = prices[o]
            if cost < 0:
                continue  # no price for it yet: the platform would not offer it
            if failed and r() >= FAILED_BUT_CHARGED:
                cost = 0
            if cost > plan_left + nx_total:
                if not buyer:
                    continue  # refused by the platform: not enough credits
                ids.charge, ids.ledger = cid, lid
                self.nx_first, self.nx_total = nx_first, nx_total
                self._buy(ts)
                cid, lid = ids.charge, ids.ledger
                nx_first, nx_total = self.nx_first, self.nx_total
            cid += 1
            # Zero-padded so the unique index on external ids grows at its end.
            ext = f"{prefixes[o]}{cid:010d}"
            if failed:
                names, weights = (self.w.incident_failures if begin <= ts < end
                                  else self.w.failures)[o]
                reason = rng.choices(names, cum_weights=weights)[0]
                add_charge((cid, ext, aid, features[o], models[o], cost, "failed", reason, tstr))
            else:
                add_charge((cid, ext, aid, features[o], models[o], cost, "succeeded", None, tstr))
            last_ts = ts
            if cost == 0:
                continue
            # Consumption order: the live plan grant first, then non-expiring grants
            # oldest first. A charge that one grant covers whole is decided here.
            draws: list[tuple[list[Any], int]] | None = None
            if plan_left >= cost:
                plan_left -= cost
                lid += 1
                add_ledger((lid, aid, pg[G_ID], "charge", -cost, cid, None, platform,
                            reasons[o], ext, tstr))
                if failed or keep:
                    draws = [(pg, cost)]
            elif plan_left == 0 and nx[nx_first][rem] >= cost:
                g = nx[nx_first]
                g[rem] -= cost
                nx_total -= cost
                if g[rem] == 0:
                    nx_first += 1
                    while nx_first < len(nx) and nx[nx_first][rem] == 0:
                        nx_first += 1
                lid += 1
                add_ledger((lid, aid, g[G_ID], "charge", -cost, cid, None, platform,
                            reasons[o], ext, tstr))
                if failed or keep:
                    draws = [(g, cost)]
            else:
                pg[rem] = plan_left
                ids.charge, ids.ledger = cid, lid
                self.nx_first, self.nx_total = nx_first, nx_total
                draws = self._draw_many(cost, ts, cid, ext, reasons[o], tstr)
                cid, lid = ids.charge, ids.ledger
                nx_first, nx_total = self.nx_first, self.nx_total
                plan_left = pg[rem]
            if check:
                assert draws is not None
                pg[rem] = plan_left
                self.nx_first = nx_first
                self._check_draws(draws, cost, ts)
            if failed:
                self.unrefunded += 1
                charges[cid] = (cost, draws or [], True)
                if r() < SUPPORT_REFUND_SHARE:
                    self._schedule_ticket(ts, cid)
                    next_event = events[0][0] if events else 1 << 62
            elif track_ok:
                charges[cid] = (cost, draws or [], False)
                self.last_ok = cid
        pg[rem] = plan_left
        ids.charge, ids.ledger = cid, lid
        self.nx_first, self.nx_total = nx_first, nx_total
        # record_charge touches the account once per charge.
        self.change_seq += cid - first_cid
        if last_ts > self.last_activity:
            self.last_activity = last_ts

    def _draw_many(self, cost: int, ts: int, cid: int, ext: str, reason: str,
                   tstr: str) -> list[tuple[list[Any], int]]:
        """A charge spread over several grants, planned by the domain."""
        plan = plan_charge(self._views(), cost, dt(ts))
        draws = []
        platform = self.w.staff.platform
        for d in plan:
            grant = self.by_id[d.grant_id]
            grant[G_REM] -= d.credits
            if grant[G_EXPIRES] is None:
                self.nx_total -= d.credits
            self.ids.ledger += 1
            self.rows.ledger_entries.append((
                self.ids.ledger, self.aid, grant[G_ID], "charge", -d.credits, cid, None,
                platform, reason, ext, tstr,
            ))
            draws.append((grant, d.credits))
        self._fix_first()
        return draws

    def _check_draws(self, draws: list[tuple[list[Any], int]], cost: int, ts: int) -> None:
        """Cross-check: the draws taken must be what ``plan_charge`` plans now."""
        for grant, credits in draws:
            grant[G_REM] += credits  # undo, to plan from the state before the charge
        try:
            views = [v for v in self._views() if v.remaining > 0]
            planned = plan_charge(views, cost, dt(ts))
        finally:
            for grant, credits in draws:
                grant[G_REM] -= credits
        taken = [Draw(grant[G_ID], credits) for grant, credits in draws]
        if planned != taken:
            raise AssertionError(f"demo draws {taken} differ from plan_charge {planned}")
        if self.nx_first < len(self.nx) and self.nx[self.nx_first][G_REM] == 0 and any(
            g[G_REM] for g in self.nx
        ):
            raise AssertionError("demo lost track of the first non-expiring grant")

    def _buy(self, ts: int) -> None:
        """The customer tops up when a generation is refused for lack of credits."""
        w, rng = self.w, self.rng
        choice = {
            "starter": ("pack_500", "pack_500", "pack_2000"),
            "growth": ("pack_2000", "pack_2000", "pack_500", "pack_10000"),
        }.get(self.plan_code, ("pack_10000", "pack_2000", "pack_10000"))
        codes = [c for c in choice if c in w.packages] or list(w.packages)
        code = rng.choice(codes)
        package_id, credits, package_name = w.packages[code]
        reference = "pi_" + "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
                                                "0123456789", k=20))
        op = self._next_op()
        reason = f"Package purchase: {code}"
        self._new_grant(GrantSource.PURCHASE, credits, ts, kind="purchase", op=op,
                        actor=w.staff.platform, reason=reason, reference=reference,
                        package_id=package_id)
        self._fix_first()
        self._touch(ts)
        self._operation(
            ts, kind="purchase", actor=w.staff.platform, key=f"checkout-{reference}",
            request={"account_id": self.aid, "package_code": code, "reference": reference},
            reason=reason, reference=reference, note=None, status="applied",
            message=f"Bought {package_name}.", credits=credits, op=op,
        )

    # -- refunds ---------------------------------------------------------------------

    def _schedule_ticket(self, ts: int, cid: int) -> None:
        """A customer writes in about a failed generation; support answers later.

        Several failures reported before support answers go into the same ticket.
        """
        if self.open_ticket is not None and len(self.open_ticket) < 6:
            self.open_ticket.append(cid)
            return
        delay = min(int(self.rng.lognormvariate(math.log(20 * HOUR), 0.8)), 12 * DAY)
        self.open_ticket = [cid]
        self._push(ts + delay + 60, "ticket", self.open_ticket)

    def _on_ticket(self, ts: int, charge_ids: list[int]) -> None:
        if self.open_ticket is charge_ids:
            self.open_ticket = None
        if ts >= self.act_end:
            return
        w, rng = self.w, self.rng
        staff = list(w.staff.support)
        if ts < (w.start_ts + w.now_ts) // 2:
            staff.append(w.staff.former_support)  # worked here in the first half
        actor = rng.choice(staff)
        ticket = f"#{rng.randint(10_000, 99_999)}"
        note = None
        if rng.random() < 0.3:
            note = rng.choice((
                "Customer sent screenshots of the failed generation.",
                "Confirmed in the platform logs.",
                "Failure matches the incident on the status page.",
                "Customer asked twice; refunded with an apology.",
            ))
        self._refund(ts, actor, Role.SUPPORT, [(cid, None) for cid in charge_ids],
                     "failed_generation", ticket, note)

    def _refund(self, ts: int, actor: int, role: Role, items: list[tuple[int, int | None]],
                reason_code: str, ticket: str, note: str | None,
                approval: tuple[int, str, str | None, str | None] | None = None) -> int | None:
        """``refunds.refund_charges`` (or its approval): returns the operation id.

        ``approval`` is (request id, operation reason, reference, comment) when a request
        is approved; the refund is then the approver's operation.
        """
        payload = refund_payload(self.aid, [RefundItem(c, a) for c, a in items], reason_code,
                                 ticket, note)
        plan = []
        for cid, wanted in items:
            cost, draws, failed = self.charges[cid]
            amount = cost if wanted is None else wanted
            plan.append((cid, amount, draws, failed))
            self.claimed.add(cid)
            if approval is None:
                decision = decide(role, Action.REFUND, credits=amount, charge_failed=failed)
                assert decision.verdict is Verdict.ALLOW, decision.reason
        op = self._next_op()
        reason = f"Refund: {reason_code.replace('_', ' ')}"
        reference: str | None = ticket
        if approval is not None:
            reason, reference = approval[1], approval[2]
        at = dt(ts)
        total = 0
        for cid, amount, draws, failed in plan:
            views = [(self._view(g), credits) for g, credits in draws]
            placements = plan_refund(views, amount, at)
            placed: list[tuple[list[Any], int]] = []
            for p in placements:
                if p.grant_id is None:
                    grant = self._new_grant(GrantSource.REFUND, p.credits, ts, kind="refund",
                                            op=op, actor=actor, reason=reason,
                                            reference=reference, charge_id=cid)
                else:
                    grant = self.by_id[p.grant_id]
                    self._ledger(grant, "refund", p.credits, ts, charge_id=cid, op=op,
                                 actor=actor, reason=reason, reference=reference)
                placed.append((grant, p.credits))
            self.ids.refund += 1
            self.rows.refunds.append(
                (self.ids.refund, cid, self.aid, amount, reason_code, op, self.text(ts))
            )
            self.refunds_made.append((self.ids.refund, cid, amount, op, placed))
            if failed:
                self.unrefunded -= 1
            total += amount
        self._fix_first()
        self._touch(ts)
        message = f"Refunded {total:,} credits on {len(plan)} charge(s)."
        if approval is None:
            self._operation(ts, kind="refund", actor=actor, key=self._key(), request=payload,
                            reason=reason, reference=ticket, note=payload["note"],
                            status="applied", message=message, credits=total, op=op)
            return op
        self._decided(ts, actor, approval, op, message, total, {})
        return op

    # -- staff scenarios ----------------------------------------------------------------

    def _plan_scenario(self, kind: str) -> None:
        """Schedule one staff scenario at a plausible time in the account's history."""
        w, rng = self.w, self.rng
        lo = self.act_start + 3 * DAY
        hi = w.now_ts - 2 * HOUR
        if kind.startswith("pending"):
            lo = max(lo, w.now_ts - 6 * DAY)
        elif kind in ("approved", "rejected", "adjust_reversed", "refund_reversed"):
            hi = w.now_ts - 3 * DAY
        if hi <= lo:
            return
        self._push(rng.randint(lo, hi), kind, None)

    def _on_manager_refund(self, ts: int, _payload: Any) -> None:
        cid = self._refundable_success()
        if cid is None:
            return
        rng = self.rng
        cost = self.charges[cid][0]
        partial = None if rng.random() < 0.7 or cost < 2 else rng.randint(1, cost - 1)
        reason = rng.choice(("quality_problem", "duplicate_charge", "goodwill"))
        note = {
            "quality_problem": "The generated images were unusable (distorted product shots).",
            "duplicate_charge": "The platform charged the same generation twice.",
            "goodwill": "Long-standing customer; goodwill gesture after a complaint.",
        }[reason]
        self._refund(ts, self.w.staff.manager, Role.MANAGER, [(cid, partial)], reason,
                     f"#{rng.randint(10_000, 99_999)}", note)

    def _refundable_success(self) -> int | None:
        cid = self.last_ok
        if cid is None or cid in self.claimed:
            return None
        return cid

    def _on_refund_reversed(self, ts: int, _payload: Any) -> None:
        before = len(self.refunds_made)
        self._on_manager_refund(ts, None)
        if len(self.refunds_made) > before:
            self._push(ts + self.rng.randint(2 * HOUR, 2 * DAY), "reverse_refund",
                       self.refunds_made[-1])

    def _on_reverse_refund(
        self, ts: int, refund: tuple[int, int, int, int, list[tuple[list[Any], int]]]
    ) -> None:
        """``reversals.apply_reversal`` of a refund: take its credits back."""
        refund_id, charge_id, credits, _op, placed = refund
        # First from where the refund put them, while live; then in consumption order.
        left = credits
        draws: dict[int, int] = {}
        for grant, delta in placed:
            live = grant[G_EXPIRES] is None or ts < grant[G_EXPIRES]
            take = min(left, delta, grant[G_REM]) if live else 0
            if take > 0:
                draws[grant[G_ID]] = draws.get(grant[G_ID], 0) + take
                left -= take
        if left > 0:
            for view in consumption_order(self._views(), dt(ts)):
                take = min(left, view.remaining - draws.get(view.id, 0))
                if take > 0:
                    draws[view.id] = draws.get(view.id, 0) + take
                    left -= take
                if left == 0:
                    break
        if left > 0:
            return  # already spent: the service would refuse, nothing is written
        actor = self.w.staff.manager
        reason_text = self.rng.choice((
            "Refunded by mistake: the complaint was about another image",
            "Customer withdrew the complaint",
        ))
        reference = f"#{self.rng.randint(10_000, 99_999)}"
        payload = reversal_payload(refund_id, None, reason_text, reference)
        payload["account_id"] = self.aid
        op = self._next_op()
        reason = f"Reversal: {reason_text}"
        for grant_id, take in draws.items():
            self._ledger(self.by_id[grant_id], "reversal", -take, ts, charge_id=charge_id,
                         op=op, actor=actor, reason=reason, reference=reference)
        self._fix_first()
        self.ids.reversal += 1
        self.rows.reversals.append(
            (self.ids.reversal, self.aid, refund_id, None, -credits, op, self.text(ts))
        )
        self._touch(ts)
        self._operation(ts, kind="reversal", actor=actor, key=self._key(), request=payload,
                        reason=reason, reference=reference, note=None, status="applied",
                        message=f"Reversed refund #{refund_id}: took back {credits:,} credits.",
                        credits=-credits, op=op)

    def _adjust_choice(self) -> tuple[int, str, str | None]:
        """A finance adjustment within the finance limit: (delta, reason code, note)."""
        rng = self.rng
        purchased = sum(g[G_REM] for g in self.nx if g[G_SOURCE] != GrantSource.REFUND)
        roll = rng.random()
        if roll < 0.2 and purchased >= 500:
            size = min(purchased, rng.choice((500, 1000)))
            return -size, "chargeback", "Card payment disputed by the customer's bank."
        if roll < 0.35 and purchased >= 50:
            return (-min(purchased, rng.choice((50, 100, 200))), "correction",
                    "Package credited twice by the checkout.")
        if roll < 0.65:
            return (rng.choice((100, 150, 250, 300, 500)), "compensation",
                    rng.choice(("Compensation for the image generation outage.",
                                "Apology for slow support response.", None)))
        if roll < 0.75:
            return rng.choice((20, 40, 60)), "correction", "Price shown in the app was wrong."
        return rng.choice((500, 1000)), "manual_sale", "Paid by bank transfer."

    def _on_adjust(self, ts: int, _payload: Any) -> None:
        delta, reason_code, note = self._adjust_choice()
        self._adjust(ts, self.w.staff.finance, delta, reason_code, self._reference(reason_code),
                     note)

    def _reference(self, reason_code: str) -> str:
        rng = self.rng
        if reason_code == "manual_sale":
            return f"INV-{dt(self.w.now_ts).year}-{rng.randint(1000, 9999)}"
        if reason_code == "chargeback":
            return f"CB-{rng.randint(100_000, 999_999)}"
        return f"#{rng.randint(10_000, 99_999)}"

    def _adjust(self, ts: int, actor: int, delta: int, reason_code: str, reference: str,
                note: str | None,
                approval: tuple[int, str, str | None, str | None] | None = None) -> int | None:
        """``adjustments.apply_adjustment`` (or its approval); returns the adjustment id."""
        payload = adjustment_payload(self.aid, delta, reason_code, reference, note)
        if approval is None:
            decision = decide(Role.FINANCE, Action.ADJUST_PURCHASED, credits=abs(delta))
            assert decision.verdict is Verdict.ALLOW, decision.reason
        draws: list[Draw] = []
        if delta < 0:
            try:
                draws = plan_purchased_removal(self._views(), -delta, dt(ts))
            except Exception:
                return None  # refused by the service: nothing is written
        op = self._next_op()
        reason = f"Adjustment: {REASON_LABELS[reason_code]}"
        ref: str | None = reference
        if approval is not None:
            reason, ref = approval[1], approval[2]
        if delta > 0:
            self._new_grant(GrantSource.ADJUSTMENT, delta, ts, kind="adjustment", op=op,
                            actor=actor, reason=reason, reference=ref)
            message = f"Added {delta:,} purchased credits."
        else:
            for d in draws:
                self._ledger(self.by_id[d.grant_id], "adjustment", -d.credits, ts,
                             charge_id=None, op=op, actor=actor, reason=reason, reference=ref)
            message = f"Removed {-delta:,} purchased credits."
        self._fix_first()
        self.ids.adjustment += 1
        adjustment_id = self.ids.adjustment
        self.rows.adjustments.append(
            (adjustment_id, self.aid, delta, reason_code, op, self.text(ts))
        )
        self._touch(ts)
        details: dict[str, int | str | None] = {"adjustment_id": adjustment_id}
        if approval is None:
            self._operation(ts, kind="adjustment", actor=actor, key=self._key(),
                            request=payload, reason=reason, reference=reference,
                            note=payload["note"], status="applied", message=message,
                            credits=delta, details=details, op=op)
        else:
            self._decided(ts, actor, approval, op, message, delta, details)
        return adjustment_id

    def _on_adjust_reversed(self, ts: int, _payload: Any) -> None:
        rng = self.rng
        delta = rng.choice((200, 300, 500))
        adjustment_id = self._adjust(ts, self.w.staff.finance, delta, "compensation",
                                     f"#{rng.randint(10_000, 99_999)}", None)
        if adjustment_id is not None:
            self._push(ts + rng.randint(10 * 60, 3 * HOUR), "reverse_adjustment",
                       (adjustment_id, delta))

    def _on_reverse_adjustment(self, ts: int, target: tuple[int, int]) -> None:
        """``reversals.apply_reversal`` of an adjustment entered twice."""
        adjustment_id, delta = target
        size = abs(delta)
        actor = self.w.staff.finance
        decision = decide(Role.FINANCE, Action.ADJUST_PURCHASED, credits=size)
        assert decision.verdict is Verdict.ALLOW, decision.reason
        reason_text = "Entered twice for the same ticket"
        reference = f"#{self.rng.randint(10_000, 99_999)}"
        payload = reversal_payload(None, adjustment_id, reason_text, reference)
        payload["account_id"] = self.aid
        reason = f"Reversal: {reason_text}"
        if delta > 0:
            try:
                draws = plan_purchased_removal(self._views(), size, dt(ts))
            except Exception:
                return  # the added credits were spent: refused, nothing written
            op = self._next_op()
            for d in draws:
                self._ledger(self.by_id[d.grant_id], "reversal", -d.credits, ts,
                             charge_id=None, op=op, actor=actor, reason=reason,
                             reference=reference)
            credits = -size
            message = f"Reversed adjustment #{adjustment_id}: removed {size:,} purchased credits."
        else:
            op = self._next_op()
            self._new_grant(GrantSource.ADJUSTMENT, size, ts, kind="reversal", op=op,
                            actor=actor, reason=reason, reference=reference)
            credits = size
            message = (f"Reversed adjustment #{adjustment_id}: gave back {size:,} "
                       "purchased credits.")
        self._fix_first()
        self.ids.reversal += 1
        self.rows.reversals.append(
            (self.ids.reversal, self.aid, None, adjustment_id, credits, op, self.text(ts))
        )
        self._touch(ts)
        self._operation(ts, kind="reversal", actor=actor, key=self._key(), request=payload,
                        reason=reason, reference=reference, note=None, status="applied",
                        message=message, credits=credits, op=op)

    # -- approvals ------------------------------------------------------------------------

    def _request(self, ts: int, actor: int, role: Role, kind: str, credits: int,
                 payload: dict[str, Any], summary: str, why: str, reason: str,
                 reference: str | None) -> list[Any]:
        """``approvals_queue.create_request`` inside the requester's operation."""
        op = self._next_op()
        self.ids.request += 1
        request_id = self.ids.request
        # id, kind, account, credits, payload, summary, operation, requested_by, requested_at,
        # status, decided_by, decided_at, comment, result operation, failure reason
        row: list[Any] = [request_id, kind, self.aid, credits, json.dumps(payload, sort_keys=True),
                          summary[:300], op, actor, self.text(ts), "pending", None, None, None,
                          None, None]
        self.requests.append(row)
        self._operation(
            ts, kind=kind, actor=actor, key=self._key(), request=payload, reason=reason,
            reference=reference, note=payload.get("note"), status="requested",
            message=f"{why} Request #{request_id} is waiting for approval; nothing changes "
            "until a colleague approves it.",
            credits=credits, request_id=request_id, op=op,
        )
        return row

    def _request_refund(self, ts: int, actor: int, reason_code: str, note: str) -> list[Any] | None:
        cid = self._refundable_success()
        if cid is None:
            return None
        self.claimed.add(cid)
        cost = self.charges[cid][0]
        ticket = f"#{self.rng.randint(10_000, 99_999)}"
        payload = refund_payload(self.aid, [RefundItem(cid)], reason_code, ticket, note)
        decision = decide(Role.SUPPORT, Action.REFUND, credits=cost, charge_failed=False)
        assert decision.verdict is Verdict.REQUEST
        return self._request(
            ts, actor, Role.SUPPORT, "refund", cost, payload,
            f"Refund {cost:,} credits on 1 charge(s), ticket {ticket}", decision.reason,
            f"Refund: {reason_code.replace('_', ' ')}", ticket,
        )

    def _request_adjustment(self, ts: int, actor: int, role: Role, delta: int,
                            reference: str, note: str) -> list[Any]:
        payload = adjustment_payload(self.aid, delta, "manual_sale", reference, note)
        decision = decide(role, Action.ADJUST_PURCHASED, credits=delta)
        assert decision.verdict is Verdict.REQUEST
        return self._request(
            ts, actor, role, "adjustment", delta, payload,
            f"Add {delta:,} purchased credits (manual_sale), reference {reference}",
            decision.reason, f"Adjustment: {REASON_LABELS['manual_sale']}", reference,
        )

    def _on_pending_refund(self, ts: int, _payload: Any) -> None:
        actor = self.rng.choice(self.w.staff.support)
        self._request_refund(ts, actor, "quality_problem",
                             "Customer says the generated video script was off-brief.")

    def _on_pending_adjust(self, ts: int, _payload: Any) -> None:
        rng = self.rng
        actor, role = ((self.w.staff.finance, Role.FINANCE) if rng.random() < 0.7
                       else (self.w.staff.admin, Role.ADMIN))
        self._request_adjustment(ts, actor, role, rng.choice((2_000, 5_000, 10_000)),
                                 self._reference("manual_sale"),
                                 "Annual prepaid credits, invoice paid by bank transfer.")

    def _on_approved(self, ts: int, _payload: Any) -> None:
        rng = self.rng
        row = self._request_adjustment(ts, self.w.staff.finance, Role.FINANCE,
                                       rng.choice((1_500, 3_000, 5_000)),
                                       self._reference("manual_sale"),
                                       "Quarterly credit bundle agreed with sales.")
        self._push(ts + rng.randint(HOUR, 2 * DAY), "decide", (row, True))

    def _on_rejected(self, ts: int, _payload: Any) -> None:
        row = self._request_refund(ts, self.w.staff.support[0], "goodwill",
                                   "Customer is unhappy with the style of the images.")
        if row is not None:
            self._push(ts + self.rng.randint(HOUR, DAY), "decide", (row, False))

    def _on_decide(self, ts: int, decision: tuple[list[Any], bool]) -> None:
        """``approvals.approve_request`` / ``reject_request`` by a colleague."""
        row, approve = decision
        request_id, kind, summary = row[0], row[1], row[5]
        payload = json.loads(row[4])
        requester = row[7]
        # A manager approves, finance turns refunds down; never the requester.
        approver = self.w.staff.manager if approve else self.w.staff.finance
        if approver == requester:
            approver = self.w.staff.admin
        reason = f"Approval of request #{request_id}: {summary}"[:200]
        reference = payload.get("ticket") or payload.get("reference")
        if approve:
            comment = "Checked against the signed order."
            approval = (request_id, reason, reference, comment)
            if kind == "adjustment":
                done = self._adjust(ts, approver, payload["delta"], payload["reason_code"],
                                    payload["reference"], payload["note"], approval=approval)
            else:
                items = [(c, a) for c, a in payload["items"]]
                done = self._refund(ts, approver, Role.MANAGER, items, payload["reason_code"],
                                    payload["ticket"], payload["note"], approval=approval)
            assert done is not None, "an approved demo request must apply"
            return
        comment = "The charge worked as designed; offered tips on prompts instead."
        row[9], row[10], row[11], row[12] = "rejected", approver, self.text(ts), comment
        self._operation(
            ts, kind="reject", actor=approver, key=self._key(),
            request={"request_id": request_id, "comment": comment}, reason=reason,
            reference=reference, note=comment, status="rejected",
            message=f"Request #{request_id} was rejected.", request_id=request_id,
        )

    def _decided(self, ts: int, approver: int, approval: tuple[int, str, str | None, str | None],
                 op: int, message: str, credits: int, details: dict[str, int | str | None]) -> None:
        request_id, reason, reference, comment = approval
        row = next(r for r in self.requests if r[0] == request_id)
        row[9], row[10], row[11], row[12], row[13] = (
            "approved", approver, self.text(ts), comment, op)
        self._operation(
            ts, kind="approve", actor=approver, key=self._key(),
            request={"request_id": request_id, "comment": comment}, reason=reason,
            reference=reference, note=comment, status="applied",
            message=f"Request #{request_id} approved. {message}", credits=credits,
            request_id=request_id, details=details, op=op,
        )

    # -- the account row -----------------------------------------------------------------

    def _finish(self) -> None:
        text = self.text
        rows = self.rows
        plan = purchased = refund = 0
        for g in self.grants:
            rem = g[G_REM]
            if g[G_SOURCE] == "plan":
                plan += rem
            elif g[G_SOURCE] == "refund":
                refund += rem
            else:
                purchased += rem
            rows.credit_grants.append((
                g[G_ID], self.aid, g[G_SOURCE], g[G_GRANTED], rem, text(g[G_CREATED]),
                None if g[G_EXPIRES] is None else text(g[G_EXPIRES]),
                None if g[G_PERIOD] is None else text(g[G_PERIOD]), g[G_PACKAGE], g[G_OP],
            ))
        for row in self.requests:
            rows.approval_requests.append(tuple(row))
        start, end = self.period
        rows.accounts.append((
            self.aid, self.name, self.email, normalise(self.name), normalise(self.email),
            self.plan_id, self.billing_day, self.status, text(self.created), text(start),
            text(end), plan, purchased, refund, self.unrefunded, text(self.last_activity),
            self.change_seq,
        ))


def run_accounts(world: World, ids: Ids, rows: Rows, first_index: int, count: int,
                 seed: int, names: NameMaker,
                 flush: Callable[[Rows], None], flush_rows: int) -> None:
    """Simulate accounts ``first_index`` .. ``first_index + count - 1`` into ``rows``.

    ``flush`` is called whenever the buffer holds ``flush_rows`` charges or more, so that
    memory stays bounded however many accounts there are.
    """
    for index in range(first_index, first_index + count):
        rng = random.Random(seed * 1_000_003 + index)
        company = names.company(rng)
        email = names.email(rng, company)
        AccountSim(world, ids, rows, index, rng, company, email).run()
        if len(rows.usage_charges) >= flush_rows:
            flush(rows)
