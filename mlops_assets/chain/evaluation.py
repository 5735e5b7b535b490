"""model_evaluation: the candidate and the current champion scored on the same, most recent
holdout, next to a trivial baseline; blocking gates as asset checks (minimum quality, lift over
the baseline, no regression against the champion overall and per slice, serving budget)."""

import time

import dagster as dg

from mlops_assets.chain import metadata as asset_metadata
from mlops_assets.chain import handoffs
from mlops_assets.chain.automation import after_upstream
from mlops_assets.chain.training import code_version
from mlops_assets.evaluation import gates
from mlops_assets.chain.lineage import CANDIDATE, EVALUATION, TRAINING_SET, key, latest_metadata
from mlops_assets.chain.resources import DuckDBWarehouse, MlflowResource
from mlops_assets.training import data
from mlops_assets.use_cases.config import UseCase
from mlops_assets import settings
from mlops_assets.governance import registry

EVALUATION_SOURCES = ("evaluation/gates.py", "evaluation/metrics.py", "evaluation/report.py",
                      "chain/evaluation.py")
TASK_EVALUATION_SOURCES = (*EVALUATION_SOURCES, "evaluation/tasks.py")
LATENCY_REPEATS = 7


def build_model_evaluation(uc: UseCase) -> dg.AssetsDefinition:
    asset_key = key(uc, EVALUATION)
    t = uc.thresholds
    descriptions = gates.task_gate_descriptions(uc.task, uc.primary.metric)
    if uc.task != "binary" or uc.primary.metric != "roc_auc":  # binary by ROC AUC: today's gates below
        return _build_task_evaluation(uc, asset_key, descriptions)

    @dg.asset(
        key=asset_key,
        deps=[key(uc, CANDIDATE), key(uc, TRAINING_SET)],
        group_name=uc.name,
        kinds={"mlflow", "scikitlearn"},
        owners=asset_metadata.OWNERS,
        tags=asset_metadata.tags("evaluation", uc.name),
        code_version=code_version(uc, EVALUATION_SOURCES, uc.thresholds, uc.slice_columns),
        automation_condition=after_upstream(),
        check_specs=[dg.AssetCheckSpec(name, asset=asset_key, blocking=True,
                                       description=descriptions[name]) for name in gates.ALL_GATES],
        description=f"Candidate vs the `champion` of {uc.registered_model_name} on the same holdout: ROC AUC, F1, "
                    "log loss, Brier, calibration error, per slice too, plus a prior-only baseline, batch latency "
                    "and model size. Logged as MLflow metrics and JSON artifacts on the candidate's run.",
    )
    def model_evaluation(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, mlflow: MlflowResource):
        from mlops_assets.evaluation import report as rep
        from mlops_assets.evaluation.report import evaluation_report, slice_metrics
        from mlops_assets.evaluation.tasks import BINARY, baseline_prediction, predict

        candidate_meta = latest_metadata(context, key(uc, CANDIDATE))
        candidate = handoffs.read_candidate(candidate_meta, key(uc, CANDIDATE).to_user_string())
        choice = _values(candidate_meta).get("candidates")  # every candidate's figures, with model.candidates
        candidate_version = candidate.version
        with warehouse.connect(read_only=True) as con:
            train = data.read_split(con, uc, "train")
            holdout = data.read_split(con, uc, "holdout")
        model = mlflow.load_model(uc.registered_model_name, candidate_version)
        X, y = holdout[uc.features.all], holdout[uc.target_column].astype(int).to_numpy()
        prob = predict(BINARY, model, X)  # P(1): predict_proba's column of class 1, or a rule's own
        # The trivial baseline: the training positive rate for every row (the class prior).
        base_prob = baseline_prediction(BINARY, train[uc.target_column].astype(int).to_numpy(), len(X))
        report = evaluation_report(y, prob, base_prob,
                                   {c: holdout[c].to_numpy() for c in uc.slice_columns})
        report["candidate"] = {"model_uri": candidate.model_uri, "mlflow_run_id": candidate.run_id,
                               "version": candidate_version}
        if choice:
            report["candidates"] = choice

        # The champion is scored on exactly the same rows. A champion that cannot be loaded or
        # scored fails the comparison gates (with the error) rather than waving the candidate through.
        client = mlflow.client()
        registry_uri = mlflow.display_uri()
        champion_version = registry.champion_version(client, uc.registered_model_name)
        champion_metrics = champion_slices = champion_error = None
        recent: dict[str, dict] = {}
        if champion_version is None:
            # Said loudly: an empty registry is also what a lost or mis-pointed MLflow store looks like.
            comparison = f"first model: no champion in registry {registry_uri}"
            context.log.warning(f"{comparison} for {uc.registered_model_name}: candidate v{candidate_version} is "
                                "judged on absolute quality alone. If a champion existed, check MLFLOW_TRACKING_URI.")
        else:
            comparison = f"vs champion v{champion_version} in registry {registry_uri}"
            try:
                champ = mlflow.load_model(uc.registered_model_name, champion_version)
                champ_prob = predict(BINARY, champ, X)
                champion_metrics = evaluation_report(y, champ_prob, base_prob, {})["model"]
                champion_slices = {c: slice_metrics(y, champ_prob, holdout[c].to_numpy(), t.min_slice_rows)
                                   for c in uc.slice_columns}
                # The last few champions on the same rows too: bounds the slide across promotions.
                for version in registry.recent_champions(client, uc.registered_model_name, gates.RECENT_CHAMPIONS):
                    if version in (champion_version, candidate_version):
                        continue
                    past = mlflow.load_model(uc.registered_model_name, version)
                    recent[version] = evaluation_report(y, predict(BINARY, past, X),
                                                        base_prob, {})["model"]
            except Exception as exc:  # noqa: BLE001 - reported through the gates, see above
                champion_error = (f"champion v{champion_version} or a recent champion could not be scored on the "
                                  f"holdout: {exc!r}")
                context.log.error(champion_error)
        candidate_slices = {c: slice_metrics(y, prob, holdout[c].to_numpy(), t.min_slice_rows) for c in uc.slice_columns}
        metric_rows = gates.compare_metrics(report["model"], champion_metrics)
        slice_rows = gates.compare_slices(candidate_slices, champion_slices, t.min_slice_rows)

        latency_ms, latency_rows = _batch_latency_ms(lambda b: predict(BINARY, model, b), X, t.latency_batch_rows)
        size_mb = registry.model_size_mb(candidate.model_uri)

        m = report["model"]
        results = [gates.minimum_quality(m, t), gates.beats_baseline(m, report["baseline"], t)]
        if champion_error:
            results += [gates.GateResult(gates.NO_REGRESSION, False, champion_error),
                        gates.GateResult(gates.NO_SLICE_REGRESSION, False, champion_error)]
        else:
            results += [gates.no_regression(m, champion_metrics, champion_version, t, recent),
                        gates.no_slice_regression(slice_rows, champion_version is not None, t)]
        results += [gates.latency_within_budget(latency_ms, latency_rows, t), gates.size_within_budget(size_mb, t)]
        verdicts = {g.name: {"passed": g.passed, "description": g.description} for g in results}

        run_id = candidate.run_id
        _log_evaluation(client, run_id, m, report, latency_ms, size_mb, {
            "candidate_version": candidate_version, "champion_version": champion_version,
            "champion_error": champion_error, "comparison": comparison, "recent_champions": recent,
            "metrics": metric_rows, "slices": slice_rows, "gates": verdicts})
        from mlops_assets.evaluation.plot_artifacts import log_evaluation_plots

        plots = log_evaluation_plots(client, run_id, uc.registered_model_name, candidate_version, model, X, y, prob,
                                     base_prob,
                                     settings.reports_dir() / uc.name / "evaluation" / f"v{candidate_version}",
                                     mlflow.ui_url)

        context.log.info(f"candidate v{candidate_version}: holdout ROC AUC {m['roc_auc']:.4f} "
                         f"(champion {_fmt(champion_metrics, 'roc_auc')}, baseline {report['baseline']['roc_auc']:.4f}); "
                         f"gates failed: {[g.name for g in results if not g.passed] or 'none'}")
        exp = candidate.experiment_id
        evaluation = handoffs.Evaluation(candidate_version, champion_version, comparison, m["roc_auc"], m["log_loss"])
        yield dg.MaterializeResult(
            metadata={
                **{f"holdout_{k}": round(v, 5) for k, v in m.items()},
                **{f"baseline_{k}": round(v, 5) for k, v in report["baseline"].items()},
                # candidate_version, champion_version, comparison: read by the promotion step.
                **handoffs.evaluation_metadata(evaluation),
                "roc_auc_lift": round(report["lift"]["roc_auc"], 5),
                "recent_champions_compared": dg.MetadataValue.json(
                    {v: {k: round(recent[v][k], 5) for k in ("roc_auc", "log_loss")} for v in recent}),
                "vs_champion": rep.metadata_table(rep.METRICS_VS_CHAMPION_COLUMNS, metric_rows),
                "slices_vs_champion": rep.metadata_table(rep.SLICES_VS_CHAMPION_COLUMNS, slice_rows),
                "metrics_per_slice": rep.metadata_table(rep.SLICE_METRICS_COLUMNS, [
                    {"column": c, **r} for c, rows in candidate_slices.items() for r in rows]),
                "calibration": rep.metadata_table(rep.CALIBRATION_COLUMNS, report["calibration"]),
                **_gates_metadata(results, verdicts),
                **_candidates_metadata(choice, "roc_auc"),
                **_segment_evaluation(context, uc, mlflow, client, candidate_meta, train, holdout),
                **_run_metadata(uc, mlflow, exp, run_id, candidate, candidate_version, latency_ms, size_mb),
                **plots,  # ROC, PR, calibration, confusion matrix, feature importance (PNG in MLflow)
            },
            check_results=_check_results(results),
        )

    return model_evaluation


