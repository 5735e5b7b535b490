"""What a label sensor's run builds per day: the dbt models only for days whose raw rows loaded.

On a fresh instance whose label and landing folders both hold files, the two sensors' first runs
start together; a label run that built the dbt models of a day not loaded yet failed in dbt
("Table with name churn does not exist"), seen live under `mlops-assets ui`."""
import datetime as dt

import dagster as dg

from mlops_assets.chain.landing_sensor import label_chains
from mlops_assets.chain.lineage import LABELS, RAW, key

DAYS = [dt.date(2026, 3, 1), dt.date(2026, 3, 2)]


def test_days_not_loaded_get_their_labels_only_and_loaded_days_their_models_too(churn):
    dbt_models = [dg.AssetKey(["churn", "stg_churn"]), dg.AssetKey(["churn", "features_churn"])]
    later = dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc)
    with dg.DagsterInstance.ephemeral() as instance:
        chains = label_chains(instance, churn, dbt_models, DAYS, now=later)
        assert chains == {d: [key(churn, LABELS)] for d in DAYS}

        instance.report_runless_asset_event(dg.AssetMaterialization(key(churn, RAW), partition=DAYS[0].isoformat()))
        chains = label_chains(instance, churn, dbt_models, DAYS, now=later)
        assert chains[DAYS[0]] == [key(churn, LABELS), *dbt_models]
        assert chains[DAYS[1]] == [key(churn, LABELS)]
