"""The funnel vocabulary: what a valid funnel is, its derived stage sets, slugs and the stored form."""

from __future__ import annotations

import dataclasses
import json

import pytest

from crmdata.funnel import DEFAULT_FUNNEL, Funnel

CUSTOM = Funnel.of(["Prospect", "Marketing Qualified", "Proposal", "Closed Won"], "Closed Lost")


@pytest.mark.parametrize(
    "stages, lost, message",
    [
        ((), "lost", "at least two"),
        (("won",), "lost", "at least two"),
        ("prospect", "lost", "at least two"),  # a string is not a list of stages
        (("prospect", " "), "lost", "non-empty stage names"),
        (("prospect", 3), "lost", "non-empty stage names"),
        (("prospect", "customer"), " ", "lost stage must be a non-empty name"),
        (("Closed Won", "closed-won"), "lost", "distinct"),
        (("prospect", "lost"), "lost", "cannot also be one of the ordered stages"),
    ],
    ids=["empty", "one stage", "a string", "blank name", "not a string", "blank lost", "same slug", "lost in order"],
)
def test_an_invalid_funnel_is_refused_with_the_reason(stages, lost, message):
    with pytest.raises(ValueError, match=message):
        Funnel(stages=stages, lost=lost)


def test_the_stage_sets_follow_from_the_order():
    assert CUSTOM.won == "Closed Won"
    assert CUSTOM.open_stages == ("Prospect", "Marketing Qualified", "Proposal")
    assert CUSTOM.allowed == ("Prospect", "Marketing Qualified", "Proposal", "Closed Won", "Closed Lost")
    assert CUSTOM.closed == ("Closed Won", "Closed Lost")


def test_the_default_funnel():
    assert DEFAULT_FUNNEL.stages == ("lead", "mql", "sql", "opportunity", "negotiation", "won")
    assert DEFAULT_FUNNEL.won == "won" and DEFAULT_FUNNEL.lost == "lost"
    assert Funnel.of(DEFAULT_FUNNEL.stages) == DEFAULT_FUNNEL  # `of` defaults the lost stage


def test_slugs_are_identifier_safe_and_keep_the_order():
    assert CUSTOM.slugs() == ("prospect", "marketing_qualified", "proposal", "closed_won")
    assert Funnel.of(["  New lead!", "S.Q.L.", "Won (paid)"]).slugs() == ("new_lead", "s_q_l", "won__paid")


def test_describe_lists_the_stages_a_user_may_send():
    assert CUSTOM.describe() == "Prospect, Marketing Qualified, Proposal, Closed Won (or Closed Lost)"


def test_the_stored_form_round_trips_through_json():
    stored = json.loads(json.dumps(CUSTOM.to_dict()))
    assert stored == {"stages": ["Prospect", "Marketing Qualified", "Proposal", "Closed Won"], "lost": "Closed Lost"}
    assert Funnel.from_dict(stored) == CUSTOM
    assert Funnel.from_dict({"stages": ["a", "b"]}).lost == "lost"  # older specs stored no lost stage


def test_a_funnel_is_a_frozen_value():
    assert Funnel(stages=["a", "b"]).stages == ("a", "b")  # lists become tuples
    assert len({CUSTOM, Funnel.from_dict(CUSTOM.to_dict()), DEFAULT_FUNNEL}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        CUSTOM.lost = "gone"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Funnel(("a", "b"))  # type: ignore[misc]  # keywords only