def _log_evaluation(client, run_id: str, holdout: dict, report: dict, latency_ms: float, size_mb: float,
                    comparison: dict) -> None:
    """The candidate's holdout, baseline and budget figures and the two evaluation files, on its
    MLflow run (the same for every task)."""
    for name, value in holdout.items():
        client.log_metric(run_id, f"holdout_{name}", value)
    for name, value in report["baseline"].items():
        client.log_metric(run_id, f"baseline_{name}", value)
    client.log_metric(run_id, "batch_latency_ms", latency_ms)
    client.log_metric(run_id, "model_size_mb", size_mb)
    client.log_dict(run_id, report, "evaluation/report.json")
    client.log_dict(run_id, comparison, "evaluation/champion_challenger.json")


def _gates_metadata(results, verdicts) -> dict:
    from mlops_assets.evaluation import report as rep

    return {"gates": rep.metadata_table(rep.GATES_COLUMNS, [
                {"gate": g.name, "passed": g.passed, "description": g.description} for g in results]),
            "gate_verdicts": dg.MetadataValue.json(verdicts)}


def _check_results(results) -> list[dg.AssetCheckResult]:
    return [dg.AssetCheckResult(check_name=g.name, passed=bool(g.passed), description=g.description,
                                metadata={k: float(v) for k, v in g.metadata.items()}) for g in results]


