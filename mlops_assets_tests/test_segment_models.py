"""A model per segment, on real DuckDB, MLflow and Dagster materializations: a regression whose
target follows x1 upwards in the north and downwards in the south (so no single model fits both)
gets a model per segment plus a global one; each segment's champion has its own alias; scoring
and the HTTP answer route each row to its segment's champion, a segment too small for a model
of its own to the global one; a segment whose new candidate is worse keeps its champion while
another is promoted; the performance report gives each segment its own verdict."""
import datetime as dt
import json

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.integration
D0 = dt.date(2026, 3, 1)
DAYS = 14  # history with targets; one more day lands later, unlabelled, for monitoring
MONITORED = D0 + dt.timedelta(days=DAYS)
NAME = "regional"
SEGMENT_ROWS = {"north": 40, "south": 40, "tiny": 3}  # a day's rows; tiny: 33 training rows < 100
ENV_KEYS = ("MLOPS_DATA_DIR", "MLOPS_DUCKDB_PATH", "MLFLOW_TRACKING_URI", "DAGSTER_HOME", "MLOPS_USE_CASE_DIRS",
            "MLOPS_MLFLOW_ARTIFACT_ROOT", "MLOPS_MLFLOW_UI_URL")
SLOPE = {"north": 3.0, "south": -3.0, "tiny": 3.0}  # the target's relation to x1 flips between regions


def _day(rng, day: dt.date, slope=SLOPE) -> pd.DataFrame:
    parts = []
    for seg, n in SEGMENT_ROWS.items():
        x1, x2 = rng.normal(size=n), rng.normal(size=n)
        parts.append(pd.DataFrame({"x1": x1.round(4), "x2": x2.round(4), "seg": seg,
                                   "y": (20 + 3 * x2 + slope[seg] * x1 + rng.normal(0, 0.5, n)).round(4)}))
    frame = pd.concat(parts, ignore_index=True)
    seconds = np.sort(rng.integers(0, 80_000, len(frame)))
    frame.insert(0, "ts", [dt.datetime.combine(day, dt.time(0)) + dt.timedelta(seconds=int(s)) for s in seconds])
    frame.insert(0, "id", [f"{day:%m%d}-{i:03d}" for i in range(len(frame))])
    return frame


def _use_case(root) -> dict:
    return {"name": NAME, "task": "regression", "landing": {"folder": str(root / "landing" / NAME)},
            "labels": {"folder": str(root / "labels" / NAME)},
            "first_day": D0.isoformat(), "last_day": MONITORED.isoformat(), "entity_column": "id",
            "timestamp_column": "ts", "target_column": "y",
            "features": {"numeric": ["x1", "x2"], "categorical": ["seg"]},
            "segment_column": "seg", "segment_min_rows": 100,
            "model": {"estimator": "sklearn.linear_model.LinearRegression"},
            "split": {"holdout_days": 3}, "retrain": {"min_new_rows": None, "on_drift": False},
            "monitoring": {"min_labelled_rows": 30, "min_label_coverage": 0.8, "max_primary_metric_drop": 0.1}}


class Platform:
    def __init__(self, root, defs, instance):
        self.root, self.defs, self.instance = root, defs, instance
        self.assets = list(defs.get_repository_def().assets_defs_by_key.values())

    def materialize(self, steps: list[str], partition_key=None, tags=None, shuffle_segments=()):
        config = ({"ops": {f"{NAME}__candidate_model": {"config": {"shuffle_segments": list(shuffle_segments)}}}}
                  if "candidate_model" in steps else None)
        result = dg.materialize(self.assets, selection=[dg.AssetKey([NAME, s]) for s in steps],
                                instance=self.instance, run_config=config, partition_key=partition_key, tags=tags,
                                raise_on_error=False)
        assert result.success, f"{steps} failed: {_failures(result)}"
        return result

    def metadata(self, step: str, partition: str | None = None) -> dict:
        if partition is None:
            event = self.instance.get_latest_materialization_event(dg.AssetKey([NAME, step]))
        else:
            (record,) = self.instance.fetch_materializations(dg.AssetRecordsFilter(
                asset_key=dg.AssetKey([NAME, step]), asset_partitions=[partition]), limit=1).records
            event = record.event_log_entry
        assert event is not None, f"{step} was never materialized"
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}

    def client(self):
        from mlops_assets.chain.resources import MlflowResource

        return MlflowResource.from_settings().client()

    def champions(self) -> tuple[str, dict[str, str]]:
        from mlops_assets.governance import registry

        client = self.client()
        return (registry.champion_version(client, f"{NAME}_model"),
                registry.segment_champions(client, f"{NAME}_model"))

    def predictions(self, day: dt.date) -> pd.DataFrame:
        from mlops_assets import settings

        with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
            return con.execute(f"SELECT p.*, r.seg FROM predictions.{NAME} p JOIN raw.{NAME} r USING (id, ts) "
                               "WHERE CAST(p.ts AS DATE) = ? ORDER BY ts, id", [day]).df()


