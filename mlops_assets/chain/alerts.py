"""Alert sensors, for every use case of the code location at once (an alert names its use case
from the asset key): Dagster's run-failure sensor, and a sensor reading failed asset check
evaluations (drift, performance, gates, dbt tests) from the instance's event log with a cursor.
Dagster OSS has no sensor on check evaluations, hence the event-log reader. Both only report:
they never request runs, and a webhook that is down does not fail their tick.
"""
from __future__ import annotations

import json
import os

import dagster as dg

from mlops_assets.alerts.dedup import to_announce
from mlops_assets.alerts.sink import AlertSink, alert_sink_from_env, check_alert, run_failure_alert
from mlops_assets.chain import handoffs

ALERT_RESOURCE = "alerts"
CHECK_SENSOR, RUN_FAILURE_SENSOR = "alert_on_failed_checks", "alert_on_run_failure"
EVENTS_PER_TICK = 500


def _interval_s() -> int:
    return int(os.environ.get("MLOPS_ALERT_SENSOR_INTERVAL_S") or 30)


def _read_cursor(cursor: str) -> dict:
    """{"after": last event id read, "last": {asset|check|day: passed}}; a bare event id is the
    cursor older code wrote."""
    value = json.loads(cursor)
    return {"after": int(value), "last": {}} if isinstance(value, int) else value


def build_check_alert_sensor() -> dg.SensorDefinition:
    @dg.sensor(name=CHECK_SENSOR, minimum_interval_seconds=_interval_s(), default_status=dg.DefaultSensorStatus.RUNNING,
               description="Sends an alert (alert file, webhook if set) for failed asset checks: drift, "
                           "performance, promotion gates, dbt tests. A day's check is alerted once, and again only "
                           "after its outcome changed. Starts from the events after its first tick.")
    def alert_on_failed_checks(context: dg.SensorEvaluationContext, alerts: AlertSink):
        storage = context.instance.event_log_storage
        if context.cursor is None:
            # The first tick marks where alerting starts: history before it is not re-announced.
            start = storage.get_maximum_record_id() or 0
            context.update_cursor(json.dumps({"after": start, "last": {}}))
            return dg.SkipReason(f"alerting on check evaluations after event {start}")
        state = _read_cursor(context.cursor)
        after, last = state["after"], state["last"]
        events = storage.get_logs_for_all_runs_by_log_id(
            after_cursor=after, dagster_event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=EVENTS_PER_TICK)
        completed = []
        for storage_id, entry in sorted(events.items()):
            after = max(after, storage_id)
            evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
            # Only completed evaluations: planned ones (a run in flight) are ASSET_CHECK_EVALUATION_PLANNED
            # events, which the filter above leaves out; the type check keeps it so. A range run's
            # roll-up is left out too: each of its days has its own evaluation.
            if isinstance(evaluation, dg.AssetCheckEvaluation) and handoffs.RANGE_ROLLUP not in (evaluation.metadata or {}):
                completed.append((entry, evaluation))
        announce = to_announce(last, [(e.asset_key.to_user_string(), e.check_name, e.partition, e.passed)
                                      for _, e in completed])
        failed, repeated = [], sum(not e.passed for _, e in completed) - len(announce)
        for entry, evaluation in (completed[i] for i in announce):
            run = context.instance.get_run_by_id(entry.run_id) if entry.run_id else None
            failed.append(check_alert(evaluation, entry.run_id, alerts.dagster_ui_url(),
                                      job=run.job_name if run else None, run_tags=run.tags if run else None))
        deliveries = alerts.send(failed, log=context.log.warning)
        context.update_cursor(json.dumps({"after": after, "last": last}))
        note = f" ({repeated} failure(s) of a day already alerted, not repeated)" if repeated else ""
        if not failed:
            return dg.SkipReason(f"no new failed checks in {len(events)} new check evaluations{note}")
        undelivered = sum(not d.delivered for d in deliveries)
        return dg.SkipReason(f"{len(failed)} failed check(s) alerted to {alerts.alert_file()}"
                             + (f"; webhook failed for {undelivered}" if undelivered else "") + note)

    return alert_on_failed_checks


def build_run_failure_alert_sensor() -> dg.SensorDefinition:
    @dg.run_failure_sensor(name=RUN_FAILURE_SENSOR, minimum_interval_seconds=_interval_s(),
                           default_status=dg.DefaultSensorStatus.RUNNING,
                           description="Sends an alert (alert file, webhook if set) for every failed run, one per "
                                       "use case whose assets it was materializing.")
    def alert_on_run_failure(context: dg.RunFailureSensorContext, alerts: AlertSink):
        run = context.dagster_run
        steps = [e.step_key for e in context.get_step_failure_events() if e.step_key]
        # The assets the run set out to materialize (a run of a whole job has no asset selection).
        planned = context.instance.event_log_storage.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=10_000).records
        keys = {r.event_log_entry.dagster_event.asset_key for r in planned if r.event_log_entry.dagster_event}
        message = context.failure_event.message or "run failed"
        sent = run_failure_alert(run, message, alerts.dagster_ui_url(), steps, asset_keys=keys)
        alerts.send(sent, log=context.log.warning)

    return alert_on_run_failure


def build_alert_defs() -> dg.Definitions:
    """The two sensors and the alert sink resource (from MLOPS_ALERT_* variables)."""
    return dg.Definitions(sensors=[build_check_alert_sensor(), build_run_failure_alert_sensor()],
                          resources={ALERT_RESOURCE: alert_sink_from_env()})