def _run_metadata(uc: UseCase, mlflow, exp, run_id: str, candidate, candidate_version, latency_ms: float,
                  size_mb: float) -> dict:
    """The serving budget's figures and the links into MLflow, the same for every task."""
    return {
        "batch_latency_ms": round(latency_ms, 2),
        "model_size_mb": round(size_mb, 3),
        handoffs.CANDIDATE_RUN_ID: run_id,
        handoffs.CANDIDATE_MODEL_URI: candidate.model_uri,
        "mlflow_run_url": dg.MetadataValue.url(mlflow.run_url(exp, run_id)),
        "mlflow_model_version_url": dg.MetadataValue.url(
            mlflow.model_version_url(uc.registered_model_name, candidate_version)),
        "report_artifact_url": dg.MetadataValue.url(mlflow.artifact_url(exp, run_id, "evaluation/report.json")),
        "comparison_artifact_url": dg.MetadataValue.url(
            mlflow.artifact_url(exp, run_id, "evaluation/champion_challenger.json")),
    }


def _batch_latency_ms(predict, X, rows: int) -> tuple[float, int]:
    """Best wall time of ``predict`` on ``rows`` holdout rows (resampled when the holdout is
    smaller) over a few calls after a warm-up. The best, not the median: other processes on the
    machine only ever add time, and the gate is about the model's own cost."""
    import numpy as np

    batch = X.sample(rows, replace=len(X) < rows, random_state=0)
    predict(batch)
    timings = []
    for _ in range(LATENCY_REPEATS):
        started = time.perf_counter()
        predict(batch)
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.min(timings)), rows


def _fmt(metrics: dict | None, name: str) -> str:
    return "none" if metrics is None else f"{metrics[name]:.4f}"


