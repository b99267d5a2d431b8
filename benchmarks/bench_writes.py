"""Benchmark of two writes: one refund committed through ``services.refunds``, and an
incident refund of about 10,000 charges through ``services.incidents``, each next to a
raw SQL lower bound on the same database.

    python benchmarks/bench_writes.py [--db URL ...] [--rounds N]

Without ``--db`` the two databases of the 100,000-account / 10-million-charge run are
measured (``/tmp/credits_bench/bench-10m.sqlite3`` and ``credits_bench10``).

**These runs write to the database** (refunds, ledger entries, operations, audit rows,
as staff would), and each run takes charges nobody refunded before, so the benchmark
can run again on the same database until those run out (each figure's note says how
many more rounds the database allows). The staff member acting is an active finance
member (the demo's ``fay``; one named ``bench-finance`` is added through
``services.accounts.create_staff`` by an admin when there is none), signed in through
``services.accounts.sign_in``: finance may refund a failed charge of up to 500 credits
at once and run incident refunds.

* refund: ``refund_charges`` of one failed, unrefunded charge (the most recent one of a
  sampled account, not an image charge, at most 500 credits), each run a different
  charge, timed from the call to its return (committed). Raw bound: the same refund is
  first run through the service on a second engine whose commits are turned into
  rollbacks (the dialect's ``do_commit``), with its statements captured; those are
  replayed on one DBAPI connection in a transaction that is rolled back (so it leaves
  out the commit), then the real refund of that same charge is timed. On PostgreSQL
  the replay runs with ``session_replication_role = replica``: the sequences gave the
  rehearsal's rows ids that a replay cannot get again, so its later statements refer to
  an operation id that does not exist, and the foreign-key triggers (which would
  refuse them) are off for the replay; the bound is lower by those key checks.
* incident: ``run_incident`` (batches of 200, the Incident dialog's default), the code
  the dialog runs, of every unrefunded failed ``ad_image`` charge (once fewer than
  10,000 are left: of the feature with the most left) in a UTC window picked by
  counting: of the windows of at most 92 days (the longest allowed) holding the most
  such charges, up to 10,000, the one starting nearest the busiest hour (the demo's
  incident, while it lasts); previewed with ``preview_incident`` first, as the dialog
  does.
  Raw bound: one set-based transaction doing the same writes for the same charges
  (refund rows, ledger entries back to the live grants drawn from or to a new refund
  grant, grants, cached balances, the three rollups, audit rows), rolled back before
  the app's run, and checked to write as many refunds and ledger entries as the app
  then does. It is leaner than the app in ways the note lists.

``measure(url, rounds=N)`` returns one dict per figure for ``benchmarks/run_all.py``
(see ``bench_charts.figure``); ``--db``/``--rounds`` print them as a table.
"""

from __future__ import annotations

import bisect
import random
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench_charts import (  # noqa: E402
    Figure,
    RawReplay,
    captured,
    figure,
    fmt_ms,
    main,
    median,
    ms_since,
)
from sqlalchemy import exists, func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from credits_desktop.domain.permissions import Role  # noqa: E402
from credits_desktop.services.accounts import create_staff, sign_in  # noqa: E402
from credits_desktop.services.incidents import (  # noqa: E402
    MAX_WINDOW,
    IncidentScope,
    preview_incident,
    run_incident,
)
from credits_desktop.services.operations import Actor  # noqa: E402
from credits_desktop.services.reasons import RefundReason  # noqa: E402
from credits_desktop.services.refunds import RefundItem, refund_charges  # noqa: E402
from credits_desktop.store.database import Database  # noqa: E402
from credits_desktop.store.models import (  # noqa: E402
    Account,
    LedgerEntry,
    Refund,
    Staff,
    UsageCharge,
)

__all__ = ["measure"]

REFUND_TARGET_MS = 30.0
INCIDENT_TARGET_MS = 10_000.0
INCIDENT_CHARGES = 10_000
INCIDENT_FEATURE = "ad_image"
INCIDENT_BATCH = 200  # ui.incident_dialog.IncidentDialog's default batch size
FINANCE_LIMIT = 500  # domain.permissions.Limits.refund_limit: above it, a request
BENCH_FINANCE = "bench-finance"
SEED = 7


