"""Starting and ending the servers tests run (dagster dev, dagster-webserver): a free port,
waiting for a condition while the server lives, and ending its whole process group.

dagster dev's children (daemon, code servers, run workers) outlive a plain SIGTERM to dagster dev,
and outlive dagster dev itself when it crashes; left running they keep CI from finishing."""
from __future__ import annotations

import contextlib
import datetime as _dt
import json as _json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass as _dataclass
from dataclasses import field as _field
from pathlib import Path

from mlops_assets_tests.ports import free_port


def stop_group(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM the whole group of `proc` (started with start_new_session=True), SIGKILL what is
    left after `grace_s`; also when `proc` itself has already exited."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:  # nobody left in the group
        proc.wait(timeout=10)
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader, so that a zombie does not count as left
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


@contextlib.contextmanager
def serve_app(app, bound_s: float = 20.0):
    """An ASGI app under uvicorn on a free 127.0.0.1 port, in a thread of this process; yields
    the port and stops the server on exit."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + bound_s
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def wait_for(predicate, bound_s: float, what: str, proc: subprocess.Popen, log: Path, poll_s: float = 1.0):
    """The first truthy value of predicate(), polled while `proc` runs; an AssertionError with the
    tail of its log when it exits or `bound_s` passes first."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster dev exited ({proc.returncode}) while waiting for {what}:\n"
                                 + log.read_text()[-3000:])
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {bound_s}s waiting for {what}; dagster dev log tail:\n"
                         + log.read_text()[-3000:])


def webserver_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start_dagster_dev(port: int, log: Path, intervals: dict[str, str]) -> subprocess.Popen:
    """`dagster dev` on the project's code location in its own process group (end it with
    stop_group), its output in `log`; `intervals`: the sensor interval variables for this test."""
    from mlops_assets import settings

    env = {**os.environ, **intervals, "DO_NOT_TRACK": "1"}
    with log.open("w") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-m", "mlops_assets.definitions",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=settings.PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


# --- Soak harness: dagster dev fed one day file at a time, measured from outside ------------------
# Shared by mlops_assets_tests/benchmarks/bench_soak.py (the benchmark) and test_soak.py
# (its short version in the suite). It reads the instance of the DAGSTER_HOME dagster dev runs on
# (read-only) and, for backfills, speaks to the webserver's GraphQL API as the UI does.

SOAK_GOALS = {"runs_per_day": 2.0, "p95_file_to_predictions_s": 60.0, "failed_ticks": 0,
              "retrain_start_delay_s": 300.0, "summary_behind_samples": 0}
