"""batch_predictions: each day's feature rows scored by the current champion, into DuckDB."""

import dagster as dg

from mlops_assets.chain import metadata as asset_metadata
from mlops_assets.chain import handoffs
from mlops_assets.chain.automation import per_day
from mlops_assets.instance.concurrency import WAREHOUSE_POOL
from mlops_assets.chain.lineage import BATCH_PREDICTIONS, CHAMPION, features_key, key
from mlops_assets.chain.partitions import daily_partitions, local_window
from mlops_assets.chain.resources import DuckDBWarehouse, MlflowResource
from mlops_assets.warehouse.sql import ident, qualified
from mlops_assets.use_cases.config import UseCase
from mlops_assets.governance import registry, rules


PIN_TAG = "mlops/model_version"
ALLOW_UNPROMOTED_TAG = "mlops/allow_unpromoted"


class ScoringConfig(dg.Config):
    model_version: str | None = None
    """Score with this registered version instead of the champion, e.g. to re-score old days
    with a fixed model. The run tag mlops/model_version does the same (UI backfills take tags).
    Only versions that were champion once are accepted, unless allow_unpromoted is set."""
    allow_unpromoted: bool = False
    """Accept a pinned version that never passed the promotion gates (the run tag
    mlops/allow_unpromoted=true does the same). Recorded on the materialization and logged."""


def pinned_version(context: dg.AssetExecutionContext, config: ScoringConfig, client, model_name: str) -> tuple[str | None, bool]:
    """The pinned version (None: score with the champion) and whether an unpromoted version was
    allowed. Raises dg.Failure naming the version and the reason when it is refused."""
    pinned = config.model_version or context.run.tags.get(PIN_TAG)
    if not pinned:
        return None, False
    pinned = str(pinned).strip()
    tag = context.run.tags.get(ALLOW_UNPROMOTED_TAG, "").strip().lower()
    if tag not in ("", "true", "false"):
        raise dg.Failure(f"run tag {ALLOW_UNPROMOTED_TAG}={tag!r}: expected true or false")
    allow = config.allow_unpromoted or tag == "true"
    tags = registry.version_tags(client, model_name, pinned)
    refusal = rules.pinned_version_refusal(model_name, pinned, tags)
    if refusal and (not allow or tags is None):  # no override makes a missing version exist
        raise dg.Failure(f"refusing to score with the pinned version {pinned}: {refusal}")
    if refusal:
        context.log.warning(f"scoring with {model_name} v{pinned} although it was never champion "
                            f"(allow_unpromoted is set on this run): {refusal.split(':')[0]}")
    else:
        context.log.info(f"scoring with the pinned version {pinned} of {model_name} (champion once)")
    return pinned, bool(refusal)


def predict_nothing(task):
    """The task's prediction for no rows (an empty day)."""
    import numpy as np

    from mlops_assets.evaluation.tasks import MULTICLASS, ClassProbabilities

    return ClassProbabilities(np.zeros((0, 0)), ()) if task.name == MULTICLASS else np.zeros(0)


