"""Channel analytics and budget advice.

Budget advice: fit diminishing-returns response curves of leads to spend, then reallocate spend.

Per paid channel, leads per period (by source channel) follow a Hill curve of that period's spend,
`leads(s) = b + m * s^k / (s^k + h^k)`, fitted by bounded least squares over complete periods before `as_of`,
with uncertainty from a seeded bootstrap over periods (and over the channel's leads for their mean value).
Value per period is `leads(s) * value_per_lead`. The optimiser maximises the total expected value per period
under the fitted curves for the same (or a given) total budget, with per-channel bounds, a maximum shift per
channel and locked channels; a channel whose spend hardly varied, or whose curve is not supported by the data,
is marked "insufficient evidence" and kept where it is. Money is in the export's currency, per period
(`period_days`, a week in the simulator); "current" spend is the mean of the last 13 weeks' periods.

Each concern has its own home: `marketing.attribution` and `marketing.channels` (who brought which lead, and
channel performance), `marketing.lead_values` (what a lead is worth), `marketing.response_curves` (the fits and
their evidence), `marketing.optimiser` (the allocation) and `marketing.advice` (rows, sentences, table, chart,
MLflow report).
"""