def _failures(result) -> str:
    out = []
    for e in result.all_events:
        if e.event_type_value == "STEP_FAILURE":
            data = e.step_failure_data
            user = data.user_failure_data
            out.append(user.description if user and user.description else (data.error.message if data.error else ""))
    return "; ".join(out)[:3000]


@pytest.fixture(scope="module")
def platform(tmp_path_factory, dbt_manifest):
    root = tmp_path_factory.mktemp("segments") / "data"
    cases = root.parent / "use_cases"
    cases.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for k in ENV_KEYS:
            mp.delenv(k, raising=False)
        mp.setenv("MLOPS_DATA_DIR", str(root))
        mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        mp.setenv("MLOPS_USE_CASE_DIRS", str(cases))
        (root / "dagster_home").mkdir(parents=True)
        rng = np.random.default_rng(7)
        folder = root / "landing" / NAME
        folder.mkdir(parents=True)
        for d in range(DAYS):
            day = D0 + dt.timedelta(days=d)
            _day(rng, day).to_csv(folder / f"{NAME}_{day}.csv", index=False)
        (cases / f"{NAME}.yaml").write_text(yaml.safe_dump(_use_case(root), sort_keys=False))
        from mlops_assets.definitions import build_defs

        defs = build_defs()
        with dg.DagsterInstance.get() as instance:
            platform = Platform(root, defs, instance)
            last = D0 + dt.timedelta(days=DAYS - 1)
            platform.materialize(["raw"], tags={"dagster/asset_partition_range_start": D0.isoformat(),
                                                "dagster/asset_partition_range_end": last.isoformat()})
            platform.materialize(["training_set", "candidate_model", "model_evaluation", "champion_model"])
            yield platform


def test_a_model_per_segment_plus_the_global_one_each_with_its_alias(platform):
    from mlops_assets.chain import handoffs
    from mlops_assets.governance import registry

    candidate = platform.metadata("candidate_model")
    own = candidate["segment_candidates"]
    assert sorted(own) == ["north", "south"] and candidate["segments_on_global"] == {"tiny": 33}
    assert "global (fewer than 100 rows)" in candidate["segments"]
    global_version, segments = platform.champions()
    assert global_version == handoffs.read_candidate(candidate).version
    assert segments == {s: own[s]["version"] for s in ("north", "south")}
    client = platform.client()
    model = client.get_registered_model(f"{NAME}_model")
    assert model.aliases[registry.segment_alias("north")] == int(segments["north"])
    assert json.loads(model.tags[registry.TAG_SEGMENT_ALIASES]) == {"champion_north": "north",
                                                                     "champion_south": "south"}
    for seg, version in segments.items():
        assert client.get_model_version(f"{NAME}_model", version).tags[registry.TAG_SEGMENT] == seg
    # each segment's model fits its own relation far better than the global one on its rows
    verdicts = platform.metadata("model_evaluation")["segment_verdicts"]
    for seg in ("north", "south"):
        assert verdicts[seg]["passed"] and verdicts[seg]["value"] > 0.95, verdicts[seg]
    assert platform.metadata("model_evaluation")["holdout_r2"] < 0.8
    promoted = platform.metadata("champion_model")
    assert promoted["segment_champions"] == segments


def test_segment_aliases_are_valid_and_distinct_for_any_value():
    from mlops_assets.governance import registry

    aliases = {v: registry.segment_alias(v) for v in ("north", "North", "north!", "São Paulo", "a b", "7")}
    assert aliases["north"] == "champion_north" and len(set(aliases.values())) == len(aliases)
    assert all(a.replace("_", "").isalnum() and a.isascii() for a in aliases.values()), aliases


def test_scoring_routes_each_row_to_its_segments_champion(platform):
    last = D0 + dt.timedelta(days=DAYS - 1)
    platform.materialize(["batch_predictions"], partition_key=last.isoformat())
    global_version, segments = platform.champions()
    scored = platform.predictions(last)
    by_segment = scored.groupby("seg")["model_version"].unique().map(list).to_dict()
    assert by_segment == {"north": [segments["north"]], "south": [segments["south"]], "tiny": [global_version]}
    meta = platform.metadata("batch_predictions", last.isoformat())
    assert meta["segment_versions"] == segments
    assert meta["rows_per_version"] == {segments["north"]: 40, segments["south"]: 40, global_version: 3}


