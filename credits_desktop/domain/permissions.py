"""Who may do what: the role matrix of the product brief as one pure function.

``decide`` answers allow, request (recorded as pending until a different staff member with
approval rights approves it) or deny, with a plain sentence the screen can show. The credit
limits are defaults that an admin may change, so they are passed in as ``Limits``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never

from credits_desktop.domain._checks import require_int

__all__ = [
    "APPROVER_ROLES",
    "DEFAULT_LIMITS",
    "HUMAN_ROLES",
    "ROLE_LABELS",
    "Action",
    "Decision",
    "Limits",
    "Role",
    "Verdict",
    "decide",
    "decide_approval",
]


class Role(StrEnum):
    """A staff role, or SYSTEM for the ad platform service account and the period scheduler."""

    SUPPORT = "support"
    FINANCE = "finance"
    MANAGER = "manager"
    ADMIN = "admin"
    SYSTEM = "system"


HUMAN_ROLES: tuple[Role, ...] = (Role.SUPPORT, Role.FINANCE, Role.MANAGER, Role.ADMIN)

ROLE_LABELS: dict[Role, str] = {
    Role.SUPPORT: "Support",
    Role.FINANCE: "Finance",
    Role.MANAGER: "Manager",
    Role.ADMIN: "Admin",
    Role.SYSTEM: "System",
}


class Action(StrEnum):
    """Something a user of the desk (or the platform) may try to do."""

    BROWSE = "browse"
    REFUND = "refund"
    ADJUST_PURCHASED = "adjust_purchased"
    APPROVE = "approve"
    INCIDENT_REFUND = "incident_refund"
    CHARTS = "charts"
    EXPORT = "export"
    ADMINISTER = "administer"
    RECORD_USAGE = "record_usage"
    BUY_PACKAGE = "buy_package"
    ROLL_PERIODS = "roll_periods"


class Verdict(StrEnum):
    """The outcome of a permission check."""

    ALLOW = "allow"
    REQUEST = "request"
    DENY = "deny"


@dataclass(frozen=True)
class Limits:
    """Credit limits above which a refund or an adjustment needs more than the role alone."""

    refund_limit: int = 500
    adjust_limit: int = 1000

    def __post_init__(self) -> None:
        for name, value in (("refund", self.refund_limit), ("adjustment", self.adjust_limit)):
            require_int(value, f"The {name} limit")
            if value < 0:
                raise ValueError(f"The {name} limit cannot be negative; got {value}.")


# A module constant rather than ``Limits()`` in the signature: one shared immutable default.
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Decision:
    """A verdict and, unless it is a plain allow, the reason in words staff understand."""

    verdict: Verdict
    reason: str

    @property
    def allowed(self) -> bool:
        """True only for ALLOW; a REQUEST still needs someone else's approval."""
        return self.verdict is Verdict.ALLOW


_ALLOW = Decision(Verdict.ALLOW, "")

# Roles that may approve requests and run incident refunds and exports.
APPROVER_ROLES: frozenset[Role] = frozenset({Role.FINANCE, Role.MANAGER, Role.ADMIN})
_ADJUSTER_ROLES: frozenset[Role] = frozenset({Role.FINANCE, Role.ADMIN})
# Roles whose refunds never need approval, whatever the size or the charge's outcome.
_UNLIMITED_REFUND_ROLES: frozenset[Role] = frozenset({Role.MANAGER, Role.ADMIN})
_SYSTEM_ACTIONS: frozenset[Action] = frozenset(
    {Action.RECORD_USAGE, Action.BUY_PACKAGE, Action.ROLL_PERIODS, Action.BROWSE}
)
_APPROVERS_TEXT = "a finance, manager or admin colleague"


def _deny(reason: str) -> Decision:
    return Decision(Verdict.DENY, reason)


def _request(reason: str) -> Decision:
    return Decision(Verdict.REQUEST, reason)


def decide(
    role: Role,
    action: Action,
    *,
    credits: int = 0,
    charge_failed: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> Decision:
    """Decide whether ``role`` may do ``action``.

    ``credits`` is the size of the refund or adjustment (its absolute value is used, so a
    removal of 300 counts as 300); ``charge_failed`` says whether the refunded charge failed.
    Both only matter for REFUND and ADJUST_PURCHASED.
    """
    role = Role(role)
    action = Action(action)
    size = abs(require_int(credits, "The credits"))

    if role is Role.SYSTEM:
        # The service account only feeds usage and purchases in and rolls periods.
        if action in _SYSTEM_ACTIONS:
            return _ALLOW
        return _deny("The system account cannot do this; it is reserved for staff.")

    if action in (Action.BROWSE, Action.CHARTS):
        return _ALLOW

    if action is Action.RECORD_USAGE:
        return _deny("Usage is recorded by the ad platform, not by staff.")
    if action is Action.BUY_PACKAGE:
        return _deny(
            "Customers buy packages through the platform; staff adjust purchased credits instead."
        )
    if action is Action.ROLL_PERIODS:
        if role is Role.ADMIN:
            return _ALLOW
        return _deny("Starting new billing periods by hand needs the admin role.")

    if action is Action.REFUND:
        if role in _UNLIMITED_REFUND_ROLES:
            return _ALLOW
        if not charge_failed:
            return _request(
                f"Refunding a charge that did not fail needs approval by {_APPROVERS_TEXT}."
            )
        if size > limits.refund_limit:
            return _request(
                f"Refunds above {limits.refund_limit:,} credits need approval by {_APPROVERS_TEXT}."
            )
        return _ALLOW

    if action is Action.ADJUST_PURCHASED:
        if role not in _ADJUSTER_ROLES:
            return _deny("Adjusting purchased credits needs the finance or admin role.")
        if size > limits.adjust_limit:
            # Even an admin needs a second person for a large adjustment.
            return _request(
                f"Adjustments above {limits.adjust_limit:,} credits need approval by "
                f"{_APPROVERS_TEXT}."
            )
        return _ALLOW

    if action is Action.APPROVE:
        if role in APPROVER_ROLES:
            return _ALLOW
        return _deny("Approving requests needs the finance, manager or admin role.")
    if action is Action.INCIDENT_REFUND:
        if role in APPROVER_ROLES:
            return _ALLOW
        return _deny("Incident refunds need the finance, manager or admin role.")
    if action is Action.EXPORT:
        if role in APPROVER_ROLES:
            return _ALLOW
        return _deny("Exports need the finance, manager or admin role.")
    if action is Action.ADMINISTER:
        if role is Role.ADMIN:
            return _ALLOW
        return _deny("Managing staff, roles, prices and limits needs the admin role.")

    # mypy proves every Action is handled above; a new Action fails type checking here.
    assert_never(action)


def decide_approval(approver_role: Role, approver_id: int, requester_id: int) -> Decision:
    """Decide whether a staff member may approve a pending request.

    The four-eyes rule comes first: nobody approves their own request, whatever their role.
    """
    approver_role = Role(approver_role)
    if approver_id == requester_id:
        return _deny("You cannot approve your own request.")
    if approver_role not in APPROVER_ROLES:
        return _deny("Approving requests needs the finance, manager or admin role.")
    return _ALLOW