# -- who acts -------------------------------------------------------------------------------


def finance_actor(db: Database) -> Actor:
    """An active finance staff member, signed in (added by an admin if none exists)."""
    def first(session: Session, role: Role) -> str | None:
        name = session.scalar(select(Staff.username).where(
            Staff.role == role.value, Staff.active.is_(True)).order_by(Staff.id))
        return None if name is None else str(name)

    name = db.read(lambda s: first(s, Role.FINANCE))
    if name is None:
        admin = db.read(lambda s: first(s, Role.ADMIN))
        if admin is None:
            raise SystemExit(f"{db.display_url()} has no active finance member or admin.")
        create_staff(db, sign_in(db, admin), username=BENCH_FINANCE,
                     display_name="Benchmark finance", role=Role.FINANCE.value)
        name = BENCH_FINANCE
    return sign_in(db, name)


def rehearsal(url: str) -> Database:
    """A second handle on the database whose commits are rollbacks: a service call on it
    runs every statement of the real thing and leaves nothing behind."""
    db = Database.open(url)
    db.engine.dialect.do_commit = (  # type: ignore[method-assign]
        lambda dbapi_connection: dbapi_connection.rollback())
    return db


# -- one refund -----------------------------------------------------------------------------


def refundable_of(session: Session, account_id: int) -> tuple[int, int] | None:
    """The account's most recent failed, unrefunded charge a finance member may refund
    at once (not an image charge: those are the incident's), with its credits."""
    row = session.execute(
        select(UsageCharge.id, UsageCharge.credits)
        .where(UsageCharge.account_id == account_id, UsageCharge.status == "failed",
               UsageCharge.credits > 0, UsageCharge.credits <= FINANCE_LIMIT,
               UsageCharge.feature_code != INCIDENT_FEATURE,
               ~exists().where(Refund.charge_id == UsageCharge.id))
        .order_by(UsageCharge.occurred_at.desc()).limit(1)).first()
    return None if row is None else (int(row[0]), int(row[1]))


def pick_charges(db: Database, count: int) -> list[tuple[int, int, int]]:
    """``count`` (account, charge, credits) of different sampled accounts."""
    ids = db.read(lambda s: [int(i) for i in s.scalars(select(Account.id))])
    rng = random.Random(f"{SEED}-{time.time_ns()}")
    rng.shuffle(ids)
    found: list[tuple[int, int, int]] = []
    for account_id in ids:
        if len(found) == count:
            break
        charge = db.read(partial(refundable_of, account_id=account_id))
        if charge is not None:
            found.append((account_id, *charge))
    if len(found) < count:
        raise SystemExit(f"Only {len(found)} refundable charges were found; {count} needed.")
    return found


def refund_runs(db: Database, dry: Database, replay: RawReplay, actor: Actor,
                rounds: int) -> Figure:
    app_ms: list[float] = []
    raw_ms: list[float] = []
    rehearsal_ms: list[float] = []
    statements = 0
    before = ["SET LOCAL session_replication_role = replica"] if replay.postgresql else []
    picked = pick_charges(db, rounds)
    for account_id, charge_id, _credits in picked:
        def refund(on: Database, key: str, a: int = account_id, c: int = charge_id) -> str:
            result = refund_charges(
                on, actor, account_id=a, items=[RefundItem(c)],
                reason_code=RefundReason.FAILED_GENERATION.value, ticket="BENCH-REFUND",
                idempotency_key=key, note=None)
            return result.status

        recorded, ms = captured(lambda: refund(dry, f"bench-dry-{uuid.uuid4()}"))
        rehearsal_ms.append(ms)
        statements = sum(1 for s in recorded if s is not None)
        raw_ms.append(replay.run(recorded, before=before))
        began = time.perf_counter()
        status = refund(db, f"bench-refund-{uuid.uuid4()}")
        app_ms.append(ms_since(began))
        if status != "applied":
            raise SystemExit(f"The refund of charge {charge_id} was not applied: {status}.")
    left = db.read(lambda s: s.scalar(
        select(func.count()).select_from(UsageCharge)
        .where(UsageCharge.status == "failed", UsageCharge.credits > 0,
               UsageCharge.credits <= FINANCE_LIMIT,
               UsageCharge.feature_code != INCIDENT_FEATURE,
               ~exists().where(Refund.charge_id == UsageCharge.id))))
    credits = sorted(c for _a, _i, c in picked)
    return figure(
        f"one refund committed (failed charge, {len(picked)} charges, median "
        f"{credits[len(credits) // 2]} credits)", REFUND_TARGET_MS, app_ms, raw_ms, None,
        f"refund_charges as finance, to its return (committed); charges "
        f"{', '.join(str(c) for _a, c, _n in picked)}; raw: the {statements} statements the "
        "same refund issued in a rehearsal (commit turned into rollback), replayed and rolled "
        "back, without the commit"
        + ("; foreign-key triggers off in the replay (ids the sequences gave the rehearsal)"
           if replay.postgresql else "")
        + f"; rehearsal median {fmt_ms(median(rehearsal_ms))} ms; {int(left or 0):,} such "
        "charges left (rounds the database allows)")