def test_a_worse_segment_candidate_keeps_its_champion_while_another_is_promoted(platform):
    from mlops_assets.evaluation import gates

    _, before = platform.champions()
    platform.materialize(["candidate_model", "model_evaluation", "champion_model"], shuffle_segments=["south"])
    candidate = platform.metadata("candidate_model")["segment_candidates"]
    verdicts = platform.metadata("model_evaluation")["segment_verdicts"]
    assert verdicts["north"]["passed"] and not verdicts["south"]["passed"]
    assert verdicts["south"]["compared_with"] == f"segment champion v{before['south']}"
    failed = verdicts["south"]["gates"][gates.NO_REGRESSION]
    assert not failed["passed"] and "beyond the allowed" in failed["description"], failed
    _, after = platform.champions()
    assert after == {"north": candidate["north"]["version"], "south": before["south"]}
    assert after["north"] != before["north"]
    outcome = platform.metadata("champion_model")["segment_promotions"]
    assert "refused, keeps v" + before["south"] in outcome and "promoted (champion_north)" in outcome


def test_the_http_answer_routes_by_segment(platform):
    import httpx

    from mlops_assets import settings
    from mlops_assets.serving.app import create_app
    from mlops_assets.serving.holder import ChampionHolder
    from mlops_assets.serving.validation import FeatureSpec
    from mlops_assets_tests.dev_server import serve_app

    global_version, segments = platform.champions()
    spec = FeatureSpec(numeric=("x1", "x2"), categorical=("seg",))
    holder = ChampionHolder(f"{NAME}_model", spec, settings.mlflow_tracking_uri(), poll_seconds=3600,
                            task="regression", segment_column="seg")
    assert holder.refresh()
    rows = [{"x1": 1.0, "x2": 0.0, "seg": s} for s in ("north", "south", "tiny", "west")]
    with serve_app(create_app(holder, poll=False)) as port:
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"rows": rows}, timeout=30).json()
        version = httpx.get(f"http://127.0.0.1:{port}/version", timeout=30).json()
    assert answer["model_versions"] == [segments["north"], segments["south"], global_version, global_version]
    north, south, tiny, west = answer["predictions"]
    assert north == pytest.approx(23, abs=0.6) and south == pytest.approx(17, abs=0.6)
    # the global model for both: x1's opposite slopes cancel out in it
    assert tiny == pytest.approx(20, abs=1.5) and west == pytest.approx(20, abs=1.5)
    assert answer["model_version"] == global_version and version["segment_versions"] == segments


def test_each_segment_gets_its_own_performance_verdict(platform):
    from mlops_assets import settings  # noqa: F401 - the environment is the fixture's
    from mlops_assets.chain import handoffs

    rng = np.random.default_rng(99)
    # the monitored day: the south's relation flips back (its model no longer fits), the north's holds
    day = _day(rng, MONITORED, slope={"north": 3.0, "south": 3.0, "tiny": 3.0})
    folder = platform.root / "landing" / NAME
    day.assign(y=None).to_csv(folder / f"{NAME}_{MONITORED}.csv", index=False)
    key = MONITORED.isoformat()
    platform.materialize(["raw"], partition_key=key)
    platform.materialize(["batch_predictions"], partition_key=key)
    labels = platform.root / "labels" / NAME
    labels.mkdir(parents=True, exist_ok=True)
    day[["id", "ts", "y"]].to_csv(labels / f"{NAME}_labels_{MONITORED}.csv", index=False)
    platform.materialize(["labels"], partition_key=key)
    result = platform.materialize(["performance_report"], partition_key=key)
    meta = platform.metadata("performance_report", key)
    assert meta[handoffs.PERF_EVALUATED] is True
    verdicts = meta["segment_verdicts"]
    _, segments = platform.champions()
    assert verdicts["north"]["model"] == "segment" and verdicts["north"]["version"] == segments["north"]
    assert verdicts["north"]["passed"] is True and verdicts["south"]["passed"] is False, verdicts
    assert verdicts["tiny"]["model"] == "global" and verdicts["tiny"]["passed"] is None  # 3 rows < 30
    assert meta["segments_failing"] == "south"
    (check,) = result.get_asset_check_evaluations()
    assert check.metadata["segments_failing"].value == "south"


class _Constant:
    """A fitted classifier that answers the same probabilities for every row."""

    def __init__(self, classes, proba):
        self.classes_, self.proba = np.array(classes, dtype=object), np.array(proba, dtype=float)

    def predict_proba(self, X):
        return np.tile(self.proba, (len(X), 1))


