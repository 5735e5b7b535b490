"""The label sensor of a use case: new or changed label files -> one run per tick for the event
days they hold: the labels, the dbt models of those days (the features carry the label), their
performance reports where the days were scored, and the monitoring summary. Same exactly-once
rules as the landing sensor (ingest/watch.py): run keys from the file versions, a cursor of
versions, the settle time, and days already loaded from the same versions are not requested again."""
import os
from collections.abc import Sequence

import dagster as dg

from mlops_assets.chain.landing_sensor import INTERVAL_ENV, folder_tick, label_chain, label_chains
from mlops_assets.chain.labels import labels_key
from mlops_assets.use_cases.config import UseCase


def build_label_sensor(uc: UseCase, dbt_models: Sequence[dg.AssetKey] = ()) -> dg.SensorDefinition:
    """`dbt_models`: the keys of the use case's dbt models (chain/build.py passes them)."""
    if uc.labels is None:
        raise ValueError(f"use case {uc.name} declares no `labels:` section")
    cfg = uc.labels
    dbt_models = list(dbt_models)

    @dg.sensor(
        name=f"{uc.name}_label_sensor",
        target=label_chain(uc, dbt_models, scored=True),
        minimum_interval_seconds=int(os.environ.get(INTERVAL_ENV) or cfg.poll_seconds),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches {cfg.path()} ({cfg.pattern}) and launches one run for the event days the new or "
                    f"changed label files of a tick hold: {uc.name}/labels, the dbt models of those days, their "
                    "performance reports (days already scored) and the monitoring summary.",
    )
    def label_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return folder_tick(context, uc, cfg.path(), cfg.pattern, cfg.settle_seconds, labels_key(uc), "labels",
                           selection=lambda days, rows: label_chains(context.instance, uc, dbt_models, days))

    return label_sensor
