"""The reason codes staff pick from, with the words shown for them."""

from __future__ import annotations

from enum import StrEnum


class RefundReason(StrEnum):
    FAILED_GENERATION = "failed_generation"
    DUPLICATE_CHARGE = "duplicate_charge"
    QUALITY_PROBLEM = "quality_problem"
    GOODWILL = "goodwill"
    OTHER = "other"


class AdjustmentReason(StrEnum):
    MANUAL_SALE = "manual_sale"
    COMPENSATION = "compensation"
    CHARGEBACK = "chargeback"
    CORRECTION = "correction"


REASON_LABELS: dict[str, str] = {
    RefundReason.FAILED_GENERATION: "Failed generation",
    RefundReason.DUPLICATE_CHARGE: "Duplicate charge",
    RefundReason.QUALITY_PROBLEM: "Quality problem",
    RefundReason.GOODWILL: "Goodwill",
    RefundReason.OTHER: "Other",
    AdjustmentReason.MANUAL_SALE: "Manual sale or invoice",
    AdjustmentReason.COMPENSATION: "Compensation",
    AdjustmentReason.CHARGEBACK: "Chargeback",
    AdjustmentReason.CORRECTION: "Correction",
}
