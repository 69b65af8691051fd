"""CRM exports in the shapes HubSpot and Salesforce write, made from simulated tables, for the import tests.

The simulator's truth is reshaped the way those products hold it: HubSpot keeps the first date of each lifecycle
stage on the contact and deals per sale; Salesforce keeps leads, a status history, opportunity stage histories and
won opportunities. Stages a vendor cannot hold (HubSpot has no negotiation) are lost on the way, as in real life.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HUBSPOT_SOURCES = {
    "search": ("Paid Search",),
    "social": ("Paid Social", "Organic Social"),
    "email": ("Email Marketing",),
    "event": ("Offline Sources",),
    "referral": ("Referrals",),
    "website": ("Direct Traffic", "Organic Search"),
}
HUBSPOT_DATES = {
    "lead": "Became a Lead Date",
    "mql": "Became a Marketing Qualified Lead Date",
    "sql": "Became a Sales Qualified Lead Date",
    "opportunity": "Became an Opportunity Date",
    "won": "Became a Customer Date",
}
SALESFORCE_SOURCES = {
    "search": "Advertisement",
    "social": "Social Media",
    "email": "Email",
    "event": "Trade Show",
    "referral": "Partner Referral",
    "website": "Web",
}
LEAD_STATUS = {"mql": "Working - Contacted", "sql": "Closed - Converted", "lost": "Closed - Not Converted"}
OPPORTUNITY_STAGE = {
    "opportunity": "Prospecting",
    "negotiation": "Negotiation/Review",
    "won": "Closed Won",
    "lost": "Closed Lost",
}
HUBSPOT_TIME = "%Y-%m-%d %H:%M"


def _number(values: pd.Series) -> pd.Series:
    """Counts and amounts as an export writes them: no trailing .0, blank when missing."""
    return values.map(lambda v: "" if pd.isna(v) else (str(int(v)) if float(v).is_integer() else f"{v:.2f}"))


def _sf_time(values: pd.Series) -> pd.Series:
    return values.dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _first_dates(events: pd.DataFrame) -> pd.DataFrame:
    """customer_id x stage -> the first time the customer reached it."""
    return events.groupby(["customer_id", "stage"])["timestamp"].min().unstack()


def _closed_lost(events: pd.DataFrame) -> pd.DataFrame:
    """The first loss of every customer who never won."""
    won = set(events.loc[events["stage"] == "won", "customer_id"])
    lost = events[(events["stage"] == "lost") & ~events["customer_id"].isin(won)]
    return lost.drop_duplicates("customer_id")


def hubspot_export(tables: dict[str, pd.DataFrame], out: Path) -> Path:
    """contacts.csv (lifecycle stage dates) and deals.csv (closed-won deals = orders, closed-lost deals = losses)."""
    out.mkdir(parents=True, exist_ok=True)
    customers, events, orders = tables["customers"], tables["funnel_events"], tables["orders"]
    record = customers["customer_id"].str[1:].astype(int).astype(str)
    ids = dict(zip(customers["customer_id"], record, strict=True))
    pick = np.arange(len(customers)) % 2
    source = [
        "" if pd.isna(c) else HUBSPOT_SOURCES[c][i % len(HUBSPOT_SOURCES[c])]
        for c, i in zip(customers["source_channel"], pick, strict=True)
    ]
    firsts = _first_dates(events).reindex(customers["customer_id"])
    contacts = pd.DataFrame(
        {
            "Record ID": record.to_numpy(),
            "First Name": "",
            "Email": [f"contact{r}@example.com" for r in record],
            "Create Date": customers["created_at"].dt.strftime(HUBSPOT_TIME).to_numpy(),
            "Original Source": source,
            "Industry": customers["industry"].fillna("").to_numpy(),
            "State/Region": customers["region"].fillna("").to_numpy(),
            "Number of Employees": _number(customers["employees"]).to_numpy(),
            "Annual Revenue": _number(customers["annual_revenue"]).to_numpy(),
        }
    )
    for stage, column in HUBSPOT_DATES.items():
        stamps = firsts[stage] if stage in firsts.columns else pd.Series(pd.NaT, index=firsts.index)
        contacts[column] = stamps.dt.strftime(HUBSPOT_TIME).fillna("").to_numpy()
    contacts.to_csv(out / "contacts.csv", index=False)
    lost = _closed_lost(events)
    won = pd.DataFrame(
        {
            "Record ID": orders["order_id"].str[1:].astype(int).astype(str),
            "Deal Name": "Order " + orders["order_id"],
            "Deal Stage": "Closed Won",
            "Amount": _number(orders["amount"]),
            "Close Date": orders["timestamp"].dt.strftime(HUBSPOT_TIME),
            "Pipeline": "Sales Pipeline",
            "Associated Contact IDs": orders["customer_id"].map(ids),
        }
    )
    closed_lost = pd.DataFrame(
        {
            "Record ID": [str(9_000_000 + i) for i in range(len(lost))],
            "Deal Name": "Lost " + lost["customer_id"],
            "Deal Stage": "Closed Lost",
            "Amount": "",
            "Close Date": lost["timestamp"].dt.strftime(HUBSPOT_TIME),
            "Pipeline": "Sales Pipeline",
            "Associated Contact IDs": lost["customer_id"].map(ids),
        }
    )
    pd.concat([won, closed_lost]).to_csv(out / "deals.csv", index=False)
    return out


def _sf_leads(customers: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Lead rows; leads that reached an opportunity are converted (an account and an opportunity id)."""
    n = customers["customer_id"].str[1:]
    converted = set(events.loc[events["stage"].isin(["opportunity", "negotiation", "won"]), "customer_id"])
    is_converted = customers["customer_id"].isin(converted)
    last = events.groupby("customer_id")["stage"].last().reindex(customers["customer_id"]).to_numpy()
    status = np.where(
        is_converted, "Closed - Converted", pd.Series(last).map(LEAD_STATUS).fillna("Open - Not Contacted")
    )
    return pd.DataFrame(
        {
            "Id": "00Q" + n,
            "CreatedDate": _sf_time(customers["created_at"]),
            "LeadSource": customers["source_channel"].map(SALESFORCE_SOURCES).fillna(""),
            "Industry": customers["industry"].fillna(""),
            "State": customers["region"].fillna(""),
            "NumberOfEmployees": _number(customers["employees"]),
            "AnnualRevenue": _number(customers["annual_revenue"]),
            "Status": status,
            "IsConverted": np.where(is_converted, "true", "false"),
            "ConvertedAccountId": np.where(is_converted, "001" + n, ""),
            "ConvertedOpportunityId": np.where(is_converted, "006" + n, ""),
        }
    )


