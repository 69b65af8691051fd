"""The budget advice in words and as a table: why money moves, and average against marginal return per channel.

The advice follows the marginal return (what the next unit of money brings), which can differ a lot from the
average return a performance report shows (what all of today's spend brought on average): the sentences say both.
"""

from __future__ import annotations

from marketing.response_curves import INSUFFICIENT, KEPT, LOCKED, MOVED

PROFIT = "profit"  # the objective that sizes the total (see marketing.optimiser)


def period_word(days: float) -> str:
    """'week', 'month' or 'N days' for a period length in days."""
    if abs(days - 7) < 0.5:
        return "week"
    if 27.5 <= days <= 31.5:
        return "month"
    return f"{days:g} days"


def _flows(rows: list[dict]) -> list[tuple[dict | None, dict | None, float]]:
    """Match money taken from channels to money given to others: (from row, to row, amount) per move.

    Donors with the lowest marginal return give first to receivers with the highest; a total that grows or
    shrinks shows up as flows from or to None.
    """
    moved = [r for r in rows if r["status"] == MOVED]
    donors = sorted((r for r in moved if r["change"] < 0), key=lambda r: r["marginal_roi_current"] or 0.0)
    receivers = sorted((r for r in moved if r["change"] > 0), key=lambda r: -(r["marginal_roi_current"] or 0.0))
    give = [[r, -r["change"]] for r in donors]
    take = [[r, r["change"]] for r in receivers]
    extra = sum(t for _, t in take) - sum(g for _, g in give)
    if extra > 0:
        give.append([None, extra])
    elif extra < 0:
        take.append([None, -extra])
    flows, i, j = [], 0, 0
    while i < len(give) and j < len(take):
        amount = min(give[i][1], take[j][1])
        if amount > 1e-6:
            flows.append((give[i][0], take[j][0], amount))
        give[i][1] -= amount
        take[j][1] -= amount
        i += give[i][1] <= 1e-6
        j += take[j][1] <= 1e-6
    return flows


def _sentence(donor: dict | None, receiver: dict | None, amount: float, period: str) -> str:
    """One plain sentence for one move of money."""
    if donor is None:
        return (
            f"add {amount:,.0f} per {period} to {receiver['channel']}: the next unit of money returns "
            f"{receiver['marginal_roi_current']:.1f} there"
        )
    share = amount / donor["current_spend"]
    if receiver is None:
        return (
            f"cut {donor['channel']} spend by {share:.0%} ({amount:,.0f} per {period}): the last unit of money "
            f"returns {donor['marginal_roi_current']:.1f} there, the least of the channels that can give"
        )
    return (
        f"move {share:.0%} of {donor['channel']} spend ({amount:,.0f} per {period}) to {receiver['channel']}: "
        f"the next unit of money returns {receiver['marginal_roi_current']:.1f} there "
        f"against {donor['marginal_roi_current']:.1f}"
    )


def _profit_total_sentence(rows: list[dict], margin: float, period: str) -> str:
    """How much to spend less or more in total, and why, under the profit objective."""
    now = sum(r["current_spend"] for r in rows)
    change = sum(r["change"] for r in rows if r["status"] == MOVED)
    cut = [r["channel"] for r in rows if r["status"] == MOVED and r["change"] < 0]
    add = [r["channel"] for r in rows if r["status"] == MOVED and r["change"] > 0]
    free = [r for r in rows if r["status"] in (MOVED, KEPT) and r["marginal_roi_current"] is not None]
    at = f"at a {margin:.0%} margin"
    if not cut and not add:
        return f"keep the current total of {now:,.0f} per {period}: {at} no move within the limits raises the profit"
    pct = f" ({change / now:+.0%})" if now > 0 else ""
    head = f"spend {abs(change):,.0f} {'less' if change < 0 else 'more'} per {period} in total{pct}"
    if change < 0 and free and all(margin * r["marginal_roi_current"] < 1 for r in free):
        best = max(r["marginal_roi_current"] for r in free)
        why = (
            f"{at} no channel returns its cost at the margin (the next unit of money returns at most "
            f"{best:.2f} x {margin:.0%} = {margin * best:.2f})"
        )
    else:
        why = " and ".join(
            part
            for part in (
                f"the next unit of money returns less than it costs in {', '.join(cut)}" if cut else "",
                f"more than it costs in {', '.join(add)}" if add else "",
            )
            if part
        )
        why = f"{at} {why}"
    return f"{head}: {why}"


def _profit_move_sentence(row: dict, margin: float, period: str) -> str:
    """One channel's cut or addition under the profit objective, with its margin-weighted marginal return."""
    m = row["marginal_roi_current"]
    share = f"{abs(row['change_pct']):.0%}" if row["change_pct"] is not None else "all"
    verb = f"cut {row['channel']} by {share}" if row["change"] < 0 else f"add {share} to {row['channel']}"
    side = "under" if margin * m < 1 else "over"
    after = row["marginal_roi_recommended"]
    limit = ""
    if after is not None and (margin * after < 1) == (margin * m < 1) and abs(margin * after - 1) > 0.02:
        limit = f"; still {margin * after:.2f} after the move, so only its limit stops it"
    return (
        f"{verb} ({abs(row['change']):,.0f} per {period}): the next unit of money returns {m:.2f} in value, "
        f"{margin * m:.2f} at the {margin:.0%} margin, {side} its cost of 1{limit}"
    )


