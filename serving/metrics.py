"""Prometheus metrics of the API: requests and latency by route and status, model versions, score spread.

Metrics live in a registry per app (not the global default), so that tests can build several apps.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
UNIT_BUCKETS = tuple(i / 20 for i in range(1, 21))
VALUE_BUCKETS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 100_000)


class Metrics:
    """The API's metrics in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "crm_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "crm_request_seconds",
            "Request latency by route and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_version = Gauge(
            "crm_model_version",
            "Loaded champion version per registered model (0 = not loaded)",
            ["model"],
            registry=self.registry,
        )
        self.scores = Histogram(
            "crm_score_probability",
            "Scored probabilities by model",
            ["model"],
            buckets=UNIT_BUCKETS,
            registry=self.registry,
        )
        self.values = Histogram(
            "crm_score_expected_value",
            "Expected value (CLV horizon, currency of orders) of scored rows",
            buckets=VALUE_BUCKETS,
            registry=self.registry,
        )
        self.reloads = Counter(
            "crm_model_reloads_total", "Model reloads by outcome", ["outcome"], registry=self.registry
        )

    def set_versions(self, names_versions: dict[str, str | None]) -> None:
        for name, version in names_versions.items():
            try:
                self.model_version.labels(name).set(float(version) if version is not None else 0)
            except ValueError:
                self.model_version.labels(name).set(0)

    def observe_scores(self, model: str, values) -> None:
        hist = self.scores.labels(model)
        for v in values:
            if v is not None:
                hist.observe(v)

    def observe_leads(self, scores: list[dict]) -> None:
        """The conversion probabilities and expected values of scored leads."""
        self.observe_scores("crm_conversion", [s["conversion_probability"] for s in scores])
        for s in scores:
            if s["expected_value"] is not None:
                self.values.observe(s["expected_value"])

    def render(self) -> bytes:
        return generate_latest(self.registry)
