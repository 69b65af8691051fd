"""The promotion decision: a pure function of the policy and the figures, and the plain data it logs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from training.promotion import (
    OWN_HOLDOUT,
    THIS_HOLDOUT,
    champion_has_seen,
    decide_promotion,
    needs_champion_figure,
)


def decide(policy, new, champion_figure, champion_version="3", source=THIS_HOLDOUT):
    return decide_promotion(
        policy,
        new,
        champion_figure,
        metric="roc_auc",
        champion_version=champion_version,
        champion_figure_source=source if champion_figure is not None else None,
    )


@pytest.mark.parametrize(
    "policy, new, champion, version, promoted, reason",
    [
        ("always", 0.60, None, "3", True, "--promote always"),
        ("never", 0.90, None, "3", False, "--promote never"),
        ("never", 0.90, None, None, False, "--promote never"),
        ("auto", 0.80, 0.75, "3", True, "not worse than the champion on the same holdout"),
        ("auto", 0.75, 0.75, "3", True, "not worse than the champion on the same holdout"),
        ("auto", 0.70, 0.75, "3", False, "worse than the champion"),
        ("auto", 0.40, None, None, True, "no champion yet"),
    ],
    ids=["always", "never", "never without champion", "auto better", "auto tie", "auto worse", "no champion"],
)
def test_decision_follows_the_policy_and_the_figures(policy, new, champion, version, promoted, reason):
    decision = decide(policy, new, champion, version)
    assert (decision.promoted, decision.reason) == (promoted, reason)
    assert decision.champion_figure == champion


def test_auto_with_a_champion_needs_its_figure():
    assert needs_champion_figure("auto", "3")
    assert not any(needs_champion_figure(p, v) for p, v in (("auto", None), ("always", "3"), ("never", "3")))
    with pytest.raises(ValueError, match="needs champion 3's figure"):
        decide("auto", 0.8, None, "3")


def test_decision_as_plain_data_rounds_figures_and_says_none_without_a_champion():
    compared = decide("auto", 0.812345678, 0.7, "3", OWN_HOLDOUT).to_dict()
    assert compared == {
        "policy": "auto",
        "metric": "roc_auc",
        "new_figure": 0.812346,
        "champion_version": "3",
        "champion_figure": 0.7,
        "champion_figure_source": OWN_HOLDOUT,
        "promoted": True,
        "reason": "not worse than the champion on the same holdout",
    }
    first = decide("auto", 0.5, None, None).to_dict()
    assert (first["champion_version"], first["champion_figure"]) == ("none", "none")
    assert "champion_figure_source" not in first
    json.dumps(first)


@pytest.mark.parametrize(
    "champion_as_of, seen",
    [("2024-12-31", True), ("2024-10-02", False), ("2024-09-01", False)],
    ids=["trained after the holdout cutoff", "trained at it", "trained before it"],
)
def test_a_champion_trained_after_the_holdout_cutoff_has_seen_its_labels(champion_as_of, seen):
    assert champion_has_seen(pd.Timestamp(champion_as_of), pd.Timestamp("2024-10-02")) is seen


@pytest.mark.parametrize(
    ("policy", "promoted", "reason"),
    [
        ("auto", True, "the champion (version 3) could not be loaded: /m/booster.txt: cut short; replaced"),
        ("never", False, "--promote never"),
    ],
    ids=["auto-replaces-it", "never-keeps-it"],
)
def test_a_champion_that_cannot_be_loaded_gives_way_under_auto(policy, promoted, reason):
    decision = decide_promotion(
        policy, 0.6, None, metric="roc_auc", champion_version="3", champion_broken="/m/booster.txt: cut short"
    )
    assert decision.promoted is promoted and decision.reason == reason
