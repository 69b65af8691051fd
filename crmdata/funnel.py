"""The funnel vocabulary: the stages in order, the won stage and the lost stage, defined once.

Every CRM names its stages its own way, so the stages are data, not code: a `Funnel` comes from the training
config, is stored in every trained model's feature spec, and every command and the API read it from there.
Literal stage names appear nowhere else in the project (the simulator, which writes its own data, aside).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_DEFAULT_STAGES = ("lead", "mql", "sql", "opportunity", "negotiation", "won")
_DEFAULT_LOST = "lost"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


@dataclass(frozen=True, kw_only=True)
class Funnel:
    """Stages in funnel order, the last of which is the won stage, plus the terminal lost stage outside the order."""

    stages: tuple[str, ...]
    lost: str = _DEFAULT_LOST

    def __post_init__(self) -> None:
        stages = tuple(self.stages) if not isinstance(self.stages, str) else ()
        object.__setattr__(self, "stages", stages)
        if len(stages) < 2 or not all(isinstance(s, str) and s.strip() for s in stages):
            raise ValueError(
                f"a funnel needs at least two non-empty stage names (the last is won), got {self.stages!r}"
            )
        if not isinstance(self.lost, str) or not self.lost.strip():
            raise ValueError(f"the lost stage must be a non-empty name, got {self.lost!r}")
        if len({_slug(s) for s in stages}) != len(stages):
            raise ValueError(f"funnel stages must be distinct (ignoring case and punctuation): {stages}")
        if self.lost in stages:
            raise ValueError(f"the lost stage {self.lost!r} cannot also be one of the ordered stages {stages}")

    @property
    def won(self) -> str:
        """The stage that means converted: the last of the order."""
        return self.stages[-1]

    @property
    def open_stages(self) -> tuple[str, ...]:
        """The stages a lead can be in while still open (all but won)."""
        return self.stages[:-1]

    @property
    def allowed(self) -> tuple[str, ...]:
        """Every stage value the data may hold: the order, then lost."""
        return (*self.stages, self.lost)

    @property
    def closed(self) -> tuple[str, str]:
        """The terminal stages: won and lost."""
        return (self.won, self.lost)

    def slugs(self) -> tuple[str, ...]:
        """The ordered stages as identifier-safe names (for feature columns)."""
        return tuple(_slug(s) for s in self.stages)

    def describe(self) -> str:
        """The stages as a user reads them in an error: 'lead, mql, ..., won (or lost)'."""
        return f"{', '.join(self.stages)} (or {self.lost})"

    def to_dict(self) -> dict[str, Any]:
        return {"stages": list(self.stages), "lost": self.lost}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Funnel:
        return cls(stages=tuple(data["stages"]), lost=data.get("lost", _DEFAULT_LOST))

    @classmethod
    def of(cls, stages: Sequence[str], lost: str | None = None) -> Funnel:
        return cls(stages=tuple(stages), lost=lost or _DEFAULT_LOST)


DEFAULT_FUNNEL = Funnel(stages=_DEFAULT_STAGES, lost=_DEFAULT_LOST)