ACTIVE_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def graphql(port: int, query: str, variables: dict | None = None, timeout_s: float = 60) -> dict:
    """POST a query to the webserver's GraphQL API; the `data` part, an AssertionError on errors."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", method="POST",
                                     data=_json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as r:
        body = _json.load(r)
    assert "errors" not in body, body["errors"]
    return body["data"]


@_dataclass(frozen=True)
class SoakPlan:
    """Days of a soak: `history_days` loaded (and a champion trained) before dagster dev starts,
    then `dropped_days` dropped one by one, every `cadence_s` seconds. All days are in the past,
    the last dropped day yesterday (UTC), so each is a closed partition. The history needs more
    than label_delay_days + the use case's holdout days (15 for the demo) to train. Labels come
    `label_delay_days` after their day (written when that later day is dropped); concept drift
    from the `concept_drift_from`-th dropped day (1-based; 0 or past the end: none)."""
    history_days: int = 60
    dropped_days: int = 30
    cadence_s: float = 20.0
    rows_per_day: int = 300
    concept_drift_from: int = 15
    label_delay_days: int = 7
    use_case: str = "churn"
    today: _dt.date = _field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).date())

    @property
    def first_day(self) -> _dt.date:
        return self.today - _dt.timedelta(days=self.history_days + self.dropped_days)

    @property
    def history(self) -> list[_dt.date]:
        return [self.first_day + _dt.timedelta(days=i) for i in range(self.history_days)]

    @property
    def drops(self) -> list[_dt.date]:
        return [self.first_day + _dt.timedelta(days=self.history_days + i) for i in range(self.dropped_days)]

    def sim_config(self):
        from mlops_assets.simulate.churn import SimulationConfig

        drift = (self.drops[self.concept_drift_from - 1]
                 if 0 < self.concept_drift_from <= self.dropped_days else None)
        return SimulationConfig(start_date=self.first_day, rows_per_day=self.rows_per_day, concept_drift_from=drift)


def soak_env(data: Path, plan: SoakPlan) -> dict[str, str]:
    """The variables of a soak's data folder (set them before preparing it): its own DAGSTER_HOME,
    and the use case's partitions starting on the plan's first day (a use case override file),
    so that no partition is empty."""
    data.mkdir(parents=True, exist_ok=True)
    overrides = data / "soak_overrides.yaml"
    overrides.write_text(f"{plan.use_case}:\n  first_day: {plan.first_day.isoformat()}\n")
    (data / "dagster_home").mkdir(parents=True, exist_ok=True)
    return {"MLOPS_DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home"), "DO_NOT_TRACK": "1",
            "MLOPS_USE_CASE_OVERRIDES": str(overrides)}


def soak_folders(data: Path, plan: SoakPlan) -> tuple[Path, Path]:
    """(landing folder, label folder) of the demo use case in a data folder."""
    return data / "landing" / plan.use_case, data / "landing" / f"{plan.use_case}_labels"


def prepare_soak_history(data: Path, plan: SoakPlan, log=print) -> float:
    """With soak_env's variables set: write the history (labels `label_delay_days` late), give the
    instance the project's dagster.yaml and pool limit, and run what `mlops-assets demo` runs
    (load, train and promote a champion), scoring and reporting the history's last
    label_delay_days + 1 days as the loop would have: the days whose labels land during the soak
    were scored when they landed. Returns its seconds."""
    import time as _time

    from mlops_assets import cli
    from mlops_assets.instance import home as instance_home
    from mlops_assets.orchestrate import run_pipeline
    from mlops_assets.simulate.churn import write_days

    started = _time.monotonic()
    folder, labels = soak_folders(data, plan)
    write_days(folder, plan.history, plan.sim_config(), label_folder=labels, label_delay_days=plan.label_delay_days)
    instance_home.write_dagster_yaml(Path(os.environ["DAGSTER_HOME"]), "embedded")
    cli.prepare_instance()
    lines: list[str] = []
    scored = min(plan.label_delay_days + 1, plan.history_days)
    assert run_pipeline(monitor_days=scored, only=[plan.use_case], log=lines.append), \
        "the history run (run_pipeline) failed:\n" + "\n".join(lines[-30:])
    log(f"history: {plan.history_days} days x {plan.rows_per_day} rows loaded, champion trained, last {scored} "
        f"days scored ({_time.monotonic() - started:.0f}s)")
    return _time.monotonic() - started


def drop_day(data: Path, plan: SoakPlan, day: _dt.date) -> tuple[float, list[Path]]:
    """Write one day's landing file and the label files now due (days `label_delay_days` before
    it). Returns (the time the files were in place, the label files written)."""
    from mlops_assets.simulate.churn import write_days

    folder, labels = soak_folders(data, plan)
    before = set(labels.glob("*")) if labels.is_dir() else set()
    write_days(folder, [day], plan.sim_config(), label_folder=labels, label_delay_days=plan.label_delay_days,
               as_of=day)
    return time.time(), sorted(set(labels.glob("*")) - before)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)  # linear interpolation between closest ranks
    lo = int(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def _run_kind(tags: dict) -> str:
    """What launched a run, from its tags."""
    if "mlops/retrain" in tags:
        return f"retrain ({tags.get('mlops/trigger', '?')})"
    if "dagster/backfill" in tags:
        return "backfill"
    if tags.get("mlops/trigger"):
        return f"{tags['mlops/trigger']} sensor"
    if "dagster/from_automation_condition" in tags or "dagster/automation_condition_evaluation_id" in tags:
        return "automation condition"
    if "dagster/sensor_name" in tags:
        return f"sensor {tags['dagster/sensor_name']}"
    if "dagster/schedule_name" in tags:
        return f"schedule {tags['dagster/schedule_name']}"
    return "other"


def _table_days(value) -> set[str]:
    """The `day` column of the summary's `days` table metadata."""
    records = getattr(value, "records", None) or []
    return {str((getattr(r, "data", None) or {}).get("day")) for r in records}


