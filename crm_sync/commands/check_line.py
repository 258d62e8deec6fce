"""One line of `crm-sync check`: a leaf, shared by the engine checks and the output checks."""

from __future__ import annotations

from dataclasses import dataclass

from crm_sync.exit_codes import EXIT_OK

__all__ = ["CheckLine"]


@dataclass(frozen=True)
class CheckLine:
    """The outcome of one check, as printed: `<name>: OK|FAILED <message>`."""

    name: str
    ok: bool
    message: str
    exit_code: int = EXIT_OK

    def render(self) -> str:
        return f"{self.name}: {'OK' if self.ok else 'FAILED'} {self.message}"
