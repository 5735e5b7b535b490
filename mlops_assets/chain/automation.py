"""Automation conditions used across the defs: the per-day chain follows its upstream day, the
training chain follows the training set, which the retrain schedule and sensor request
(chain/retrain.py: they share the in-progress and cool-down guards)."""
import dagster as dg


def per_day(ignore: dg.AssetSelection | None = None, wait_for_checks: bool = True,
            may_be_missing: dg.AssetSelection | None = None, first_time_only: bool = False,
            closed_days_only: bool = False) -> dg.AutomationCondition:
    """Like eager(), but for any day whose upstream day was updated, not only the latest one:
    a late file for last Tuesday must refresh last Tuesday. Days that never had data are not
    requested (no newly_missing): only an upstream update triggers. `ignore` names deps whose
    updates must not fan out to every day (e.g. the unpartitioned training set).
    `may_be_missing`: deps whose missing day does not hold the day back.
    `wait_for_checks`: hold until the deps' blocking checks passed; dbt models turn it off,
    since `dbt build` already runs a model's tests before the models that select from it.
    `first_time_only`: only days never materialized (scores and drift reports are not redone
    when a day's labels arrive later and rebuild its features; the event runs redo them when a
    day's data changes). `closed_days_only`: not the latest day, which is still open (partial);
    its update is remembered (since_last_handled), so the day is requested once it closes."""
    deps_missing = dg.AutomationCondition.any_deps_missing()
    if may_be_missing is not None:  # e.g. a day's labels, which arrive days later or never
        deps_missing = deps_missing.ignore(may_be_missing)
    deps_updated = dg.AutomationCondition.any_deps_updated()
    if ignore is not None:
        deps_updated = deps_updated.ignore(ignore)
    condition = (
        deps_updated.since_last_handled()
        & ~deps_missing
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    )
    if wait_for_checks:
        condition = condition & dg.AutomationCondition.all_deps_blocking_checks_passed()
    if first_time_only:
        condition = condition & dg.AutomationCondition.missing()
    if closed_days_only:
        condition = condition & ~dg.AutomationCondition.in_latest_time_window()
    return condition.with_label("per-day eager" + (", first time" if first_time_only else "")
                                + (", closed days" if closed_days_only else ""))


def after_upstream() -> dg.AutomationCondition:
    """For the steps after the training set (model, evaluation, promotion): follow it once its
    blocking checks passed."""
    return dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