def salesforce_export(tables: dict[str, pd.DataFrame], out: Path) -> Path:
    """leads.csv, lead_history.csv, opportunity_history.csv and opportunities.csv with Salesforce's API names."""
    out.mkdir(parents=True, exist_ok=True)
    customers, events, orders = tables["customers"], tables["funnel_events"], tables["orders"]
    leads = _sf_leads(customers, events)
    leads.to_csv(out / "leads.csv", index=False)
    lead_id = "00Q" + events["customer_id"].str[1:]
    converted = set(leads.loc[leads["IsConverted"] == "true", "Id"])
    in_opportunity = lead_id.isin(converted) & events["stage"].isin(list(OPPORTUNITY_STAGE))
    status = events[~lead_id.isin(converted) & events["stage"].isin(list(LEAD_STATUS))]
    converting = events[lead_id.isin(converted) & events["stage"].eq("sql")]
    changes = pd.concat([status, converting]).sort_values("timestamp", kind="stable")
    created = pd.DataFrame({"LeadId": leads["Id"], "CreatedDate": leads["CreatedDate"], "Field": "created"})
    history = pd.DataFrame(
        {
            "LeadId": "00Q" + changes["customer_id"].str[1:],
            "CreatedDate": _sf_time(changes["timestamp"]),
            "Field": "Status",
            "OldValue": "",
            "NewValue": changes["stage"].map(LEAD_STATUS),
        }
    )
    pd.concat([created, history]).fillna("").to_csv(out / "lead_history.csv", index=False)
    stages = events[in_opportunity]
    opportunity = pd.DataFrame(
        {
            "OpportunityId": "006" + stages["customer_id"].str[1:],
            "CreatedDate": _sf_time(stages["timestamp"]),
            "StageName": stages["stage"].map(OPPORTUNITY_STAGE),
            "Amount": "",
            "CloseDate": (stages["timestamp"] + pd.Timedelta(days=30)).dt.strftime("%Y-%m-%d"),
        }
    )
    # A change of amount keeps the stage: a history row the import must not count as a stage change.
    repeat = opportunity[opportunity["StageName"] == "Prospecting"].assign(Amount="1000")
    opportunity = pd.concat([opportunity, repeat]).sort_values(["OpportunityId", "CreatedDate"], kind="stable")
    opportunity.to_csv(out / "opportunity_history.csv", index=False)
    won = pd.DataFrame(
        {
            "Id": "006O" + orders["order_id"].str[1:],
            "AccountId": "001" + orders["customer_id"].str[1:],
            "StageName": "Closed Won",
            "Amount": _number(orders["amount"]),
            "CloseDate": orders["timestamp"].dt.strftime("%Y-%m-%d"),
            "IsWon": "true",
        }
    )
    won.to_csv(out / "opportunities.csv", index=False)
    return out