def _build_task_evaluation(uc: UseCase, asset_key: dg.AssetKey, descriptions: dict[str, str]) -> dg.AssetsDefinition:
    """model_evaluation of a multiclass or regression use case (or a binary one judged by another
    metric than ROC AUC): the same six gates, judged on the
    task's primary metric (evaluation/tasks.py) against the trivial baseline of the task."""
    t, bounds = uc.thresholds, uc.primary

    @dg.asset(
        key=asset_key,
        deps=[key(uc, CANDIDATE), key(uc, TRAINING_SET)],
        group_name=uc.name,
        kinds={"mlflow", "scikitlearn"},
        owners=asset_metadata.OWNERS,
        tags=asset_metadata.tags("evaluation", uc.name),
        code_version=code_version(uc, TASK_EVALUATION_SOURCES, uc.thresholds, uc.slice_columns, uc.task),
        automation_condition=after_upstream(),
        check_specs=[dg.AssetCheckSpec(name, asset=asset_key, blocking=True, description=descriptions[name])
                     for name in gates.ALL_GATES],
        description=f"Candidate vs the `champion` of {uc.registered_model_name} on the same holdout, judged by "
                    f"{bounds.metric} ({uc.task}), per slice too, next to the trivial baseline, with batch latency "
                    "and model size. Logged as MLflow metrics and JSON artifacts on the candidate's run.",
    )
    def model_evaluation(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, mlflow: MlflowResource):
        from mlops_assets.evaluation import report as rep
        from mlops_assets.evaluation import tasks

        task = tasks.task_of(uc)
        candidate_meta = latest_metadata(context, key(uc, CANDIDATE))
        candidate = handoffs.read_candidate(candidate_meta, key(uc, CANDIDATE).to_user_string())
        candidate_version = candidate.version
        with warehouse.connect(read_only=True) as con:
            train = data.read_split(con, uc, "train")
            holdout = data.read_split(con, uc, "holdout")
        try:
            y_train = tasks.check_target(task, train[uc.target_column], uc.target_column)
            y = tasks.check_target(task, holdout[uc.target_column], uc.target_column)
        except ValueError as exc:
            raise dg.Failure(f"cannot evaluate {uc.name}: {exc}") from exc
        holdout = holdout.loc[y.index]
        y = y.to_numpy()
        X = holdout[uc.features.all]
        model = mlflow.load_model(uc.registered_model_name, candidate_version)
        pred = tasks.predict(task, model, X)
        base_pred = tasks.baseline_prediction(task, y_train.to_numpy(), len(X))
        report = rep.task_report(task, y, pred, base_pred)
        report["candidate"] = {"model_uri": candidate.model_uri, "mlflow_run_id": candidate.run_id,
                               "version": candidate_version}
        choice = _values(candidate_meta).get("candidates")
        if choice:
            report["candidates"] = choice

        def slices_of(prediction) -> dict[str, list[dict]]:
            return {c: tasks.slice_metrics(task, y, prediction, holdout[c].to_numpy(), t.min_slice_rows)
                    for c in uc.slice_columns}

        client = mlflow.client()
        registry_uri = mlflow.display_uri()
        champion_version = registry.champion_version(client, uc.registered_model_name)
        champion_metrics = champion_slices = champion_error = None
        recent: dict[str, dict] = {}
        if champion_version is None:
            comparison = f"first model: no champion in registry {registry_uri}"
            context.log.warning(f"{comparison} for {uc.registered_model_name}: candidate v{candidate_version} is "
                                "judged on absolute quality alone. If a champion existed, check MLFLOW_TRACKING_URI.")
        else:
            comparison = f"vs champion v{champion_version} in registry {registry_uri}"
            try:
                champ_pred = tasks.predict(task, mlflow.load_model(uc.registered_model_name, champion_version), X)
                champion_metrics = tasks.task_metrics(task, y, champ_pred)
                champion_slices = slices_of(champ_pred)
                for version in registry.recent_champions(client, uc.registered_model_name, gates.RECENT_CHAMPIONS):
                    if version in (champion_version, candidate_version):
                        continue
                    past = mlflow.load_model(uc.registered_model_name, version)
                    recent[version] = tasks.task_metrics(task, y, tasks.predict(task, past, X))
            except Exception as exc:  # noqa: BLE001 - reported through the gates
                champion_error = (f"champion v{champion_version} or a recent champion could not be scored on the "
                                  f"holdout: {exc!r}")
                context.log.error(champion_error)
        candidate_slices = slices_of(pred)
        slice_rows = tasks.compare_slices(candidate_slices, champion_slices)
        metric_rows = gates.compare_task_metrics(task, report["model"], champion_metrics)
        latency_ms, latency_rows = _batch_latency_ms(lambda b: tasks.predict(task, model, b), X, t.latency_batch_rows)
        size_mb = registry.model_size_mb(candidate.model_uri)

        m = report["model"]
        quality = tasks.primary_metric_gates(
            task, m, report["baseline"], None if champion_error else champion_metrics, champion_version,
            bound=bounds.bound, min_lift=bounds.min_lift, max_drop=bounds.max_drop, slices=slice_rows,
            max_slice_drop=bounds.max_slice_drop, recent=recent)
        if champion_error:
            quality[2:] = [gates.GateResult(gates.NO_REGRESSION, False, champion_error),
                           gates.GateResult(gates.NO_SLICE_REGRESSION, False, champion_error)]
        results = [*quality, gates.latency_within_budget(latency_ms, latency_rows, t),
                   gates.size_within_budget(size_mb, t)]
        verdicts = {g.name: {"passed": g.passed, "description": g.description} for g in results}

        run_id = candidate.run_id
        _log_evaluation(client, run_id, m, report, latency_ms, size_mb, {
            "candidate_version": candidate_version, "champion_version": champion_version,
            "champion_error": champion_error, "comparison": comparison, "recent_champions": recent,
            "metrics": metric_rows, "slices": slice_rows, "gates": verdicts})
        plots = _task_plots(context, uc, task, client, run_id, candidate_version, model, X, y, pred, base_pred,
                            mlflow.ui_url)

        primary = tasks.primary_value(task, m)
        context.log.info(f"candidate v{candidate_version}: holdout {task.label()} {primary:.4f} (champion "
                         f"{'none' if champion_metrics is None else f'{tasks.primary_value(task, champion_metrics):.4f}'}"
                         f", {task.baseline_name} baseline {tasks.primary_value(task, report['baseline']):.4f}); "
                         f"gates failed: {[g.name for g in results if not g.passed] or 'none'}")
        exp = candidate.experiment_id
        evaluation = handoffs.Evaluation(candidate_version, champion_version, comparison, None, None,
                                         task.primary_metric, primary)
        yield dg.MaterializeResult(
            metadata={
                **{f"holdout_{k}": round(v, 5) for k, v in m.items()},
                **{f"baseline_{k}": round(v, 5) for k, v in report["baseline"].items()},
                **handoffs.evaluation_metadata(evaluation),
                "task": uc.task,
                f"{task.primary_metric}_lift": round(report["lift"][task.primary_metric], 5),
                "recent_champions_compared": dg.MetadataValue.json(
                    {v: round(tasks.primary_value(task, recent[v]), 5) for v in recent}),
                "vs_champion": rep.metadata_table(rep.METRICS_VS_CHAMPION_COLUMNS, metric_rows),
                "slices_vs_champion": rep.metadata_table(rep.TASK_SLICES_VS_CHAMPION_COLUMNS, slice_rows),
                "metrics_per_slice": rep.metadata_table(rep.TASK_SLICE_METRICS_COLUMNS, [
                    {"column": c, **r} for c, rows in candidate_slices.items() for r in rows]),
                **_gates_metadata(results, verdicts),
                **_candidates_metadata(choice, task.primary_metric),
                **_segment_evaluation(context, uc, mlflow, client, candidate_meta, train, holdout),
                **_run_metadata(uc, mlflow, exp, run_id, candidate, candidate_version, latency_ms, size_mb),
                **plots,
            },
            check_results=_check_results(results),
        )

    return model_evaluation


