"""The concurrency stress of ``benchmarks/stress.py``, short enough for CI.

Several client processes run random charges, refunds, adjustments, approvals,
rejections, period roll-overs and double submissions on a few hot accounts through
the real services, then ``credits-desktop check`` must find every rule kept, no charge
refunded twice, and exactly the effects of the operations the clients were told were
applied (see the benchmark's docstring). Timing is never asserted: only that every
kind of operation happened and that the clients really contended.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import stress

# PostgreSQL takes more clients than a SQLite file, which has one writer at a time.
SIZES = {"sqlite": (2, 5.0), "postgresql": (4, 8.0)}


@pytest.mark.slow
def test_concurrent_staff_keep_every_rule(db_url: str) -> None:
    clients, seconds = SIZES["sqlite" if db_url.startswith("sqlite") else "postgresql"]
    # Two simulated hours per operation: a few hundred operations cross a billing period.
    result = stress.run_stress(stress.Options(db_url, clients, seconds, accounts=3,
                                              minutes_per_op=120))
    report = result.report

    assert result.ok, stress.render(result)
    assert result.proofs["double_refunds"] == 0
    for kind in ("charge", "refund", "adjust", "approve", "reject", "roll"):
        assert report.stats[kind].outcomes["applied" if kind != "reject" else "rejected"] > 0, (
            kind, stress.render(result))
    # Large refunds and adjustments became requests, and double clicks were answered
    # with the stored result.
    assert report.requests_made, stress.render(result)
    assert sum(s.outcomes["replayed"] for s in report.stats.values()) > 0
    # The clients raced for the same charges: some refunds found the charge refunded.
    refused = report.stats["refund"].outcomes
    assert any("AlreadyRefunded" in reason for reason in refused), stress.render(result)
    # Billing periods ended during the run and were rolled over.
    assert result.proofs["plan_grants"] > result.proofs["accounts"], stress.render(result)
