"""The product catalogue: plans, credit packages and feature prices.

``ensure_catalog`` puts the standard catalogue into an empty database (the demo
data and the tests start from it); admins change prices later by adding price
rows with a later ``valid_from``, never by editing old ones.

``list_plans`` and ``list_features`` read the catalogue back as small frozen
dataclasses, for the screens' choice lists (filters), which must follow what the
database holds rather than a list written into the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from credits_desktop.store.database import Database
from credits_desktop.store.models import CreditPackage, Feature, FeaturePrice, Plan

PLANS = [
    # code, name, monthly allotment
    ("starter", "Starter", 500),
    ("growth", "Growth", 2_000),
    ("pro", "Pro", 6_000),
    ("agency", "Agency", 20_000),
]

PACKAGES = [
    # code, name, credits, price in cents
    ("pack_500", "500 credits", 500, 2_500),
    ("pack_2000", "2,000 credits", 2_000, 9_000),
    ("pack_10000", "10,000 credits", 10_000, 40_000),
]

SINCE = datetime(2024, 1, 1, tzinfo=UTC)

PRICES = [
    # feature, model (None = every model), credits, valid from
    ("ad_image", None, 40, SINCE),
    ("ad_image", "imagen-ultra", 60, SINCE),
    ("ad_image", "flux-fast", 25, SINCE),
    ("video_transcription", None, 12, SINCE),
    ("video_script", None, 15, SINCE),
    ("url_brief", None, 8, SINCE),
    ("radar_analysis", None, 10, SINCE),
    ("review_mining", None, 20, SINCE),
    ("asset_tagging", None, 2, SINCE),
]


def ensure_catalog(session: Session) -> None:
    """Add any missing standard plan, package and price (idempotent)."""
    have_plans = set(session.scalars(select(Plan.code)))
    for code, name, allotment in PLANS:
        if code not in have_plans:
            session.add(Plan(code=code, name=name, monthly_allotment=allotment, active=True))
    have_packages = set(session.scalars(select(CreditPackage.code)))
    for code, name, credits, cents in PACKAGES:
        if code not in have_packages:
            session.add(CreditPackage(code=code, name=name, credits=credits,
                                      price_cents=cents, active=True))
    have_prices = {
        (f, m, t.replace(tzinfo=UTC) if t.tzinfo is None else t)
        for f, m, t in session.execute(
            select(FeaturePrice.feature_code, FeaturePrice.model, FeaturePrice.valid_from)
        )
    }
    for feature, model, credits, since in PRICES:
        if (feature, model, since) not in have_prices:
            session.add(FeaturePrice(feature_code=feature, model=model, credits=credits,
                                     valid_from=since))
    session.flush()


# -- reading the catalogue ------------------------------------------------------------


@dataclass(frozen=True)
class PlanChoice:
    """A plan as a choice list shows it."""

    code: str
    name: str
    allotment: int


@dataclass(frozen=True)
class FeatureChoice:
    """An AI feature as a choice list shows it; ``enabled`` False means switched off."""

    code: str
    name: str
    enabled: bool


def list_plans(db: Database) -> list[PlanChoice]:
    """Every plan, smallest monthly allotment first (ties by code).

    Retired plans are listed too: accounts may still be on them. Sorted here rather
    than in SQL so that both databases give the same order whatever their collation.
    """

    def work(session: Session) -> list[PlanChoice]:
        rows = session.execute(select(Plan.code, Plan.name, Plan.monthly_allotment)).all()
        plans = [PlanChoice(code=r[0], name=r[1], allotment=int(r[2])) for r in rows]
        return sorted(plans, key=lambda p: (p.allotment, p.code))

    return db.read(work)


def list_features(db: Database) -> list[FeatureChoice]:
    """Every AI feature, switched off ones included (old charges may use them), by
    name, case-insensitively (ties by code)."""

    def work(session: Session) -> list[FeatureChoice]:
        rows = session.execute(select(Feature.code, Feature.name, Feature.enabled)).all()
        features = [FeatureChoice(code=r[0], name=r[1], enabled=bool(r[2])) for r in rows]
        return sorted(features, key=lambda f: (f.name.casefold(), f.code))

    return db.read(work)