# -- the incident ---------------------------------------------------------------------------


def refundable_by_feature(db: Database) -> dict[str, int]:
    """Failed, unrefunded, costing charges per feature (through the failed-charges index)."""
    return db.read(lambda s: {str(code): int(n) for code, n in s.execute(
        select(UsageCharge.feature_code, func.count())
        .where(UsageCharge.status == "failed", UsageCharge.credits > 0,
               ~exists().where(Refund.charge_id == UsageCharge.id))
        .group_by(UsageCharge.feature_code))})


def incident_feature(counts: dict[str, int]) -> str:
    """The demo incident's feature while it holds a run's worth of charges, else the
    feature with the most left (so that the benchmark can run again and again)."""
    if counts.get(INCIDENT_FEATURE, 0) >= INCIDENT_CHARGES or not counts:
        return INCIDENT_FEATURE
    return max(sorted(counts), key=lambda code: counts[code])


def unrefunded_times(db: Database, feature: str) -> list[datetime]:
    """When each failed, unrefunded, costing charge of ``feature`` was made."""
    return db.read(lambda s: [t for t in s.scalars(
        select(UsageCharge.occurred_at)
        .where(UsageCharge.feature_code == feature, UsageCharge.status == "failed",
               UsageCharge.credits > 0, ~exists().where(Refund.charge_id == UsageCharge.id))
        .order_by(UsageCharge.occurred_at))])


def pick_window(times: Sequence[datetime]) -> tuple[datetime, datetime] | None:
    """A window ``[start, end)`` holding up to ``INCIDENT_CHARGES`` of ``times`` (sorted),
    at most ``MAX_WINDOW`` long: of those holding the most, the one starting nearest the
    busiest hour (the demo's incident, while its charges last)."""
    count = len(times)
    if not count:
        return None
    hours = Counter(t.replace(minute=0, second=0, microsecond=0) for t in times)
    busiest = min(hours.items(), key=lambda item: (-item[1], item[0]))[0]
    anchor = bisect.bisect_left(times, busiest)
    best: tuple[tuple[int, int], int, int] | None = None
    after = 0  # one past the window's last charge: moves forward only
    for first in range(count):
        limit = times[first] + MAX_WINDOW
        after = max(after, first)
        while after < count and after - first < INCIDENT_CHARGES and times[after] < limit:
            after += 1
        key = (after - first, -abs(first - anchor))
        if best is None or key > best[0]:
            best = (key, first, after)
    assert best is not None
    _key, first, after = best
    start = times[first]
    end = times[after] if after < count else times[-1] + timedelta(seconds=1)
    return start, min(end, start + MAX_WINDOW)


def pg_params(sql: str) -> str:
    """``:name`` placeholders (SQLite's named style) as psycopg's ``%(name)s``."""
    return re.sub(r"(?<![:\w]):([a-z_]+)", r"%(\1)s", sql)