class SoakProbe:
    """Samples the instance while a soak runs: call drop() after each file, poll() often, and
    figures() at the end. Reads only."""

    def __init__(self, instance, use_case: str, started_at: float):
        self.instance, self.uc, self.started_at = instance, use_case, started_at
        self.dropped: dict[str, float] = {}  # day -> time its file was in place
        self.labelled: dict[str, float] = {}  # day -> time its label file was in place
        self.scored_at: dict[str, float] = {}  # day -> its first batch_predictions after the drop
        self.reported_at: dict[str, float] = {}  # day -> its first drift_report after the drop
        self.summarised_at: dict[str, float] = {}  # day -> the first summary after the drop whose days hold it
        self.max_queue = 0
        self.samples = 0
        self.behind: list[tuple[float, str, str]] = []  # (time, summary latest_day, newest scored day)
        self.max_summary_wait_s = 0.0  # longest a scored day waited for a summary holding it
        self.dev_started_at = started_at
        self.run_of: dict[tuple[str, str], str] = {}  # (asset, day) -> the run of the first materialization seen

    def key(self, name: str):
        import dagster as dg

        return dg.AssetKey([self.uc, name])

    def drop(self, day: _dt.date, at: float, label_days: list[_dt.date] = ()) -> None:
        self.dropped[day.isoformat()] = at
        for d in label_days:
            self.labelled[d.isoformat()] = at

    def _first_after(self, asset: str, day: str, after: float) -> float | None:
        """Time of the day's first materialization of `asset` after `after` (its run id noted)."""
        import dagster as dg

        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=self.key(asset), asset_partitions=[day]), limit=20).records
        later = [r for r in records if r.timestamp >= after]
        if not later:
            return None
        first = min(later, key=lambda r: r.timestamp)
        self.run_of[(asset, day)] = first.run_id
        return first.timestamp

    def _summary(self):
        records = self.instance.fetch_materializations(self.key("monitoring_summary"), limit=1).records
        if not records:
            return None, set(), None, None
        metadata = records[0].asset_materialization.metadata
        latest = metadata.get("latest_day")
        return (getattr(latest, "value", latest), _table_days(metadata.get("days")), records[0].timestamp,
                records[0].run_id)

    def _first_summary_holding(self, day: str) -> None:
        """The earliest summary after the day was scored whose `days` hold it (a later summary may
        have replaced it before this poll)."""
        records = self.instance.fetch_materializations(self.key("monitoring_summary"), limit=50).records
        holding = [r for r in records if r.timestamp >= self.scored_at[day]
                   and day in _table_days(r.asset_materialization.metadata.get("days"))]
        first = min(holding, key=lambda r: r.timestamp)
        self.summarised_at[day] = first.timestamp
        self.run_of[("monitoring_summary", day)] = first.run_id

    def poll(self) -> None:
        import dagster as dg

        now = time.time()
        self.samples += 1
        self.max_queue = max(self.max_queue, self.instance.get_runs_count(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED])))
        for day, at in self.dropped.items():
            if day not in self.scored_at and (t := self._first_after("batch_predictions", day, at)):
                self.scored_at[day] = t
            if day not in self.reported_at and (t := self._first_after("drift_report", day, at)):
                self.reported_at[day] = t
        latest, days, summary_ts, _ = self._summary()
        for day in self.scored_at:
            if day not in self.summarised_at and day in days and summary_ts >= self.scored_at[day]:
                self._first_summary_holding(day)
        waiting = [now - self.scored_at[d] for d in self.scored_at if d not in self.summarised_at]
        self.max_summary_wait_s = max([self.max_summary_wait_s, *waiting])
        scored = self.instance.get_materialized_partitions(self.key("batch_predictions"))
        newest = max(scored) if scored else None
        if newest and (latest is None or str(latest) < newest):
            self.behind.append((now, str(latest), newest))

    def active_runs(self) -> int:
        import dagster as dg

        return self.instance.get_runs_count(dg.RunsFilter(statuses=[
            getattr(dg.DagsterRunStatus, s) for s in ACTIVE_STATUSES]))

    def runs(self, since: float | None = None):
        """Run records created since `since` (default: the soak's start)."""
        import dagster as dg

        after = _dt.datetime.fromtimestamp(self.started_at if since is None else since, tz=_dt.timezone.utc)
        return self.instance.get_run_records(filters=dg.RunsFilter(created_after=after))

    def ticks(self, since: float) -> dict[str, dict]:
        """{instigator name: {"ticks": n, "failed": n, "errors": [messages]}} since `since`."""
        from dagster._core.scheduler.instigation import TickStatus

        out = {}
        for state in self.instance.all_instigator_state():
            ticks = self.instance.get_ticks(state.instigator_origin_id, state.selector_id, after=since)
            failed = [t for t in ticks if t.status == TickStatus.FAILURE]
            errors = [(t.error.message if t.error else "?").strip().splitlines()[0][:300] for t in failed]
            out[state.instigator_name] = {"ticks": len(ticks), "failed": len(failed), "errors": errors}
        return out

    def done(self) -> bool:
        """Every dropped day scored, drift-reported and in the summary, and no run waiting or running."""
        return (set(self.dropped) <= set(self.scored_at) & set(self.reported_at) & set(self.summarised_at)
                and self.active_runs() == 0)

    def figures(self) -> dict:
        records = self.runs()
        kinds: dict[str, int] = {}
        for r in records:
            kind = _run_kind(r.dagster_run.tags)
            kinds[kind] = kinds.get(kind, 0) + 1
        failed_runs = [r.dagster_run for r in records if r.dagster_run.status.value == "FAILURE"]
        retrains = []
        for r in records:
            if "mlops/retrain" not in r.dagster_run.tags:
                continue
            start = r.start_time
            retrains.append({"run_id": r.dagster_run.run_id, "trigger": r.dagster_run.tags.get("mlops/trigger"),
                             "status": r.dagster_run.status.value,
                             "start_delay_s": (start if start else time.time()) - r.create_timestamp.timestamp(),
                             "started": bool(start)})
        latency = [self.scored_at[d] - at for d, at in self.dropped.items() if d in self.scored_at]
        end_of = {r.dagster_run.run_id: r.end_time for r in records}
        detail = [{"run_id": r.dagster_run.run_id, "kind": _run_kind(r.dagster_run.tags),
                   "status": r.dagster_run.status.value,
                   "days": r.dagster_run.tags.get("mlops/days") or r.dagster_run.tags.get("dagster/partition") or
                   f"{r.dagster_run.tags.get('dagster/asset_partition_range_start')}.."
                   f"{r.dagster_run.tags.get('dagster/asset_partition_range_end')}",
                   "assets": sorted(k.path[-1] for k in (r.dagster_run.asset_selection or [])),
                   "created": r.create_timestamp.timestamp(), "start": r.start_time, "end": r.end_time}
                  for r in sorted(records, key=lambda r: r.create_timestamp)]
        ticks = self.ticks(self.dev_started_at)
        n_days = max(len(self.dropped), 1)
        return {
            "days_dropped": len(self.dropped),
            "runs": len(records), "runs_by_kind": dict(sorted(kinds.items())), "run_detail": detail,
            "runs_per_day": len(records) / n_days,
            "failed_runs": [(r.run_id, _run_kind(r.tags), r.tags.get("dagster/partition")
                             or f"{r.tags.get('dagster/asset_partition_range_start')}..") for r in failed_runs],
            "p50_file_to_predictions_s": _percentile(latency, 50),
            "p95_file_to_predictions_s": _percentile(latency, 95),
            "max_file_to_predictions_s": max(latency) if latency else None,
            "days_scored": len(self.scored_at), "days_drift_reported": len(self.reported_at),
            "days_summarised": len(self.summarised_at),
            "max_queue": self.max_queue,
            "ticks": ticks, "failed_ticks": sum(t["failed"] for t in ticks.values()),
            "retrains": retrains,
            "max_retrain_start_delay_s": max((r["start_delay_s"] for r in retrains), default=None),
            "summary_samples": self.samples, "summary_behind_samples": len(self.behind),
            "summary_max_wait_s": self.max_summary_wait_s,
            # Days in a summary by the time the run that scored them ended (that run's own summary
            # step, or another run's that came first): "behind" samples of those days fell inside it.
            "days_summarised_in_scoring_run": sum(
                1 for d, at in self.summarised_at.items()
                if at <= (end_of.get(self.run_of.get(("batch_predictions", d))) or 0) + 1.0),
            "summary_behind_examples": self.behind[:3],
        }