def test_routing_keeps_row_order_and_merges_the_classes_of_every_model():
    from mlops_assets.serving.predictions import prediction_values
    from mlops_assets.serving.segments import answer_routed, predict_routed

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "seg": ["b", None, "a", "c"]}, index=[10, 11, 12, 13])
    glob = ("1", _Constant(["low", "high"], [0.7, 0.3]))
    segments = {"a": ("2", _Constant(["low", "mid"], [0.2, 0.8])), "b": ("3", _Constant(["low", "high"], [0.1, 0.9]))}
    answer = answer_routed("multiclass", frame, "seg", glob, segments)
    assert answer["model_versions"] == ["3", "1", "2", "1"]
    assert answer["classes"] == ["high", "low", "mid"] and answer["predictions"] == ["high", "low", "mid", "low"]
    assert answer["probabilities"][2] == [0.0, 0.2, 0.8]  # "high" unknown to segment a's model
    binary = {"a": ("2", _Constant([0, 1], [0.2, 0.8]))}
    values, versions = predict_routed("binary", frame, ["x"], "seg", ("1", _Constant([0, 1], [0.6, 0.4])), binary,
                                      prediction_values)
    assert list(versions) == ["1", "1", "2", "1"] and list(values["score"].index) == [10, 11, 12, 13]
    assert values["score"].tolist() == pytest.approx([0.4, 0.4, 0.8, 0.4])


def test_a_binary_segmented_use_case_gates_and_routes_by_roc_auc(tmp_path, dbt_manifest, monkeypatch):
    """The binary path (judged by ROC AUC): the class of 1 follows x1 upwards in the north and
    downwards in the south; each region's model is promoted and scores its rows."""
    from mlops_assets.definitions import build_defs
    from mlops_assets.governance import registry

    name, root = "churnish", tmp_path / "data"
    for k in ENV_KEYS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("MLOPS_DATA_DIR", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    monkeypatch.setenv("MLOPS_USE_CASE_DIRS", str(tmp_path / "use_cases"))
    (root / "dagster_home").mkdir(parents=True)
    (tmp_path / "use_cases").mkdir()
    rng = np.random.default_rng(3)
    folder = root / "landing" / name
    folder.mkdir(parents=True)
    for d in range(DAYS):
        day = _day(rng, D0 + dt.timedelta(days=d))
        logit = 2 * day["x2"] + np.where(day["seg"] == "south", -2.5, 2.5) * day["x1"]
        day["y"] = (rng.random(len(day)) < 1 / (1 + np.exp(-logit))).astype(int)
        day.to_csv(folder / f"{name}_{D0 + dt.timedelta(days=d)}.csv", index=False)
    spec = {**_use_case(root), "name": name, "task": "binary", "model": {"family": "logistic_regression"},
            "monitoring": {}}
    del spec["labels"]
    spec["landing"] = {"folder": str(folder)}
    (tmp_path / "use_cases" / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    defs = build_defs()
    assets = list(defs.get_repository_def().assets_defs_by_key.values())
    last = D0 + dt.timedelta(days=DAYS - 1)
    with dg.DagsterInstance.get() as instance:
        def run(steps, **kw):
            result = dg.materialize(assets, selection=[dg.AssetKey([name, s]) for s in steps], instance=instance,
                                    raise_on_error=False, **kw)
            assert result.success, _failures(result)

        run(["raw"], tags={"dagster/asset_partition_range_start": D0.isoformat(),
                           "dagster/asset_partition_range_end": last.isoformat()})
        run(["training_set", "candidate_model", "model_evaluation", "champion_model"])
        run(["batch_predictions"], partition_key=last.isoformat())
        event = instance.get_latest_materialization_event(dg.AssetKey([name, "model_evaluation"]))
        verdicts = event.asset_materialization.metadata["segment_verdicts"].value
    assert {s: v["metric"] for s, v in verdicts.items()} == {"north": "roc_auc", "south": "roc_auc"}
    assert all(v["passed"] and v["value"] > 0.8 for v in verdicts.values()), verdicts
    client = registry.mlflow_client()
    glob, segments = (registry.champion_version(client, f"{name}_model"),
                      registry.segment_champions(client, f"{name}_model"))
    from mlops_assets import settings

    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        scored = con.execute(f"SELECT p.model_version, r.seg FROM predictions.{name} p JOIN raw.{name} r "
                             "USING (id, ts)").df()
    assert scored.groupby("seg")["model_version"].unique().map(list).to_dict() == {
        "north": [segments["north"]], "south": [segments["south"]], "tiny": [glob]}
