"""The shared setting of a demo run: usage rhythm, feature mix, prices, incident, scenarios.

These are computed once per run from the catalogue and the seed, and handed to every
simulated account through ``demo_sim.World``.
"""

from __future__ import annotations

import itertools
import random
from bisect import bisect_right
from collections.abc import Sequence

from .demo_sim import DAY, FEATURE_FAILURES, GENERAL_FAILURES, HOUR, Option

__all__ = [
    "failure_tables",
    "incident_window",
    "make_options",
    "price_steps",
    "scenario_plan",
    "slot_weights",
    "time_table",
]


def scenario_plan(rng: random.Random, accounts: int) -> dict[int, list[str]]:
    """Which accounts get which staff scenario: a few of each, at least one or two."""
    wanted = {
        "adjust": max(3, accounts // 25),
        "manager_refund": max(2, accounts // 120),
        "adjust_reversed": max(1, accounts // 900),
        "refund_reversed": max(1, accounts // 900),
        "pending_refund": max(2, min(25, accounts // 300)),
        "pending_adjust": max(1, min(10, accounts // 600)),
        "approved": max(1, min(40, accounts // 400)),
        "rejected": max(1, min(20, accounts // 700)),
    }
    plan: dict[int, list[str]] = {}
    for kind, count in wanted.items():
        for index in rng.sample(range(accounts), min(count, accounts)):
            plan.setdefault(index, []).append(kind)
    return plan


def slot_weights(start_ts: int, now_ts: int) -> list[float]:
    """Cumulative usage weight of each local hour from ``start_ts`` to ``now_ts``.

    Busy in working hours, quieter at weekends, growing a little over the window; scaled
    so that one day weighs 1 on average.
    """
    hours = max(1, (now_ts - start_ts) // HOUR + 2)
    shape = [0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.45, 0.9, 1.5, 1.9, 2.0, 1.9,
             1.5, 1.8, 2.0, 1.9, 1.7, 1.3, 0.9, 0.7, 0.6, 0.5, 0.35, 0.25]
    week = [1.0, 1.05, 1.05, 1.0, 0.9, 0.45, 0.35]
    raw = []
    for k in range(hours):
        ts = start_ts + k * HOUR
        day = ts // DAY
        raw.append(shape[(ts % DAY) // HOUR] * week[(day + 3) % 7] * (1.0 + 0.3 * k / hours))
    scale = hours / 24 / sum(raw)
    return [0.0, *itertools.accumulate(w * scale for w in raw)]


def time_table(cumulative: list[float], size: int = 1 << 16) -> list[int]:
    """Seconds from the window's start of ``size`` equally likely hours of use."""
    total = cumulative[-1]
    return [(bisect_right(cumulative, (j + 0.5) / size * total) - 1) * HOUR
            for j in range(size)]


def make_options(features: dict[str, str], enabled: set[str],
                 prices: Sequence[tuple[str, str | None]]) -> list[Option]:
    """The feature/model pairs charges are for, with the usage mix and failure rates."""
    weights = {"ad_image": 34.0, "video_transcription": 12.0, "video_script": 12.0,
               "url_brief": 16.0, "radar_analysis": 15.0, "review_mining": 11.0}
    model_share = {None: 0.5, "imagen-ultra": 0.2, "flux-fast": 0.3}
    rates = {"ad_image": 0.04, "video_transcription": 0.03, "video_script": 0.02,
             "url_brief": 0.025, "radar_analysis": 0.015, "review_mining": 0.02}
    prefixes = {"ad_image": "img_", "video_transcription": "vtr_", "video_script": "vsc_",
                "url_brief": "url_", "radar_analysis": "rdr_", "review_mining": "rvw_"}
    options = []
    models_of: dict[str, list[str | None]] = {}
    for feature, model in prices:
        if feature in enabled:
            models_of.setdefault(feature, [])
            if model not in models_of[feature]:
                models_of[feature].append(model)
    for feature in sorted(models_of):
        models = sorted(models_of[feature], key=lambda m: (m is not None, m or ""))
        if None not in models:
            continue  # without a default price a model-less charge has no price
        shares = [model_share.get(m, 0.1) for m in models]
        failures = list(GENERAL_FAILURES)
        if feature in FEATURE_FAILURES:
            failures.append(FEATURE_FAILURES[feature])
        for model, share in zip(models, shares, strict=True):
            options.append(Option(
                feature=feature, model=model, reason=f"Usage: {features[feature]}",
                prefix=prefixes.get(feature, "gen_"),
                weight=weights.get(feature, 8.0) * share / sum(shares),
                fail_rate=rates.get(feature, 0.02) * (1.25 if model == "imagen-ultra" else 1.0),
                failures=tuple(failures),
            ))
    return options


def price_steps(options: list[Option], rows: Sequence[tuple[str, str | None, int, int]],
                start_ts: int, now_ts: int) -> list[tuple[int, list[int]]]:
    """Each option's price over the window, as ``charges.price_of`` answers it.

    A model's own price wins over the feature's default; the newest valid price wins.
    """
    changes = sorted({valid for _, _, _, valid in rows if start_ts < valid <= now_ts})

    def at(ts: int) -> list[int]:
        result = []
        for o in options:
            own = [(v, c) for f, m, c, v in rows if f == o.feature and m == o.model and v <= ts]
            default = [(v, c) for f, m, c, v in rows if f == o.feature and m is None and v <= ts]
            best = max(own or default, default=None)
            result.append(best[1] if best is not None else -1)
        return result

    return [(start_ts, at(start_ts))] + [(t, at(t)) for t in changes]


def failure_tables(options: list[Option], incident: bool) -> list[tuple[list[str], list[int]]]:
    """Per option, the failure reasons and their cumulative weights for ``random.choices``.

    During the incident nearly every image failure is the crashing GPU workers.
    """
    tables = []
    for o in options:
        failures = list(o.failures)
        if incident and o.feature == "ad_image":
            failures = [(reason, 400 if reason == "GPU worker crashed" else weight)
                        for reason, weight in failures]
        names = [reason for reason, _ in failures]
        tables.append((names, list(itertools.accumulate(weight for _, weight in failures))))
    return tables


def incident_window(rng: random.Random, start_ts: int, now_ts: int) -> tuple[int, int]:
    """One afternoon, in the second half of the window, when image generation kept failing."""
    window = max(now_ts - start_ts, DAY)
    day = (start_ts + int(window * rng.uniform(0.45, 0.75))) // DAY * DAY
    return day + 13 * HOUR, day + 18 * HOUR