def soak_goal_rows(f: dict) -> list[tuple[str, str, str, bool]]:
    """(figure, value, goal, met) for the issue's goals."""
    def s(v, fmt="{:.0f}"):
        return "n/a" if v is None else fmt.format(v)

    retrain_delay = f["max_retrain_start_delay_s"]
    return [
        ("runs per landed day", f"{f['runs_per_day']:.2f} ({f['runs']} runs / {f['days_dropped']} days)",
         f"<= {SOAK_GOALS['runs_per_day']:.0f}", f["runs_per_day"] <= SOAK_GOALS["runs_per_day"]),
        ("file -> predictions p50 / p95", f"{s(f['p50_file_to_predictions_s'])} s / {s(f['p95_file_to_predictions_s'])} s"
         f" ({f['days_scored']}/{f['days_dropped']} days scored)",
         f"p95 <= {SOAK_GOALS['p95_file_to_predictions_s']:.0f} s",
         f["p95_file_to_predictions_s"] is not None and f["days_scored"] == f["days_dropped"]
         and f["p95_file_to_predictions_s"] <= SOAK_GOALS["p95_file_to_predictions_s"]),
        ("largest queue (QUEUED runs)", str(f["max_queue"]), "-", True),
        ("failed sensor ticks", str(f["failed_ticks"]), "0", f["failed_ticks"] == 0),
        ("retrains fired / max start delay", f"{len(f['retrains'])} / {s(retrain_delay)} s",
         f"each <= {SOAK_GOALS['retrain_start_delay_s']:.0f} s",
         retrain_delay is None or retrain_delay <= SOAK_GOALS["retrain_start_delay_s"]),
        ("summary behind newest scored day", f"{f['summary_behind_samples']} of {f['summary_samples']} samples; "
         f"longest wait {f['summary_max_wait_s']:.0f} s; {f['days_summarised']}/{f['days_dropped']} days summarised, "
         f"{f['days_summarised_in_scoring_run']} by the end of the run that scored them",
         "never", f["summary_behind_samples"] == 0 and f["days_summarised"] == f["days_dropped"]),
    ]


