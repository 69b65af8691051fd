"""What `crm-score train` reports: each model's holdout figure beside its baseline, version and promotion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from training.config import REGISTERED_NAMES
from training.evaluate import HEADLINE

if TYPE_CHECKING:
    from training.train import TrainOutcome


@dataclass(frozen=True, kw_only=True)
class TrainSummary:
    """What `crm-score train` reports: the outcome and each model's registry decision."""

    outcome: TrainOutcome
    decisions: dict[str, dict]

    def table(self):
        """A rich table: model, holdout figure vs baseline, version and promotion."""
        from rich.table import Table

        table = Table(title=f"crm-scoring models trained as of {self.outcome.as_of.date()}")
        for col in ("model", "rows (train/holdout)", "metric", "model", "baseline", "version", "champion?"):
            table.add_column(col)
        for kind, result in self.outcome.results.items():
            metric = HEADLINE[kind]
            d = self.decisions.get(kind, {})
            table.add_row(
                REGISTERED_NAMES[kind],
                f"{result.train_rows:,}/{len(result.holdout.labels):,}",
                metric,
                f"{result.metrics[metric]:.3f}",
                f"{result.baseline[metric]:.3f}",
                str(d.get("version", "-")),
                f"yes ({d.get('reason')})" if d.get("promoted") else f"no ({d.get('reason', '-')})",
            )
        for kind, reason in self.outcome.skipped.items():
            table.add_row(REGISTERED_NAMES[kind], "-", "skipped", "-", "-", "-", reason[:60])
        return table
