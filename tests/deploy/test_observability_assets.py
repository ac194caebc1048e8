"""The Grafana dashboard and the Prometheus alert rules read metrics the services really export.

Each service's metrics are listed by a fresh interpreter that imports only that service's app
(its metric definitions register at import), so a metric shown for "every service" must be
defined in code every service loads, and a dashboard or alert can never name a metric, or a label,
that no service exports: both would silently show nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from typing import Any

import pytest
import yaml

from .conftest import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "hwcollab-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
SERVICES = ("subscriber", "employer", "notifier")
# Added by Prometheus to every scraped series, or by histogram_quantile.
TARGET_LABELS = {"job", "instance", "le"}
# What an operator needs from every service process.
EVERY_SERVICE = {
    "hwcollab_http_request_seconds_bucket",
    "hwcollab_events_consumed_total",
    "hwcollab_events_dead_lettered_total",
    "hwcollab_consumer_lag",
    "hwcollab_outbox_pending",
    "hwcollab_outbox_oldest_pending_seconds",
    "hwcollab_outbox_relayed_total",
    "hwcollab_outbox_relay_errors_total",
}

LIST_METRICS = """
import json, sys
import hwcollab_{service}.app
from prometheus_client import REGISTRY
series = {{}}
for name, collector in REGISTRY._names_to_collectors.items():
    series[name] = sorted(getattr(collector, "_labelnames", ()))
json.dump(series, sys.stdout)
"""


@cache
def _listed() -> dict[str, dict[str, set[str]]]:
    """Series names each service's process exports, each with its label names (the three
    interpreters run at once)."""
    running = {
        service: subprocess.Popen(
            [sys.executable, "-c", LIST_METRICS.format(service=service)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for service in SERVICES
    }
    listed = {}
    for service, process in running.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        listed[service] = {name: set(labels) for name, labels in json.loads(out).items()}
    return listed


def exported(service: str) -> dict[str, set[str]]:
    return _listed()[service]


def exported_anywhere() -> dict[str, set[str]]:
    merged: dict[str, set[str]] = {}
    for service in SERVICES:
        for name, labels in exported(service).items():
            merged.setdefault(name, set()).update(labels)
    return merged


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    return [
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", ())
    ]


def expressions() -> list[str]:
    return dashboard_expressions() + [rule["expr"] for rule in alert_rules()]


_METRIC = re.compile(r"\b(hwcollab_[a-z0-9_]+)\b")
_SELECTOR = re.compile(r"\b(hwcollab_[a-z0-9_]+)\{([^}]*)\}")
_GROUPING = re.compile(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)")


def labels_used(expression: str) -> set[str]:
    """Label names in selectors and grouping clauses of ``expression``."""
    used = {
        part.split("=")[0].rstrip("!~").strip()
        for _, matchers in _SELECTOR.findall(expression)
        for part in matchers.split(",")
        if part.strip()
    }
    used.update(
        label.strip()
        for grouping in _GROUPING.findall(expression)
        for label in grouping.split(",")
        if label.strip()
    )
    return used


def test_the_dashboard_is_grafana_json_with_a_prometheus_query_in_every_panel() -> None:
    loaded = dashboard()
    assert loaded["title"]
    assert loaded["uid"]
    graphs = [panel for panel in loaded["panels"] if panel["type"] != "row"]
    assert len(graphs) >= 12
    for panel in graphs:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["type"] == "prometheus"
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
    assert len({panel["id"] for panel in loaded["panels"]}) == len(loaded["panels"])


def test_the_dashboard_shows_the_main_figures() -> None:
    shown = {name for expr in dashboard_expressions() for name in _METRIC.findall(expr)}
    for figure in (
        "hwcollab_http_request_seconds_count",  # request rate and 5xx
        "hwcollab_http_request_seconds_bucket",  # latency by route
        "hwcollab_events_consumed_total",
        "hwcollab_events_dead_lettered_total",
        "hwcollab_consumer_lag",
        "hwcollab_outbox_pending",
        "hwcollab_notifier_match_seconds_bucket",
        "hwcollab_notifier_emails_sent_total",
        "hwcollab_notifier_emails_failed_total",
        "hwcollab_notifier_emails_retried_total",
        "hwcollab_notifier_digest_openings_bucket",
        "hwcollab_bounce_rate_7d",
        "hwcollab_complaint_rate_7d",
        "hwcollab_notifier_bounce_webhooks_total",
    ):
        assert figure in shown


def test_the_complaint_rate_warns_and_pages_at_gmails_thresholds() -> None:
    """Gmail: keep spam complaints under 0.1 %, never reach 0.3 %; a bounce-rate alert too."""
    thresholds = {
        rule["labels"]["severity"]: float(found.group(1))
        for rule in alert_rules()
        if (found := re.search(r"hwcollab_complaint_rate_7d\) >= ([0-9.]+)", rule["expr"]))
    }
    assert thresholds == {"warning": 0.001, "critical": 0.003}
    assert any("hwcollab_bounce_rate_7d" in rule["expr"] for rule in alert_rules())


def test_alert_rules_are_well_formed() -> None:
    rules = alert_rules()
    assert rules
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])


@pytest.mark.parametrize("expression", expressions())
def test_every_query_is_balanced_and_reads_exported_metrics_and_labels(expression: str) -> None:
    for opening, closing in ("()", "[]", "{}"):
        assert expression.count(opening) == expression.count(closing)
    metrics = exported_anywhere()
    names = _METRIC.findall(expression)
    assert names, "a query that reads no hwcollab metric"
    for name in names:
        assert name in metrics, f"{name} is not exported by any service"
    allowed = TARGET_LABELS.union(*(metrics[name] for name in names))
    assert labels_used(expression) <= allowed


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_exports_the_main_figures(service: str) -> None:
    assert EVERY_SERVICE - set(exported(service)) == set()
    assert exported(service)["hwcollab_consumer_lag"] == {"group", "topic", "partition"}


def test_the_check_catches_an_unknown_metric_and_label() -> None:
    metrics = exported_anywhere()
    assert "hwcollab_emails_sent_total" not in metrics
    assert "kind" not in metrics["hwcollab_outbox_pending"]
    assert labels_used('sum by (group, kind) (x{topic="a", status=~"5.."})') == {
        "group",
        "kind",
    }
    assert labels_used('sum by (route) (hwcollab_x{status=~"5..",method!="GET"})') == {
        "route",
        "status",
        "method",
    }
