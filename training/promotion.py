"""Whether a newly registered model becomes champion: a pure decision on figures the caller looked up.

Policies: `always`, `never`, or `auto`, which promotes when the new model is not worse than the champion on
the same holdout (or when there is no champion yet). No registry call happens here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

THIS_HOLDOUT = "this holdout"
OWN_HOLDOUT = "its own holdout (it has seen this one)"
TOLERANCE = 1e-9  # a tie in the headline figure promotes the new model


@dataclass(frozen=True, kw_only=True)
class PromotionDecision:
    """A promotion decision and the figures it rests on (figures unrounded; `to_dict` rounds them)."""

    policy: str
    metric: str
    new_figure: float
    champion_version: str | None
    champion_figure: float | None
    champion_figure_source: str | None
    promoted: bool
    reason: str

    def to_dict(self) -> dict:
        """The decision as plain data, as logged on the model's run and returned by `run_training`."""
        out = {
            "policy": self.policy,
            "metric": self.metric,
            "new_figure": round(self.new_figure, 6),
            "champion_version": "none" if self.champion_version is None else self.champion_version,
            "champion_figure": "none" if self.champion_figure is None else round(self.champion_figure, 6),
        }
        if self.champion_figure_source is not None:
            out["champion_figure_source"] = self.champion_figure_source
        return {**out, "promoted": self.promoted, "reason": self.reason}


def champion_has_seen(champion_as_of: pd.Timestamp, holdout_cutoff: pd.Timestamp) -> bool:
    """Whether a champion trained as of `champion_as_of` learnt from labels inside this holdout's window.

    Scored there it would be flattered, so its own holdout figure (of the fit that had not seen that holdout)
    stands in for it.
    """
    return pd.Timestamp(champion_as_of) > pd.Timestamp(holdout_cutoff)


def needs_champion_figure(policy: str, champion_version: str | None) -> bool:
    """Whether deciding needs the champion's figure: only `auto` with a champion compares figures."""
    return policy not in ("always", "never") and champion_version is not None


def decide_promotion(
    policy: str,
    new_figure: float,
    champion_figure: float | None,
    *,
    metric: str,
    champion_version: str | None,
    champion_figure_source: str | None = None,
    champion_outdated: bool = False,
    champion_broken: str | None = None,
) -> PromotionDecision:
    """Decide whether the new version becomes champion: `always`, `never`, or `auto` (not worse on holdout).

    `champion_version` is None when no champion is registered; under `auto` with a champion, its figure (and
    where that figure comes from) must be given, unless the champion is `champion_outdated`: saved in a format
    this version cannot load, so it can serve no more and the new model replaces it. `champion_broken` says
    why a champion's files could not be read: it cannot serve either, and the new model replaces it likewise.
    """
    decided = {"policy": policy, "metric": metric, "new_figure": new_figure, "champion_version": champion_version}
    if policy == "never":
        return _decision(decided, promoted=False, reason="--promote never")
    if policy == "always" or champion_version is None:
        reason = "--promote always" if policy == "always" else "no champion yet"
        return _decision(decided, promoted=True, reason=reason)
    if champion_outdated:
        return _decision(decided, promoted=True, reason="the champion was saved in an older format")
    if champion_broken:
        reason = f"the champion (version {champion_version}) could not be loaded: {champion_broken}; replaced"
        return _decision(decided, promoted=True, reason=reason)
    if champion_figure is None:
        raise ValueError(f"promotion of {metric} under policy {policy!r} needs champion {champion_version}'s figure")
    promoted = bool(new_figure >= champion_figure - TOLERANCE)
    reason = "not worse than the champion on the same holdout" if promoted else "worse than the champion"
    return PromotionDecision(
        **decided,
        champion_figure=champion_figure,
        champion_figure_source=champion_figure_source,
        promoted=promoted,
        reason=reason,
    )


def _decision(decided: dict, *, promoted: bool, reason: str) -> PromotionDecision:
    """A decision taken without the champion's figure."""
    return PromotionDecision(
        **decided, champion_figure=None, champion_figure_source=None, promoted=promoted, reason=reason
    )