def _average_sentence(row: dict, objective: str, margin: float) -> str | None:
    """Average against marginal return of one channel (margin-weighted under profit), or None without both."""
    avg, nxt = row.get("average_roi_current"), row.get("marginal_roi_current")
    if avg is None or nxt is None:
        return None
    name = row["channel"]
    if objective != PROFIT:
        return (
            f"{name}: on average each unit of money returns {avg:.2f} in lead value, but the next unit returns "
            f"{nxt:.2f} — the advice follows the next unit"
        )
    return (
        f"{name}: at the {margin:.0%} margin each unit of money returns {margin * avg:.2f} on average "
        f"({avg:.2f} in value), but the next unit returns {margin * nxt:.2f} ({nxt:.2f} in value) — "
        f"the advice follows the next unit, which pays for itself above 1"
    )


def advice_sentences(rows: list[dict], period_days: float, objective: str = "value", margin: float = 1.0) -> list[str]:
    """Plain sentences: the moves of money (and the total's change under profit), the channels kept and why,
    then average against marginal return per channel."""
    period = period_word(period_days)
    if objective == PROFIT:
        out = [_profit_total_sentence(rows, margin, period)]
        out += [_profit_move_sentence(r, margin, period) for r in rows if r["status"] == MOVED]
    else:
        out = [_sentence(d, r, a, period) for d, r, a in _flows(rows)]
        if not out:
            out.append("keep the current allocation: no shift within the limits raises the expected value")
    for row in rows:
        if row["status"] in (INSUFFICIENT, LOCKED, KEPT) and row.get("reason"):
            out.append(f"keep {row['channel']} as it is: {row['reason']}")
    out += [s for s in (_average_sentence(r, objective, margin) for r in rows) if s]
    return out


def _objective_line(advice: dict, period: str) -> str:
    """One line saying what the advice maximises."""
    c = advice.get("constraints", {})
    if c.get("objective") == PROFIT:
        m = c.get("margin", 1.0)
        return (
            f"objective: profit = {m:g} x value - spend, total free; a channel pays for itself where mROI x {m:g} > 1"
        )
    return f"objective: value at the same total ({c.get('total_budget', 0.0):,.0f} per {period})"


def format_advice(advice: dict) -> str:
    """A fixed-width table (under 130 characters) of the advice per channel, the total, then the sentences."""
    period = period_word(advice["period_days"])
    profit = advice.get("constraints", {}).get("objective") == PROFIT
    key = "expected_profit_change" if profit else "expected_value_change"
    head = (
        f"{'channel':<12}{'status':<22}{'fit':<10}{'current':>9}{'advised':>9}{'change':>7}"
        f"{'avg ROI':>8}{'mROI now':>9}{'after':>6}   {'profit' if profit else 'value'} change (80%)"
    )
    lines = [f"Budget advice per {period} as of {advice.get('as_of', '')[:10]}", _objective_line(advice, period), head]
    for r in advice["channels"]:
        pct = f"{r['change_pct']:+.0%}" if r["change_pct"] is not None else ""
        lines.append(
            f"{r['channel'][:11]:<12}{r['status']:<22}{str(r.get('fit_quality', '-'))[:9]:<10}"
            f"{r['current_spend']:>9,.0f}{r['recommended_spend']:>9,.0f}{pct:>7}{_num(r.get('average_roi_current')):>8}"
            f"{_num(r['marginal_roi_current']):>9}{_num(r['marginal_roi_recommended']):>6}"
            f"   {r[key]:+,.0f} [{_num(r[key + '_low'], '+,.0f')}, {_num(r[key + '_high'], '+,.0f')}]"
        )
    t = advice["total"]
    pct = f"{t['recommended_spend'] / t['current_spend'] - 1:+.0%}" if t["current_spend"] > 0 else ""
    change = "expected_profit_change" if profit else "expected_uplift"
    lines.append(
        f"{'total':<44}{t['current_spend']:>9,.0f}{t['recommended_spend']:>9,.0f}{pct:>7}{'':>23}"
        f"   {t[change]:+,.0f} [{_num(t[change + '_low'], '+,.0f')}, {_num(t[change + '_high'], '+,.0f')}]"
    )
    lines.append(
        f"expected value per {period}: {t['expected_value_current']:,.0f} now, "
        f"{t['expected_value_recommended']:,.0f} advised ({t['expected_uplift']:+,.0f})"
    )
    if profit:
        now, new = "expected_profit_current", "expected_profit_recommended"
        lines.append(
            f"expected profit per {period}: {t[now]:,.0f} now [{_num(t[now + '_low'], ',.0f')}, "
            f"{_num(t[now + '_high'], ',.0f')}], {t[new]:,.0f} advised [{_num(t[new + '_low'], ',.0f')}, "
            f"{_num(t[new + '_high'], ',.0f')}] (80%)"
        )
    lines += ["", *(f"- {s}" for s in advice["sentences"])]
    return "\n".join(lines)


def _num(x: float | None, fmt: str = ".2f") -> str:
    """A number for the table, '-' when missing."""
    return "-" if x is None else format(x, fmt)