# One transaction doing an incident refund's writes set-based (see raw_incident). Each
# statement is written for both databases; {day} is the UTC day of a charge's time. The
# CROSS JOINs make SQLite (which has no statistics for the temporary tables) go from the
# charges to their ledger entries by index; PostgreSQL plans them as inner joins.
RAW_INCIDENT = [
    """CREATE TEMP TABLE bench_inc AS
       SELECT c.id AS charge_id, c.account_id, c.credits, c.feature_code,
              COALESCE(c.model, '') AS model, {day} AS day
       FROM usage_charges c
       WHERE c.feature_code = :feature AND c.occurred_at >= :start AND c.occurred_at < :end
         AND c.status = 'failed' AND c.credits > 0
         AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.charge_id = c.id)""",
    """CREATE TEMP TABLE bench_draw AS
       SELECT i.charge_id, i.account_id, l.grant_id, -l.delta AS credits, g.source,
              CASE WHEN g.expires_at IS NULL OR g.expires_at > :now THEN 1 ELSE 0 END AS live
       FROM bench_inc i CROSS JOIN ledger_entries l CROSS JOIN credit_grants g
       WHERE l.charge_id = i.charge_id AND l.kind = 'charge' AND g.id = l.grant_id""",
    """INSERT INTO credit_grants (account_id, source, granted, remaining, created_at,
                                  expires_at, period_start, package_id, operation_id)
       SELECT account_id, 'refund', SUM(credits), SUM(credits), :now, NULL, NULL, NULL, :op
       FROM bench_draw WHERE live = 0 GROUP BY account_id""",
    """INSERT INTO ledger_entries (account_id, grant_id, kind, delta, charge_id, operation_id,
                                   actor_id, reason, reference, created_at)
       SELECT account_id, grant_id, 'refund', credits, charge_id, :op, :actor, :reason, :ref,
              :now
       FROM bench_draw WHERE live = 1""",
    """INSERT INTO ledger_entries (account_id, grant_id, kind, delta, charge_id, operation_id,
                                   actor_id, reason, reference, created_at)
       SELECT d.account_id, g.id, 'refund', SUM(d.credits), d.charge_id, :op, :actor, :reason,
              :ref, :now
       FROM bench_draw d
       JOIN credit_grants g ON g.account_id = d.account_id AND g.operation_id = :op
                            AND g.source = 'refund'
       WHERE d.live = 0
       GROUP BY d.account_id, g.id, d.charge_id""",
    """UPDATE credit_grants SET remaining = credit_grants.remaining + s.credits
       FROM (SELECT grant_id, SUM(credits) AS credits FROM bench_draw WHERE live = 1
             GROUP BY grant_id) AS s
       WHERE credit_grants.id = s.grant_id""",
    """INSERT INTO refunds (charge_id, account_id, credits, reason_code, operation_id,
                           created_at)
       SELECT charge_id, account_id, credits, 'failed_generation', :op, :now FROM bench_inc""",
    """UPDATE accounts SET
         plan_balance = accounts.plan_balance + s.plan,
         purchased_balance = accounts.purchased_balance + s.purchased,
         refund_balance = accounts.refund_balance + s.refund,
         unrefunded_failed = accounts.unrefunded_failed - s.charges,
         change_seq = accounts.change_seq + 1,
         last_activity_at = :now
       FROM (SELECT account_id,
               SUM(CASE WHEN live = 1 AND source = 'plan' THEN credits ELSE 0 END) AS plan,
               SUM(CASE WHEN live = 1 AND source NOT IN ('plan', 'refund') THEN credits
                        ELSE 0 END) AS purchased,
               SUM(CASE WHEN live = 0 OR source = 'refund' THEN credits ELSE 0 END) AS refund,
               COUNT(DISTINCT charge_id) AS charges
             FROM bench_draw GROUP BY account_id) AS s
       WHERE accounts.id = s.account_id""",
    """INSERT INTO usage_daily_account (account_id, day, feature_code, charges, credits,
                                        failed, failed_credits, refunded_credits)
       SELECT account_id, day, feature_code, 0, 0, 0, 0, SUM(credits) FROM bench_inc
       WHERE true GROUP BY account_id, day, feature_code
       ON CONFLICT (account_id, day, feature_code) DO UPDATE
       SET refunded_credits = usage_daily_account.refunded_credits + excluded.refunded_credits""",
    """INSERT INTO usage_daily (day, feature_code, model, plan_code, charges, credits, failed,
                                failed_credits, refunded_credits)
       SELECT i.day, i.feature_code, i.model, p.code, 0, 0, 0, 0, SUM(i.credits)
       FROM bench_inc i JOIN accounts a ON a.id = i.account_id JOIN plans p ON p.id = a.plan_id
       WHERE true GROUP BY i.day, i.feature_code, i.model, p.code
       ON CONFLICT (day, feature_code, model, plan_code) DO UPDATE
       SET refunded_credits = usage_daily.refunded_credits + excluded.refunded_credits""",
    """INSERT INTO refunds_daily (day, feature_code, plan_code, refunds, credits)
       SELECT :today, i.feature_code, p.code, COUNT(*), SUM(i.credits)
       FROM bench_inc i JOIN accounts a ON a.id = i.account_id JOIN plans p ON p.id = a.plan_id
       WHERE true GROUP BY i.feature_code, p.code
       ON CONFLICT (day, feature_code, plan_code) DO UPDATE
       SET refunds = refunds_daily.refunds + excluded.refunds,
           credits = refunds_daily.credits + excluded.credits""",
    """INSERT INTO audit_events (at, actor_id, action, outcome, account_id, operation_id, detail)
       SELECT :now, :actor, 'incident_refund', 'applied', account_id, :op, :detail
       FROM bench_inc WHERE true GROUP BY account_id""",
    """INSERT INTO audit_events (at, actor_id, action, outcome, account_id, operation_id, detail)
       VALUES (:now, :actor, 'incident_refund', 'applied', NULL, :op, :detail)""",
]
RAW_OPERATION = """
    INSERT INTO operations (idempotency_key, fingerprint, kind, actor_id, account_id, reason,
                            reference, note, created_at, result)
    VALUES (:key, :fingerprint, 'incident_refund', :actor, NULL, :reason, :ref, NULL, :now,
            '{}')
    RETURNING id"""
