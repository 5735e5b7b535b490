"""The label sensor of a use case: new or changed label files -> runs of labels/<use case> for the
event days they hold. Same exactly-once rules as the landing sensor (ingest/watch.py): run keys
from the file versions, a cursor of versions, the settle time, and days already loaded from the
same versions are not requested again."""
import os

import dagster as dg

from mlops_assets.defs.ingest.sensors import INTERVAL_ENV, folder_tick
from mlops_assets.defs.labels.assets import labels_key
from mlops_assets.use_cases.config import UseCase


def build_label_sensor(uc: UseCase) -> dg.SensorDefinition:
    if uc.labels is None:
        raise ValueError(f"use case {uc.name} declares no `labels:` section")
    cfg = uc.labels

    @dg.sensor(
        name=f"{uc.name}_label_sensor",
        target=[labels_key(uc)],
        minimum_interval_seconds=int(os.environ.get(INTERVAL_ENV) or cfg.poll_seconds),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches {cfg.path()} ({cfg.pattern}) and requests {uc.name}/labels for each event day a new "
                    "or changed label file holds; the features of those days follow.",
    )
    def label_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return folder_tick(context, uc, cfg.path(), cfg.pattern, cfg.settle_seconds, labels_key(uc), "labels")

    return label_sensor