def _segment_evaluation(context, uc: UseCase, mlflow, client, candidate_meta, train, holdout) -> dict:
    """Each segment's candidate (a use case with a segment_column) gated on its own segment's
    holdout rows, on the task's primary metric: minimum quality, lift over the baseline learnt
    from the segment's training rows, and no regression against the model serving the segment
    now (its segment champion, else the global champion). The verdicts are metadata read by
    champion_model, which moves each segment's alias independently; the global model's gates
    above are unchanged. Each segment model's holdout figures are logged on its own MLflow run
    (the performance monitoring judges a segment against them)."""
    segments = _values(candidate_meta).get("segment_candidates")
    if not uc.segment_column or segments is None:
        return {}
    from mlops_assets.evaluation import report as rep
    from mlops_assets.evaluation import tasks
    from mlops_assets.serving.segments import segment_values

    task, bounds, name, target = tasks.task_of(uc), uc.primary, uc.registered_model_name, uc.target_column
    champions = registry.segment_champions(client, name)
    global_champion = registry.champion_version(client, name)
    train_values, holdout_values = segment_values(train, uc.segment_column), segment_values(holdout, uc.segment_column)
    verdicts: dict[str, dict] = {}
    for segment, candidate in sorted(segments.items()):
        version = candidate["version"]
        bar = champions.get(segment)
        against = f"segment champion v{bar}" if bar else None
        if bar is None and global_champion is not None:
            bar, against = global_champion, f"global champion v{global_champion}"
        figures: dict = {}
        champion_figures = None
        try:
            part = holdout[holdout_values == segment]
            y = tasks.check_target(task, part[target], target)
            X = part.loc[y.index, uc.features.all]
            y_train = tasks.check_target(task, train[train_values == segment][target], target)
            pred = tasks.predict(task, mlflow.load_model(name, version), X)
            report = rep.task_report(task, y.to_numpy(), pred,
                                     tasks.baseline_prediction(task, y_train.to_numpy(), len(X)))
            figures = report["model"]
            if bar is not None:
                champion_figures = tasks.task_metrics(task, y.to_numpy(),
                                                      tasks.predict(task, mlflow.load_model(name, bar), X))
            results = tasks.primary_metric_gates(task, figures, report["baseline"], champion_figures, bar,
                                                 bound=bounds.bound, min_lift=bounds.min_lift,
                                                 max_drop=bounds.max_drop)[:3]  # no slices within a segment
        except Exception as exc:  # noqa: BLE001 - a segment that cannot be judged keeps its champion
            results = [gates.GateResult("segment_evaluation", False, f"cannot evaluate segment {segment!r}: {exc}")]
        for metric, value in figures.items():
            client.log_metric(candidate["run_id"], f"holdout_{metric}", value)
        passed = all(g.passed for g in results)
        verdicts[segment] = {
            "candidate_version": version, "compared_with": against or "none (no champion yet)",
            "holdout_rows": int((holdout_values == segment).sum()), "metric": task.primary_metric,
            "value": figures.get(task.primary_metric),
            "champion_value": None if champion_figures is None else champion_figures.get(task.primary_metric),
            "passed": passed, "quality": {k: float(v) for k, v in figures.items()},
            "gates": {g.name: {"passed": bool(g.passed), "description": g.description} for g in results}}
        context.log.info(f"segment {segment!r} v{version} vs {against or 'nothing'}: "
                         + ("passed" if passed else "failed: " + "; ".join(
                             g.description for g in results if not g.passed)))

    def fmt(v):
        return "-" if v is None else f"{v:.4f}"

    rows = [f"| {s} | v{v['candidate_version']} | {v['compared_with']} | {v['holdout_rows']} | {fmt(v['value'])} | "
            f"{fmt(v['champion_value'])} | {v['passed']} | "
            + "; ".join(g["description"] for g in v["gates"].values() if not g["passed"]).replace("|", "/") + " |"
            for s, v in verdicts.items()]
    table = "\n".join([f"| segment | candidate | compared with | holdout_rows | {task.primary_metric} | "
                       f"champion_{task.primary_metric} | passed | failed gates |", "|---|---|---|---|---|---|---|---|",
                       *rows])
    return {"segment_gates": dg.MetadataValue.md(table), "segment_verdicts": dg.MetadataValue.json(verdicts)}


