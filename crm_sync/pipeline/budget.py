"""How many credits one source may reserve in this run: the smallest of what each ceiling allows."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Budget:
    """Worst-case credits still allowed, by ceiling name (balance, per_run, per_day)."""

    ceilings: dict[str, int] = field(default_factory=dict)
    reserved: int = 0
    contacts_left: int | None = None  # run.max_contacts_per_run, less what earlier sources took

    @property
    def remaining(self) -> int | None:
        if not self.ceilings:
            return None
        return max(0, min(self.ceilings.values()) - self.reserved)

    @property
    def exhausted(self) -> bool:
        """Nothing more fits, not even a one-credit email."""
        if self.contacts_left is not None and self.contacts_left <= 0:
            return True
        remaining = self.remaining
        return remaining is not None and remaining < 1

    def take(self, cost: int) -> bool:
        """Reserve `cost` if it fits every ceiling."""
        remaining = self.remaining
        if remaining is not None and cost > remaining:
            return False
        if self.contacts_left is not None:
            if self.contacts_left <= 0:
                return False
            self.contacts_left -= 1
        self.reserved += cost
        return True

    def give_back(self, cost: int) -> None:
        self.reserved = max(0, self.reserved - cost)

    def describe(self) -> str:
        limits = ", ".join(f"{k}={v}" for k, v in sorted(self.ceilings.items()))
        if self.contacts_left is not None:
            limits += f"; contacts left in this run: {self.contacts_left}"
        return f"reserved {self.reserved} credits of {limits}"
