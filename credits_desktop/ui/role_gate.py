"""Actions the signed-in role may not take are disabled, with the reason as tooltip.

The reason is the sentence ``domain.permissions.decide`` gives ("Adjusting
purchased credits needs the finance or admin role."), so the screen and the
services refuse with the same words. An action that only *may need approval*
(a refund above the limit) stays enabled: the dialog says so before confirming.
The database checks again on every write; this only saves staff a dead end.
"""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractButton

from credits_desktop.domain.permissions import Action, Decision, Verdict, decide
from credits_desktop.services.operations import Actor

__all__ = ["gate", "role_decision"]


def role_decision(actor: Actor, action: Action) -> Decision:
    """Whether ``actor``'s role may take ``action`` at all (the smallest amount)."""
    return decide(actor.role, action, credits=0)


def gate(target: QAction | QAbstractButton, actor: Actor, action: Action, *,
         allowed_tip: str = "") -> bool:
    """Enable ``target`` if the role may take ``action`` (or ask for it); otherwise
    disable it and explain why in its tooltip. Returns whether it is allowed."""
    decision = role_decision(actor, action)
    allowed = decision.verdict is not Verdict.DENY
    target.setEnabled(allowed)
    tip = allowed_tip if allowed else decision.reason
    target.setToolTip(tip)
    if isinstance(target, QAction):
        target.setStatusTip(tip)
    # Disabled widgets get no hover tooltip on some styles; the accessible
    # description carries the reason to screen readers either way.
    if isinstance(target, QAbstractButton):
        target.setAccessibleDescription(tip)
    return allowed
