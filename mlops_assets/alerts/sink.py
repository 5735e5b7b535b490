"""Where alerts go: a JSON-lines file (always) and a Slack-compatible webhook (when its URL is
set). An alert names the use case, the asset and check, the day partition, the run and a link
to the run in the Dagster UI.

The file is written first, so an unreachable webhook loses nothing; the webhook is retried
(tenacity) a bounded number of times with exponential backoff, then the failure is logged and
returned, never raised: alerting must not block or fail the pipeline it reports on.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import tenacity
from pydantic import Field

from mlops_assets import settings

FILE_ENV = "MLOPS_ALERT_FILE"
WEBHOOK_ENV = "MLOPS_ALERT_WEBHOOK_URL"
UI_URL_ENV = "MLOPS_DAGSTER_UI_URL"
RETRIES_ENV = "MLOPS_ALERT_WEBHOOK_RETRIES"
DEFAULT_UI_URL = "http://127.0.0.1:3000"
DEFAULT_RETRIES = 3
MAX_RETRIES = 10

CHECK_FAILED, RUN_FAILED = "check_failed", "run_failed"


@dataclass(frozen=True)
class Alert:
    kind: str  # CHECK_FAILED or RUN_FAILED
    use_case: str | None  # first part of the asset key; None for a run without use-case assets
    message: str
    run_id: str | None
    run_url: str | None
    asset: str | None = None  # "churn/drift_report"
    check: str | None = None
    partition: str | None = None  # the day, or "start...end" for a range run
    job: str | None = None
    severity: str = "ERROR"
    details: Mapping[str, Any] = field(default_factory=dict)
    time_utc: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    def text(self) -> str:
        """One readable paragraph for chat: what failed, where, and the link."""
        what = (f"check `{self.check}` on `{self.asset}` failed" if self.kind == CHECK_FAILED
                else f"run of `{self.job or 'assets'}` failed")
        where = f" for day {self.partition}" if self.partition else ""
        head = f"[{self.severity}] {self.use_case or 'mlops_assets'}: {what}{where}."
        link = f"\nRun: {self.run_url}" if self.run_url else ""
        return f"{head}\n{self.message}{link}"


def run_url(ui_url: str, run_id: str | None) -> str | None:
    return f"{ui_url.rstrip('/')}/runs/{run_id}" if run_id else None


def use_case_of(asset_path: Iterable[str]) -> str | None:
    """Every use case's assets are keyed <use case>/<asset> (lineage.key)."""
    path = list(asset_path)
    return path[0] if len(path) > 1 else None


def partition_of(tags: Mapping[str, str]) -> str | None:
    """The day of a single-partition run, or "first...last" of a range run."""
    if tags.get("dagster/partition"):
        return tags["dagster/partition"]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    return f"{start}...{end}" if start and end else None


def check_alert(evaluation, run_id: str | None, ui_url: str, job: str | None = None,
                run_tags: Mapping[str, str] | None = None) -> Alert:
    """An alert from a failed AssetCheckEvaluation (the event's payload). The day comes from the
    evaluation when the check is partitioned, else from the run that evaluated it."""
    path = evaluation.asset_key.path
    details = {}
    for name, value in (evaluation.metadata or {}).items():
        raw = getattr(value, "value", value)
        if isinstance(raw, (int, float, str, bool)) or raw is None:
            details[name] = raw
    return Alert(kind=CHECK_FAILED, use_case=use_case_of(path), asset="/".join(path), check=evaluation.check_name,
                 partition=evaluation.partition or partition_of(run_tags or {}), run_id=run_id, run_url=run_url(ui_url, run_id), job=job,
                 severity=str(getattr(evaluation.severity, "value", evaluation.severity)),
                 message=evaluation.description or f"{evaluation.check_name} did not pass", details=details)


def run_failure_alert(run, message: str, ui_url: str, failed_steps: list[str] | None = None,
                      asset_keys: Iterable | None = None) -> list[Alert]:
    """One alert per use case whose assets the failed run was materializing (one alert without a
    use case when none was), so that each use case's owners see their own failures. The assets
    are ``asset_keys`` when given (those the run planned), else the run's asset selection."""
    keys = sorted(set(asset_keys or run.asset_selection or []), key=lambda k: k.to_user_string())
    by_use_case: dict[str | None, list[str]] = {}
    for k in keys:
        by_use_case.setdefault(use_case_of(k.path), []).append(k.to_user_string())
    if not by_use_case:
        by_use_case[None] = []
    return [Alert(kind=RUN_FAILED, use_case=uc, asset=", ".join(assets) or None, partition=partition_of(run.tags),
                  run_id=run.run_id, run_url=run_url(ui_url, run.run_id), job=run.job_name, message=message,
                  details={"failed_steps": ", ".join(failed_steps or [])})
            for uc, assets in by_use_case.items()]


