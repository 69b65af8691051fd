"""Channel performance and budget advice for the API, from the CRM export the models were trained on.

The export directory is `CRM_SCORING_DATA_DIR`; tables load once (rows before the cutoff only) and leads are
valued with the loaded CLV champion's forecast, as `crm-score budget` does. Fitting the response curves takes
seconds, so the routes run off the event loop, and the fitted curves are kept per CLV model version.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd

from training.bundle import ModelBundle


class ChannelDataMissing(RuntimeError):
    """The channel routes have no CRM export to read; the message says what to configure."""


class ChannelAdvisor:
    """Loads the export once and answers channel performance and budget questions as of its cutoff."""

    def __init__(self, data_dir: Path | None, as_of: pd.Timestamp | None = None):
        self.data_dir, self.as_of = data_dir, as_of
        self._lock = threading.Lock()
        self._tables: dict | None = None
        self._curves: dict[str, object] = {}

    def tables(self) -> tuple[dict, pd.Timestamp]:
        """The export's tables before the cutoff (default: after its last row), loaded on first use."""
        from crmdata.contract import load_tables
        from crmdata.timeutil import data_end

        if self.data_dir is None:
            raise ChannelDataMissing("set CRM_SCORING_DATA_DIR to the CRM export directory to get channel figures")
        with self._lock:
            if self._tables is None:
                tables = load_tables(self.data_dir, as_of=self.as_of)
                if tables.get("channel_spend") is None:
                    raise ChannelDataMissing("the CRM export (CRM_SCORING_DATA_DIR) has no channel_spend table")
                self.as_of = self.as_of or data_end(tables)
                self._tables = tables
        return self._tables, self.as_of

    def _values(self, clv: ModelBundle | None) -> pd.Series:
        from training.scoring import model_lead_values

        tables, as_of = self.tables()
        return model_lead_values(tables, as_of, clv)

    def performance(self, clv: ModelBundle | None, method: str) -> list[dict]:
        """Per-channel spend, leads, conversions, CAC, value and ROI, credited by `method`."""
        from marketing.channels import channel_performance

        tables, as_of = self.tables()
        frame = channel_performance(tables, as_of, self._values(clv), method=method)
        frame = frame.reset_index().astype(object).where(frame.reset_index().notna(), None)
        return frame.to_dict(orient="records")

    def curves(self, clv: ModelBundle | None, current_spend: dict[str, float] | None = None):
        """The fitted response curves (kept per CLV model version); `current_spend` overrides the observed level."""
        from marketing.optimiser import with_current_spend
        from marketing.response_curves import fit_response_curves

        key = str(clv.metadata.version) if clv is not None else "realised"
        tables, as_of = self.tables()
        if key not in self._curves:
            self._curves[key] = fit_response_curves(tables, as_of, self._values(clv))
        return with_current_spend(self._curves[key], current_spend)

    def budget(self, clv: ModelBundle | None, current_spend: dict[str, float] | None = None, **constraints) -> dict:
        """Recommended spend per channel under the constraints; `current_spend` overrides the observed level."""
        from marketing.advice import recommend_budget

        return recommend_budget(self.curves(clv), current_spend=current_spend, **constraints)

    def what_if(
        self,
        clv: ModelBundle | None,
        plan: dict[str, float],
        margin: float | None = None,
        current_spend: dict[str, float] | None = None,
    ) -> dict:
        """Leads, value (and profit with a margin) of a spend plan per channel, with 80% intervals."""
        from marketing.what_if import what_if

        return what_if(self.curves(clv, current_spend), plan, margin)