RAW_COUNTS = """
    SELECT (SELECT COUNT(*) FROM refunds WHERE operation_id = :op),
           (SELECT COUNT(*) FROM ledger_entries WHERE operation_id = :op)"""


@dataclass
class RawIncident:
    ms: float
    refunds: int
    ledger: int
    steps: list[float]  # milliseconds of each of RAW_INCIDENT's statements


def raw_incident(replay: RawReplay, actor: Actor, feature: str, start: datetime,
                 end: datetime) -> RawIncident:
    """The incident's writes as one set-based transaction, rolled back (timed with the
    rollback), with the refunds and ledger entries it wrote."""
    conn = replay.conn
    postgresql = replay.postgresql
    now = datetime.now(UTC)

    def when(moment: datetime) -> Any:
        # SQLite keeps naive UTC text ('YYYY-MM-DD HH:MM:SS.ffffff'), as store.types does.
        return moment if postgresql else moment.astimezone(UTC).replace(tzinfo=None).isoformat(
            sep=" ", timespec="microseconds")

    params: dict[str, Any] = {
        "feature": feature, "start": when(start), "end": when(end), "now": when(now),
        "today": now.date() if postgresql else now.date().isoformat(),
        "actor": actor.staff_id, "reason": "Incident refund: failed generation",
        "ref": "BENCH-INCIDENT-RAW", "key": f"bench-raw-{uuid.uuid4()}",
        "fingerprint": "0" * 64, "detail": "Incident BENCH-INCIDENT-RAW (raw SQL bound)",
    }
    day = ("CAST(timezone('UTC', c.occurred_at) AS date)" if postgresql
           else "substr(c.occurred_at, 1, 10)")

    def sql(text: str) -> str:
        text = text.replace("{day}", day)
        return pg_params(text) if postgresql else text

    cursor = conn.cursor()
    steps: list[float] = []
    began = time.perf_counter()
    try:
        if not postgresql:
            cursor.execute("BEGIN IMMEDIATE")
        cursor.execute(sql(RAW_OPERATION), params)
        params["op"] = int(cursor.fetchone()[0])
        for statement in RAW_INCIDENT:
            step = time.perf_counter()
            cursor.execute(sql(statement), params)
            steps.append(ms_since(step))
        elapsed_before_counts = ms_since(began)
        cursor.execute(sql(RAW_COUNTS), params)
        refunds, ledger = (int(v) for v in cursor.fetchone())
        counted = time.perf_counter()
        conn.rollback()
        elapsed = elapsed_before_counts + ms_since(counted)
    except BaseException:
        conn.rollback()
        raise
    finally:
        cursor.close()
    return RawIncident(elapsed, refunds, ledger, steps)