def write_jsonl(path: Path, alerts: Iterable[Alert]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        for alert in alerts:
            out.write(json.dumps(asdict(alert), default=str, sort_keys=True) + "\n")


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    error: str | None = None


class _NotDelivered(Exception):
    """One webhook attempt that did not get a 2xx; the message says why."""


def _post_once(url: str, body: bytes, timeout_s: float) -> None:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            if 200 <= response.status < 300:
                return
            error = f"HTTP {response.status}"
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, timeout, HTTP 4xx/5xx, bad URL
        error = f"{type(exc).__name__}: {exc}"
    raise _NotDelivered(error)


def post_webhook(url: str, payload: Mapping[str, Any], retries: int, backoff_s: float, timeout_s: float,
                 log: Callable[[str], None], sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """POST JSON to a Slack-compatible webhook: ``retries`` attempts in all, waiting backoff_s,
    2*backoff_s, ... between them. Any 2xx is delivered; the last error is logged and returned."""
    attempts, host = max(1, retries), _host_of(url)
    body = json.dumps(payload).encode()

    def log_failure(state: tenacity.RetryCallState) -> None:
        log(f"alert webhook {host}: attempt {state.attempt_number}/{attempts} failed ({state.outcome.exception()})")

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts), wait=tenacity.wait_exponential(multiplier=backoff_s, min=0),
        retry=tenacity.retry_if_exception_type(_NotDelivered), after=log_failure, sleep=sleep, reraise=True)
    try:
        retrying(_post_once, url, body, timeout_s)
    except _NotDelivered as exc:
        log(f"alert webhook {host} unreachable after {attempts} attempts; the alert is in the alert file only")
        return Delivery(False, attempts, str(exc))
    return Delivery(True, retrying.statistics["attempt_number"])


def _host_of(url: str) -> str:
    """scheme://host:port only: a Slack webhook's secret is its path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def default_alert_file() -> Path:
    return settings.data_dir() / "alerts" / "alerts.jsonl"


class AlertSink(dg.ConfigurableResource):
    """Alert destinations. Empty fields take the defaults at use time (the file under the data
    folder, no webhook, the local UI), so moving MLOPS_DATA_DIR moves the file too."""

    file_path: str = Field(default="", description=f"JSON-lines alert file ({FILE_ENV}); "
                                                   "default <data folder>/alerts/alerts.jsonl.")
    webhook_url: str = Field(default="", description=f"Slack-compatible incoming webhook ({WEBHOOK_ENV}); "
                                                     "alerts are POSTed as {\"text\": ...} when set.")
    ui_url: str = Field(default="", description=f"Base URL of the Dagster UI for run links ({UI_URL_ENV}); "
                                                f"default {DEFAULT_UI_URL}.")
    # Bounds are applied where used (MAX_*): pydantic constraints cannot check a dg.EnvVar.
    retries: int = Field(default=DEFAULT_RETRIES, description=f"Webhook attempts per alert, 1 to {MAX_RETRIES} "
                                                              f"({RETRIES_ENV}).")
    backoff_s: float = Field(default=0.5, description="Wait before the 2nd attempt; doubles after (at most 30 s).")
    timeout_s: float = Field(default=5.0, description="Timeout of one webhook request (at most 30 s).")

    def alert_file(self) -> Path:
        return Path(self.file_path) if self.file_path else default_alert_file()

    def dagster_ui_url(self) -> str:
        return self.ui_url or DEFAULT_UI_URL

    def send(self, alerts: list[Alert], log: Callable[[str], None] | None = None) -> list[Delivery]:
        """Append the alerts to the file, then post each to the webhook. After one alert fails
        to get through, the rest of this batch are not posted (logged instead), so that a dead
        webhook costs one bounded retry sequence per sensor tick, not one per alert."""
        log = log or logging.getLogger(__name__).warning
        if not alerts:
            return []
        write_jsonl(self.alert_file(), alerts)
        if not self.webhook_url:
            return []
        deliveries: list[Delivery] = []
        for alert in alerts:
            if deliveries and not deliveries[-1].delivered:
                log(f"alert webhook down: not posting {alert.kind} {alert.asset or alert.job} (in the alert file)")
                deliveries.append(Delivery(False, 0, "skipped: webhook down earlier in this batch"))
                continue
            deliveries.append(post_webhook(self.webhook_url, {"text": alert.text()},
                                           min(max(1, self.retries), MAX_RETRIES), min(max(0.0, self.backoff_s), 30.0),
                                           min(max(0.1, self.timeout_s), 30.0), log))
        return deliveries


def alert_sink_from_env() -> AlertSink:
    """The resource with dg.EnvVar for each variable that is set (the UI then shows the
    variable's name, never a webhook URL, which holds a secret token); unset ones keep the
    defaults above."""
    fields: dict[str, Any] = {}
    for name, env in (("file_path", FILE_ENV), ("webhook_url", WEBHOOK_ENV), ("ui_url", UI_URL_ENV)):
        if os.environ.get(env):
            fields[name] = dg.EnvVar(env)
    if os.environ.get(RETRIES_ENV):
        fields["retries"] = dg.EnvVar.int(RETRIES_ENV)
    return AlertSink(**fields)
