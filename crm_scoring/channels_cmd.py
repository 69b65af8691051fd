"""`crm-score budget`: channel budget advice (for value or for profit), or the what-if of a spend plan."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from crm_scoring.console import fail
from crm_scoring.options import AsOf, ConfigFile, DataDir
from crm_scoring.progress import shown

AMOUNT_FORM = "channel=amount, e.g. search=4000"


class Objective(StrEnum):
    value = "value"
    profit = "profit"


def amounts(values: list[str] | None) -> dict[str, float]:
    """Repeated `channel=amount` texts as {channel: amount}; ValueError on anything else."""
    out: dict[str, float] = {}
    for text in values or ():
        name, sep, amount = text.partition("=")
        try:
            value = float(amount) if sep and name.strip() else None
        except ValueError:
            value = None
        if value is None or value != value or value < 0:  # value != value: NaN
            raise ValueError(f"{text!r} is not {AMOUNT_FORM} (a non-negative amount per period)")
        out[name.strip()] = value
    return out


def _check_amounts(param: typer.CallbackParam, values: list[str] | None) -> list[str] | None:
    """Refuse a malformed `channel=amount` option naming it (the command reads the texts with `amounts`)."""
    try:
        amounts(values)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return values


def _amount_option(flag: str, what: str):
    return typer.Option(flag, callback=_check_amounts, help=f"{what} ({AMOUNT_FORM}; repeatable).")


# The options (a `channel=amount` option is checked as it is parsed and read with `amounts`).
ObjectiveOpt = Annotated[
    Objective,
    typer.Option(
        "--objective",
        help="value: the most lead value for the same total; profit: the most margin x value - spend, the total free.",
    ),
]
Margin = Annotated[
    float | None,
    typer.Option("--margin", min=0, help="Share of a lead's value that is profit (profit and --plan; default 1)."),
]
TotalBudget = Annotated[
    float | None, typer.Option("--total-budget", min=0, help="Spend per period to allocate (value objective).")
]
MaxShift = Annotated[float, typer.Option("--max-shift", min=0, max=1, help="Largest move per channel.")]
MinMove = Annotated[float, typer.Option("--min-move", min=0, max=1, help="A smaller move (share of spend) is kept.")]
MinSpend = Annotated[list[str] | None, _amount_option("--min-spend", "A channel's least spend per period")]
MaxSpend = Annotated[list[str] | None, _amount_option("--max-spend", "A channel's most spend per period")]
CurrentSpend = Annotated[list[str] | None, _amount_option("--current-spend", "A channel's spend to start from")]
Lock = Annotated[list[str] | None, typer.Option("--lock", help="A channel to keep at its spend (repeatable).")]
Plan = Annotated[list[str] | None, _amount_option("--plan", "What if a channel spent this? Prints the what-if")]
AsJson = Annotated[bool, typer.Option("--json", help="Print only the JSON.")]
Realised = Annotated[bool, typer.Option(help="Value leads by realised revenue instead of the models.")]


def budget(
    data: DataDir,
    as_of: AsOf = None,
    objective: ObjectiveOpt = Objective.value,
    margin: Margin = None,
    total_budget: TotalBudget = None,
    max_shift: MaxShift = 0.2,
    min_move: MinMove = 0.03,
    min_spend: MinSpend = None,
    max_spend: MaxSpend = None,
    current_spend: CurrentSpend = None,
    lock: Lock = None,
    plan: Plan = None,
    as_json: AsJson = False,
    realised: Realised = False,
    config: ConfigFile = None,
) -> None:
    """Channel performance and recommended budget shifts: where should next period's money go? With --plan: what
    would a given spend bring?"""
    import json

    from crm_scoring import pipelines
    from marketing.advice import format_advice
    from marketing.what_if import format_what_if

    if margin is not None and margin <= 0:
        fail("--margin must be above 0 (the share of a lead's value that is profit)", 2)
    if objective == Objective.profit and total_budget is not None:
        fail("--total-budget applies to --objective value; the profit objective chooses the total itself", 2)
    options = {"current_spend": amounts(current_spend) or None, "margin": margin}
    if not plan:
        options |= {
            "objective": objective.value,
            "margin": 1.0 if margin is None else margin,
            "total_budget": total_budget,
            "max_shift": max_shift,
            "min_move": min_move,
            "min_spend": amounts(min_spend) or None,
            "max_spend": amounts(max_spend) or None,
            "locked": tuple(lock or ()),
        }
    with shown("budget"):
        export, clv = _export(data, as_of, config, realised)
        try:
            result = pipelines.budget(export, clv, realised=realised, plan=amounts(plan) or None, **options)
        except ValueError as exc:
            fail(str(exc), 2)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(format_what_if(result) if plan else format_advice(result))


def _export(data: Path, as_of: str | None, config: Path | None, realised: bool):
    """The export before the cutoff (exit 2 without channel spend) and the CLV champion, if any."""
    from crm_scoring import cli

    cutoff = cli._inputs(data, as_of)
    bundles, _, funnel = cli._champions(["clv"], required=False, quiet=True)
    if config:
        funnel = cli._config(config, None, None, None).funnel
    export = cli._load(data, cutoff, funnel)
    if export.tables.get("channel_spend") is None:
        fail(f"{data}: budget advice needs the channel_spend table, and there is none", 2)
    if not realised and "clv" not in bundles:
        typer.secho("no CLV champion: leads are valued by realised revenue", fg=typer.colors.YELLOW, err=True)
    return export, bundles.get("clv")