def print_soak_figures(f: dict, out=print) -> None:
    rows = soak_goal_rows(f)
    width = max(len(r[0]) for r in rows)
    out(f"{'figure'.ljust(width)} | value | goal | met")
    for name, value, goal, met in rows:
        out(f"{name.ljust(width)} | {value} | {goal} | {'yes' if met else 'NO'}")
    out(f"runs by kind: {f['runs_by_kind']}")
    t0 = min((r["created"] for r in f.get("run_detail", [])), default=0)
    for r in f.get("run_detail", []):
        rel = lambda t: "-" if t is None else f"{t - t0:.0f}"  # noqa: E731
        out(f"  run {r['run_id'][:8]} {r['kind']}: {r['days']} {r['status']}, created/started/ended at "
            f"+{rel(r['created'])}/{rel(r['start'])}/{rel(r['end'])} s; {', '.join(r['assets'])}")
    if f["failed_runs"]:
        out(f"failed runs ({len(f['failed_runs'])}): {f['failed_runs'][:10]}")
    for name, t in sorted(f["ticks"].items()):
        out(f"ticks of {name}: {t['ticks']}, failed {t['failed']}"
            + (f"; first errors: {sorted(set(t['errors']))[:3]}" if t["failed"] else ""))
    for r in f["retrains"]:
        out(f"retrain {r['run_id'][:8]} ({r['trigger']}): {r['status']}, "
            f"{'started' if r['started'] else 'NOT started, waited'} {r['start_delay_s']:.0f} s after creation")
    if f["summary_behind_examples"]:
        out(f"summary behind, first samples (time, latest_day, newest scored): {f['summary_behind_examples']}")


