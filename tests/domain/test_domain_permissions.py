"""Tests of the permission matrix: every role x action x limit x charge outcome."""

from __future__ import annotations

import pytest

from credits_desktop.domain.permissions import (
    HUMAN_ROLES,
    ROLE_LABELS,
    Action,
    Decision,
    Limits,
    Role,
    Verdict,
    decide,
    decide_approval,
)

A, R, D = Verdict.ALLOW, Verdict.REQUEST, Verdict.DENY
ROLES = (Role.SUPPORT, Role.FINANCE, Role.MANAGER, Role.ADMIN, Role.SYSTEM)

# The brief's table, written out by hand (columns in ROLES order) rather than derived from
# the implementation. Keys: (action, above_limit, charge_failed).
_SIMPLE: dict[Action, tuple[Verdict, ...]] = {
    Action.BROWSE: (A, A, A, A, A),
    Action.APPROVE: (D, A, A, A, D),
    Action.INCIDENT_REFUND: (D, A, A, A, D),
    Action.CHARTS: (A, A, A, A, D),
    Action.EXPORT: (D, A, A, A, D),
    Action.ADMINISTER: (D, D, D, A, D),
    Action.RECORD_USAGE: (D, D, D, D, A),
    Action.BUY_PACKAGE: (D, D, D, D, A),
    Action.ROLL_PERIODS: (D, D, D, A, A),
}
_REFUND: dict[tuple[bool, bool], tuple[Verdict, ...]] = {
    # (above_limit, charge_failed)
    (False, True): (A, A, A, A, D),
    (True, True): (R, R, A, A, D),
    (False, False): (R, R, A, A, D),
    (True, False): (R, R, A, A, D),
}
_ADJUST: dict[bool, tuple[Verdict, ...]] = {
    False: (D, A, D, A, D),
    True: (D, R, D, R, D),
}


def expected(role: Role, action: Action, above: bool, failed: bool) -> Verdict:
    column = ROLES.index(role)
    if action is Action.REFUND:
        return _REFUND[(above, failed)][column]
    if action is Action.ADJUST_PURCHASED:
        return _ADJUST[above][column]
    return _SIMPLE[action][column]


def test_table_covers_every_action() -> None:
    assert set(_SIMPLE) | {Action.REFUND, Action.ADJUST_PURCHASED} == set(Action)


def _credits(action: Action, above: bool, limits: Limits) -> list[int]:
    limit = limits.adjust_limit if action is Action.ADJUST_PURCHASED else limits.refund_limit
    return [limit + 1, limit + 1000] if above else [0, 1, limit]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("above", [False, True])
@pytest.mark.parametrize("failed", [True, False])
def test_full_matrix_default_limits(role: Role, action: Action, above: bool, failed: bool) -> None:
    want = expected(role, action, above, failed)
    for credits in _credits(action, above, Limits()):
        decision = decide(role, action, credits=credits, charge_failed=failed)
        assert decision.verdict is want, (role, action, credits, failed)
        assert decision.allowed is (want is A)
        # A plain allow needs no explanation; anything else says why in words.
        assert (decision.reason == "") is (want is A)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", [Action.REFUND, Action.ADJUST_PURCHASED])
@pytest.mark.parametrize("above", [False, True])
@pytest.mark.parametrize("failed", [True, False])
def test_full_matrix_custom_limits(role: Role, action: Action, above: bool, failed: bool) -> None:
    limits = Limits(refund_limit=50, adjust_limit=5000)
    want = expected(role, action, above, failed)
    for credits in _credits(action, above, limits):
        decision = decide(role, action, credits=credits, charge_failed=failed, limits=limits)
        assert decision.verdict is want, (role, action, credits, failed)


def test_default_limits() -> None:
    assert Limits() == Limits(refund_limit=500, adjust_limit=1000)


def test_refund_limit_boundary() -> None:
    assert decide(Role.SUPPORT, Action.REFUND, credits=500).verdict is A
    assert decide(Role.SUPPORT, Action.REFUND, credits=501).verdict is R
    assert decide(Role.FINANCE, Action.REFUND, credits=501).verdict is R
    assert decide(Role.MANAGER, Action.REFUND, credits=10**9, charge_failed=False).verdict is A