def build_batch_predictions(uc: UseCase) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(uc, BATCH_PREDICTIONS),
        pool=WAREHOUSE_POOL,  # writes predictions.<use case> (mlops_assets/instance/concurrency.py)
        deps=[features_key(uc), key(uc, CHAMPION)],
        partitions_def=daily_partitions(uc),
        # A backfill of many days is one run: one model load, one replace of the whole window.
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=uc.name,
        kinds={"duckdb", "mlflow"},
        owners=asset_metadata.OWNERS,
        tags=asset_metadata.tags("scoring", uc.name),
        code_version=asset_metadata.source_code_version("chain/scoring.py", "serving/predictions.py",
                                                        "evaluation/tasks.py",
                                                        *(["serving/segments.py"] if uc.segment_column else [])),
        # Each new day is scored once; a promotion does not re-score the history (backfill for
        # that), nor do labels that arrive later and rebuild the day's features: what was served
        # stays what is measured. A changed landing file's run re-scores its days itself.
        automation_condition=per_day(ignore=dg.AssetSelection.assets(key(uc, CHAMPION)), first_time_only=True),
        description=f"The day's rows of {uc.features_table} scored by the `champion` of "
                    f"{uc.registered_model_name}, in predictions.{uc.name} ({uc.entity_column}, "
                    f"{uc.timestamp_column}, {', '.join(_stored(uc))}). Re-materializing a day replaces its "
                    f"scores; what was served (scored before the row's label arrived) is kept in served.{uc.name}, "
                    "which the performance report measures.",
    )
    def batch_predictions(context: dg.AssetExecutionContext, config: ScoringConfig,
                          warehouse: DuckDBWarehouse, mlflow: MlflowResource) -> dg.MaterializeResult:
        import pandas as pd

        from mlops_assets.evaluation.tasks import predict, task_of
        from mlops_assets.serving.predictions import (predictions_table, prediction_values, replace_window,
                                                      rescored_rows)

        start, end = local_window(context)
        client = mlflow.client()
        pinned, unpromoted = pinned_version(context, config, client, uc.registered_model_name)
        version = pinned or registry.champion_version(client, uc.registered_model_name)
        if version is None:
            raise dg.Failure(f"{uc.registered_model_name} has no champion yet: materialize "
                             f"{key(uc, CHAMPION).to_user_string()} first")

        cols = ", ".join(ident(c) for c in [uc.entity_column, uc.timestamp_column, *uc.features.all])
        ts = ident(uc.timestamp_column)
        # Filtering on the timestamp works whether or not the features asset is partitioned.
        with warehouse.connect(read_only=True) as con:
            rows = con.execute(f"SELECT {cols} FROM {qualified(uc.features_table)} WHERE {ts} >= ? AND {ts} < ? "
                               f"ORDER BY {ts}", [start, end]).df()
        task = task_of(uc)
        # A use case with a segment_column: each row by its segment's champion, else the global
        # one (a pinned version scores every row). Only the segments of the day's rows are loaded.
        segment_models: dict = {}
        if uc.segment_column and not pinned and len(rows):
            from mlops_assets.serving.segments import predict_routed, segment_values

            of_rows = segment_values(rows, uc.segment_column)
            present = set(of_rows.dropna())
            segment_models = {s: (v, mlflow.load_model(uc.registered_model_name, v)) for s, v in
                              registry.segment_champions(client, uc.registered_model_name).items() if s in present}
        # Load by version, not by alias, so the version recorded is the one that scored; the
        # global model only when some row is not in a segment with its own champion.
        needs_global = not segment_models or not of_rows.isin(list(segment_models)).all()
        model = mlflow.load_model(uc.registered_model_name, version) if needs_global else None
        if segment_models:
            values, scored_by = predict_routed(task, rows, uc.features.all, uc.segment_column, (version, model),
                                               segment_models, prediction_values)
        else:
            prediction = (predict(task, model, rows[uc.features.all]) if len(rows)
                          else predict_nothing(task))
            values, scored_by = prediction_values(task, prediction, rows.index), str(version)
        # When the model scored (UTC): a prediction counts as served when made before its label
        # arrived (serving/predictions.py), so this is taken here, not when the rows are written.
        scored_at = pd.Timestamp.now(tz="UTC").tz_localize(None)
        frame = pd.DataFrame({
            uc.entity_column: rows[uc.entity_column],
            uc.timestamp_column: pd.to_datetime(rows[uc.timestamp_column]),
            **values,
            "model_version": scored_by,
            "scored_at": pd.Series(scored_at, index=rows.index, dtype="datetime64[ns]"),
        })
        if rows.empty:
            context.log.warning(f"no rows in {uc.features_table} in [{start}, {end}): no predictions for that window")
        with warehouse.connect() as con:
            replaced = replace_window(con, uc, frame, start, end)
            rescored = rescored_rows(con, uc, start, end)
            schema = asset_metadata.duckdb_column_schema(con, predictions_table(uc))
        context.log.info(f"[{start:%Y-%m-%d}, {end:%Y-%m-%d}): scored {len(frame)} rows with {uc.registered_model_name} "
                         f"v{version} (replaced {replaced})")
        if rescored:
            context.log.info(f"{rescored} of these rows were scored after their labels arrived: re-scores, their "
                             "served predictions kept for performance monitoring")
        return dg.MaterializeResult(metadata={
            handoffs.ROW_COUNT: len(frame),
            "rows_replaced": replaced,
            # rows whose label had arrived before this scoring: not served, kept apart (served.<use case>)
            "rescored_rows": rescored,
            handoffs.SCORED_MODEL_VERSION: str(version),  # read by the drift report of the same day
            "pinned_version": bool(pinned),
            # True only when a version that never passed the gates scored (an explicit override).
            "unpromoted_version_allowed": unpromoted,
            "mean_score": round(float(frame["score"].mean()), 5) if len(frame) else 0.0,
            "table": predictions_table(uc),
            "dagster/table_name": predictions_table(uc),
            "dagster/column_schema": schema,
            "mlflow_model_version_url": dg.MetadataValue.url(mlflow.model_version_url(uc.registered_model_name, version)),
            **({"segment_versions": dg.MetadataValue.json({s: v for s, (v, _) in segment_models.items()}),
                "rows_per_version": dg.MetadataValue.json(
                    {str(k): int(n) for k, n in frame["model_version"].value_counts().sort_index().items()})}
               if uc.segment_column else {}),
        })

    return batch_predictions


def _stored(uc: UseCase) -> tuple[str, ...]:
    from mlops_assets.serving.predictions import prediction_columns

    return prediction_columns(uc)