def run_soak(data: Path, plan: SoakPlan, log_path: Path, intervals: dict[str, str], *, log=print,
             startup_bound_s: float = 180, warmup_bound_s: float = 180, drain_bound_s: float = 600,
             poll_s: float = 2.0) -> dict:
    """With soak_env's variables set and the history prepared: start dagster dev, wait until the
    runs its start causes are done (at most `warmup_bound_s`), drop plan.drops every
    plan.cadence_s seconds while sampling, then wait until every dropped day is scored, reported
    and summarised and no run is left (at most `drain_bound_s`). Always ends dagster dev's
    group. Returns SoakProbe.figures() plus the warm-up's and the soak's seconds and runs."""
    import dagster as dg

    port = free_port()
    dev_started = time.time()
    proc = start_dagster_dev(port, log_path, intervals)
    instance = dg.DagsterInstance.get()
    try:
        wait_for(lambda: webserver_up(port), startup_bound_s, "the webserver", proc, log_path)
        probe = SoakProbe(instance, plan.use_case, dev_started)
        probe.dev_started_at = dev_started
        # The daemon's first ticks after a start (automation, retrain) may launch runs: they are
        # the start's, not the soak's, and counted apart.
        warm_deadline = time.monotonic() + warmup_bound_s
        time.sleep(min(15.0, warmup_bound_s))
        while time.monotonic() < warm_deadline and probe.active_runs():
            time.sleep(poll_s)
        warmup_runs = probe.runs(dev_started)
        log(f"warm-up: {len(warmup_runs)} run(s) in {time.time() - dev_started:.0f}s after dagster dev started"
            f" ({probe.active_runs()} still active)")
        probe.started_at = time.time()
        next_drop = time.monotonic()
        for i, day in enumerate(plan.drops, 1):
            while time.monotonic() < next_drop:
                if proc.poll() is not None:
                    raise AssertionError(f"dagster dev exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
                probe.poll()
                time.sleep(min(poll_s, max(0.0, next_drop - time.monotonic())))
            at, label_files = drop_day(data, plan, day)
            label_days = [_dt.date.fromisoformat(p.stem.rsplit("_", 1)[-1]) for p in label_files]
            probe.drop(day, at, label_days)
            next_drop += plan.cadence_s
            log(f"dropped {i}/{len(plan.drops)}: {day}" + (f" + labels of {', '.join(map(str, label_days))}"
                                                            if label_days else "")
                + (" (concept drift)" if plan.sim_config().concept_drift_from
                   and day >= plan.sim_config().concept_drift_from else "")
                + f"; scored so far {len(probe.scored_at)}, queue now {probe.instance.get_runs_count(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))}")
        last_drop = time.time()
        drain_deadline = time.monotonic() + drain_bound_s
        while time.monotonic() < drain_deadline:
            probe.poll()
            if probe.done():
                break
            if proc.poll() is not None:
                raise AssertionError(f"dagster dev exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
            time.sleep(poll_s)
        probe.poll()
        figures = probe.figures()
        figures.update({"warmup_runs": len(warmup_runs), "warmup_runs_by_kind": _kinds(warmup_runs),
                        "soak_s": time.time() - probe.started_at, "drain_s": time.time() - last_drop,
                        "drained": probe.done(), "port": port})
        return figures
    finally:
        stop_group(proc)
        instance.dispose()


def _kinds(records) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        kind = _run_kind(r.dagster_run.tags)
        out[kind] = out.get(kind, 0) + 1
    return out