def _values(metadata) -> dict:
    return {k: getattr(v, "value", v) for k, v in (metadata or {}).items()}


def _candidates_metadata(choice, primary: str) -> dict:
    """Every candidate's validation figures, as a table and as JSON (the full set)."""
    if not choice:
        return {}
    from mlops_assets.evaluation import report as rep

    rows = [{"name": c["name"], "model": c["model"], "primary": c.get(f"validation_{primary}"),
             "fit_seconds": c["fit_seconds"], "chosen": bool(c.get("chosen"))} for c in choice]
    return {"candidates": rep.metadata_table(rep.CANDIDATES_COLUMNS, rows),
            "candidate_figures": dg.MetadataValue.json(choice)}


def _task_plots(context, uc: UseCase, task, client, run_id: str, version: str, model, X, y, pred, base_pred,
                ui_url: str) -> dict:
    """The task's evaluation plots (evaluation/plot_artifacts.py), when it draws that task."""
    import inspect

    from mlops_assets.evaluation.plot_artifacts import log_evaluation_plots

    if "task" not in inspect.signature(log_evaluation_plots).parameters:
        context.log.info(f"no evaluation plots for a {task.name} task yet")
        return {}
    return log_evaluation_plots(client, run_id, uc.registered_model_name, version, model, X, y, pred, base_pred,
                                settings.reports_dir() / uc.name / "evaluation" / f"v{version}", ui_url, task=task)
