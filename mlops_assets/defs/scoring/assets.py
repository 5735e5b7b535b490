"""batch_predictions: each day's feature rows scored by the current champion, into DuckDB."""

import dagster as dg

from mlops_assets.automation import per_day
from mlops_assets.lineage import BATCH_PREDICTIONS, CHAMPION, features_key, key
from mlops_assets.partitions import daily_partitions, utc_window
from mlops_assets.resources import DuckDBWarehouse
from mlops_assets.use_cases.config import UseCase



PIN_TAG = "mlops/model_version"


class ScoringConfig(dg.Config):
    model_version: str | None = None
    """Score with this registered version instead of the champion, e.g. to re-score old days
    with a fixed model. The run tag mlops/model_version does the same (UI backfills take tags)."""


def build_batch_predictions(uc: UseCase) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(uc, BATCH_PREDICTIONS),
        deps=[features_key(uc), key(uc, CHAMPION)],
        partitions_def=daily_partitions(uc),
        # A backfill of many days is one run: one model load, one replace of the whole window.
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=uc.name,
        kinds={"duckdb", "mlflow"},
        # Each new day is scored; a promotion does not re-score the history (backfill for that).
        automation_condition=per_day(ignore=dg.AssetSelection.assets(key(uc, CHAMPION))),
        description=f"The day's rows of {uc.features_table} scored by the `champion` of "
                    f"{uc.registered_model_name}, in predictions.{uc.name} ({uc.entity_column}, "
                    f"{uc.timestamp_column}, score, model_version, scored_at). Re-materializing a day replaces it.",
    )
    def batch_predictions(context: dg.AssetExecutionContext, config: ScoringConfig,
                          warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        import mlflow
        import pandas as pd

        from mlops_assets.governance import registry
        from mlops_assets.serving.predictions import predictions_table, replace_window

        start, end = utc_window(context)
        client = registry.client()
        pinned = config.model_version or context.run.tags.get(PIN_TAG)
        version = pinned or registry.champion_version(client, uc.registered_model_name)
        if pinned:
            context.log.info(f"scoring with the pinned version {pinned} of {uc.registered_model_name}")
        if version is None:
            raise dg.Failure(f"{uc.registered_model_name} has no champion yet: materialize "
                             f"{key(uc, CHAMPION).to_user_string()} first")
        # Load by version, not by alias, so the version recorded is the one that scored.
        model = mlflow.sklearn.load_model(f"models:/{uc.registered_model_name}/{version}")

        cols = ", ".join(f'"{c}"' for c in [uc.entity_column, uc.timestamp_column, *uc.features.all])
        # Filtering on the timestamp works whether or not the features asset is partitioned.
        with warehouse.connect(read_only=True) as con:
            rows = con.execute(f'SELECT {cols} FROM {uc.features_table} WHERE "{uc.timestamp_column}" >= ? '
                               f'AND "{uc.timestamp_column}" < ? ORDER BY "{uc.timestamp_column}"', [start, end]).df()
        scores = model.predict_proba(rows[uc.features.all])[:, 1] if len(rows) else []
        frame = pd.DataFrame({
            uc.entity_column: rows[uc.entity_column],
            uc.timestamp_column: pd.to_datetime(rows[uc.timestamp_column]),
            "score": pd.Series(scores, dtype="float64", index=rows.index),
            "model_version": str(version),
            "scored_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
        })
        if rows.empty:
            context.log.warning(f"no rows in {uc.features_table} in [{start}, {end}): no predictions for that window")
        with warehouse.connect() as con:
            replaced = replace_window(con, uc, frame, start, end)
        context.log.info(f"[{start:%Y-%m-%d}, {end:%Y-%m-%d}): scored {len(frame)} rows with {uc.registered_model_name} "
                         f"v{version} (replaced {replaced})")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": len(frame),
            "rows_replaced": replaced,
            "model_version": str(version),
            "pinned_version": bool(pinned),
            "mean_score": round(float(frame["score"].mean()), 5) if len(frame) else 0.0,
            "table": predictions_table(uc),
            "mlflow_model_version_url": dg.MetadataValue.url(registry.model_version_url(uc.registered_model_name, version)),
        })

    return batch_predictions