def app_counts(db: Database, operation_ids: Sequence[int]) -> tuple[int, int]:
    """Refunds and ledger entries the app's run wrote (all its batches' operations)."""
    ids = list(operation_ids)
    return db.read(lambda s: (
        int(s.scalar(select(func.count()).select_from(Refund)
                     .where(Refund.operation_id.in_(ids))) or 0),
        int(s.scalar(select(func.count()).select_from(LedgerEntry)
                     .where(LedgerEntry.operation_id.in_(ids))) or 0)))


def incident_runs(db: Database, replay: RawReplay, actor: Actor, rounds: int) -> Figure:
    app_ms: list[float] = []
    raw_ms: list[float] = []
    runs: list[str] = []
    batches = 0
    for number in range(rounds):
        feature = incident_feature(refundable_by_feature(db))
        window = pick_window(unrefunded_times(db, feature))
        if window is None:
            raise SystemExit("No failed charge is left to refund.")
        start, end = window
        scope = IncidentScope(feature, None, start, end)
        preview = preview_incident(db, actor, scope, sample=20)
        raw = raw_incident(replay, actor, feature, start, end)
        ref = f"BENCH-INC-{datetime.now(UTC):%Y%m%d%H%M%S}-{number}"
        began = time.perf_counter()
        summary = run_incident(db, actor, scope, incident_ref=ref, batch_size=INCIDENT_BATCH,
                               progress=lambda _done, _total: None, cancelled=lambda: False)
        app_ms.append(ms_since(began))
        raw_ms.append(raw.ms)
        if not summary.complete or summary.charges_refunded != preview.charges:
            raise SystemExit(f"The incident run was not complete: {summary.text()}")
        refunds, ledger = app_counts(db, summary.operation_ids)
        if (raw.refunds, raw.ledger) != (refunds, ledger):
            raise SystemExit(
                f"The raw SQL wrote {raw.refunds} refunds and {raw.ledger} ledger entries; "
                f"the app {refunds} and {ledger}.")
        batches = len(summary.operation_ids)
        runs.append(f"{summary.charges_refunded:,} {feature} charges of {summary.accounts:,} "
                    "accounts "
                    f"({start:%Y-%m-%d %H:%M}–{end:%Y-%m-%d %H:%M} UTC)")
    left = refundable_by_feature(db)
    return figure(
        f"incident refund of ~{INCIDENT_CHARGES:,} failed charges of one feature "
        f"(batches of {INCIDENT_BATCH})", INCIDENT_TARGET_MS, app_ms, raw_ms, None,
        f"run_incident as finance, to its return ({batches} batches, each a committed "
        f"transaction); runs: {'; '.join(runs)}; "
        "raw: one set-based transaction (temporary tables of the charges and their draws, "
        "INSERT … SELECT / UPDATE … FROM / upserts), same refunds and ledger entries as the "
        "app, rolled back instead of committed, one operation instead of one per batch, one "
        "refund grant per account instead of per charge, no idempotency or period-roll "
        f"checks; unrefunded failed charges left: "
        + ", ".join(f"{code} {n:,}" for code, n in sorted(left.items()))
        + f": about {sum(n // INCIDENT_CHARGES for n in left.values())} more round(s) "
        f"({INCIDENT_FEATURE} first, then the feature with the most left; a window spans "
        "92 days at most)")


# -- one database ---------------------------------------------------------------------------


def measure(url: str, *, rounds: int) -> list[Figure]:
    """The figures of one database (see the module docstring). Writes to it."""
    db = Database.open(url)
    dry = rehearsal(url)
    replay = RawReplay(url)
    try:
        name = "PostgreSQL" if db.is_postgresql else "SQLite"
        print(f"{name} {db.display_url()}: writes…", flush=True)
        actor = finance_actor(db)
        print(f"  one refund × {rounds} (as {actor.username})…", flush=True)
        figures = [refund_runs(db, dry, replay, actor, rounds)]
        print(f"  incident refund × {rounds}…", flush=True)
        figures.append(incident_runs(db, replay, actor, rounds))
        return figures
    finally:
        replay.close()
        dry.close()
        db.close()


if __name__ == "__main__":
    raise SystemExit(main(measure_fn=measure, description=(__doc__ or "").split("\n\n")[0]))