def test_adjust_limit_boundary_and_removals_count_absolute_value() -> None:
    assert decide(Role.FINANCE, Action.ADJUST_PURCHASED, credits=1000).verdict is A
    assert decide(Role.FINANCE, Action.ADJUST_PURCHASED, credits=-1000).verdict is A
    assert decide(Role.FINANCE, Action.ADJUST_PURCHASED, credits=1001).verdict is R
    assert decide(Role.FINANCE, Action.ADJUST_PURCHASED, credits=-1001).verdict is R
    assert decide(Role.ADMIN, Action.ADJUST_PURCHASED, credits=-5000).verdict is R


def test_zero_limits_make_every_nonzero_amount_a_request() -> None:
    limits = Limits(refund_limit=0, adjust_limit=0)
    assert decide(Role.SUPPORT, Action.REFUND, credits=0, limits=limits).verdict is A
    assert decide(Role.SUPPORT, Action.REFUND, credits=1, limits=limits).verdict is R
    assert decide(Role.FINANCE, Action.ADJUST_PURCHASED, credits=1, limits=limits).verdict is R


def test_reasons_are_plain_sentences() -> None:
    assert (
        decide(Role.SUPPORT, Action.ADJUST_PURCHASED, credits=10).reason
        == "Adjusting purchased credits needs the finance or admin role."
    )
    assert (
        decide(Role.SUPPORT, Action.REFUND, credits=501).reason
        == "Refunds above 500 credits need approval by a finance, manager or admin colleague."
    )
    assert "did not fail" in decide(Role.SUPPORT, Action.REFUND, charge_failed=False).reason
    assert "1,000" in decide(Role.FINANCE, Action.ADJUST_PURCHASED, credits=1001).reason
    custom = decide(Role.FINANCE, Action.REFUND, credits=80, limits=Limits(refund_limit=50))
    assert "above 50 credits" in custom.reason
    for role in ROLES:
        for action in Action:
            reason = decide(role, action, credits=10**6, charge_failed=False).reason
            assert reason == "" or (reason[0].isupper() and reason.endswith("."))


def test_decide_accepts_enum_values_as_text() -> None:
    assert decide("finance", "export").verdict is A  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        decide("intern", Action.BROWSE)  # type: ignore[arg-type]


def test_decide_rejects_non_int_credits() -> None:
    with pytest.raises(ValueError):
        decide(Role.SUPPORT, Action.REFUND, credits=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"refund_limit": -1}, {"adjust_limit": -1}, {"refund_limit": 1.5}]
)
def test_limits_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Limits(**kwargs)  # type: ignore[arg-type]


def test_decision_allowed_property() -> None:
    assert Decision(A, "").allowed
    assert not Decision(R, "x").allowed
    assert not Decision(D, "x").allowed


# --- decide_approval --------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_nobody_approves_their_own_request(role: Role) -> None:
    decision = decide_approval(role, 7, 7)
    assert decision.verdict is D
    assert decision.reason == "You cannot approve your own request."


@pytest.mark.parametrize(
    ("role", "verdict"),
    [(Role.SUPPORT, D), (Role.FINANCE, A), (Role.MANAGER, A), (Role.ADMIN, A), (Role.SYSTEM, D)],
)
def test_approval_by_a_colleague(role: Role, verdict: Verdict) -> None:
    decision = decide_approval(role, 8, 7)
    assert decision.verdict is verdict
    assert (decision.reason == "") is (verdict is A)


def test_approval_rights_match_the_approve_action() -> None:
    for role in ROLES:
        assert decide_approval(role, 1, 2).verdict is decide(role, Action.APPROVE).verdict


# --- roles ------------------------------------------------------------------------------


def test_roles_and_labels() -> None:
    assert HUMAN_ROLES == (Role.SUPPORT, Role.FINANCE, Role.MANAGER, Role.ADMIN)
    assert Role.SYSTEM not in HUMAN_ROLES
    assert set(ROLE_LABELS) == set(Role)
    assert ROLE_LABELS[Role.SUPPORT] == "Support"
    assert ROLE_LABELS[Role.FINANCE] == "Finance"
    assert ROLE_LABELS[Role.MANAGER] == "Manager"
    assert ROLE_LABELS[Role.ADMIN] == "Admin"


def test_enum_values() -> None:
    assert [r.value for r in Role] == ["support", "finance", "manager", "admin", "system"]
    assert [v.value for v in Verdict] == ["allow", "request", "deny"]
    assert {a.value for a in Action} == {
        "browse", "refund", "adjust_purchased", "approve", "incident_refund", "charts",
        "export", "administer", "record_usage", "buy_package", "roll_periods",
    }  # fmt: skip
