"""Prometheus metrics: request latency and commands per endpoint, counted in every web worker (the
multiprocess mode of prometheus-client under gunicorn), and open cases, overdue cases and timer lag
read from the database when scraped, so every worker reports the same truth."""
from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine.clock import SYSTEM_CLOCK

from api.http.context import current_engine

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUEST_SECONDS = Histogram("gridflow_http_request_seconds", "HTTP request latency", ["method", "endpoint", "status"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
COMMANDS = Counter("gridflow_commands_total", "Commands on cases received over HTTP", ["command", "outcome"])


class _DatabaseGauges:
    """A collector that asks the database at scrape time."""

    def __init__(self, engine):
        self._engine = engine

    def collect(self):
        counts = self._engine.queries.operational_counts(SYSTEM_CLOCK.now())
        for name, doc in (("open_cases", "Cases not finished"), ("overdue_cases", "Cases past a deadline"),
                          ("pending_timers", "Timers waiting to fire")):
            gauge = GaugeMetricFamily(f"gridflow_{name}", doc)
            gauge.add_metric([], counts[name])
            yield gauge
        lag = GaugeMetricFamily("gridflow_timer_lag_seconds",
                                "How long the most overdue pending timer has been waiting past its due time")
        lag.add_metric([], counts["timer_lag_seconds"])
        yield lag


class _StatisticsGauges:
    """The headline figures of the current month, county-wide (docs/statistics.md), read at scrape time."""

    def __init__(self, engine):
        self._engine = engine

    def collect(self):
        from engine.access.scopes import Principal
        from engine.statistics.figures import BY_NAME
        from engine.statistics.periods import key_of, local_day, period_start

        now = SYSTEM_CLOCK.now()
        month = key_of("month", period_start("month", local_day(now)))
        values = self._engine.statistics.headline(Principal("metrics", "platform"), now=now)
        for name, value in values.items():
            figure = BY_NAME[name]
            gauge = GaugeMetricFamily(f"gridflow_statistics_{name}", f"{figure.en} ({figure.zh}), this month",
                                      labels=["month"])
            gauge.add_metric([month], float("nan") if value is None else float(value))
            yield gauge


def _outcome(status: int) -> str:
    return "ok" if status < 400 else "conflict" if status == 409 else "refused" if status < 500 else "error"


def register(app: Flask) -> None:
    @app.before_request
    def _start():
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response: Response):
        started = g.pop("started", None)
        if started is None:
            return response
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUEST_SECONDS.labels(request.method, endpoint, str(response.status_code)).observe(
            time.perf_counter() - started)
        if request.method == "POST" and request.url_rule is not None:
            COMMANDS.labels(request.endpoint or endpoint, _outcome(response.status_code)).inc()
        return response


def exposition() -> Response:
    if os.environ.get(MULTIPROCESS_ENV):
        workers = CollectorRegistry()
        multiprocess.MultiProcessCollector(workers)
        text = generate_latest(workers)
    else:
        from prometheus_client import REGISTRY
        text = generate_latest(REGISTRY)
    database = CollectorRegistry(auto_describe=False)
    database.register(_DatabaseGauges(current_engine()))
    database.register(_StatisticsGauges(current_engine()))
    return Response(text + generate_latest(database), mimetype=CONTENT_TYPE_LATEST)
