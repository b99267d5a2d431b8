"""What a write operation reports back: enough for the screen to say what happened
and to refresh exactly the accounts it changed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class OperationResult:
    operation_id: int
    kind: str
    # "applied", "requested" (pending approval), "rejected" or "failed".
    status: str
    message: str
    account_ids: tuple[int, ...] = ()
    credits: int = 0
    request_id: int | None = None
    # True when this is the stored answer to an earlier submission of the same key.
    replayed: bool = False
    details: dict[str, int | str | None] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("replayed")
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, replayed: bool) -> OperationResult:
        data = json.loads(text)
        data["account_ids"] = tuple(data.get("account_ids", ()))
        return cls(**data, replayed=replayed)


@dataclass(frozen=True)
class ChargeResult:
    charge_id: int
    account_id: int
    credits: int
    draws: tuple[tuple[int, int], ...]
    replayed: bool = False


@dataclass(frozen=True)
class RollResult:
    accounts_rolled: int
    grants_created: int
    credits_expired: int
