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

    def notes(self) -> list[str]:
        """Why each fallback was trained and each skipped model was not, one full line each, said once."""
        return [*self.outcome.fallbacks.values(), *self.outcome.skipped.values()]

    def table(self):
        """A rich table: model, kind (lightgbm or fallback), holdout figure vs baseline, version and promotion.

        The reasons for fallbacks and skipped models are not in it (a column would cut them): see `notes`.
        """
        from rich.table import Table

        table = Table(title=f"crm-scoring models trained as of {self.outcome.as_of.date()}")
        for col in ("model", "kind", "rows (train/holdout)", "metric", "model", "baseline", "version", "champion?"):
            table.add_column(col)
        for kind, result in self.outcome.results.items():
            metric = HEADLINE[kind]
            d = self.decisions.get(kind, {})
            table.add_row(
                REGISTERED_NAMES[kind],
                "fallback" if kind in self.outcome.fallbacks else "lightgbm",
                f"{result.train_rows:,}/{len(result.holdout.labels):,}",
                metric,
                f"{result.metrics[metric]:.3f}",
                f"{result.baseline[metric]:.3f}",
                str(d.get("version", "-")),
                f"yes ({d.get('reason')})" if d.get("promoted") else f"no ({d.get('reason', '-')})",
            )
        for kind in self.outcome.skipped:
            table.add_row(REGISTERED_NAMES[kind], "-", "-", "skipped", "-", "-", "-", "- (reason below)")
        return table
