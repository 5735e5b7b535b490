"""The benchmark's baseline must keep doing the platform's work: plain_pipeline.py at tiny
scale, as bench_vs_script.py runs it (a child process), and the benchmark's pure parts."""
import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

BENCH = Path(__file__).resolve().parent / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


plain = _load("plain_pipeline")
bench = _load("bench_vs_script")


def test_dbt_sql_rendered_with_the_window_and_relations():
    sql = plain.render_dbt_sql("select * from {{ ref('stg_x') }} join {{ source('raw', 'x') }} "
                               "where {{ in_window('event_ts') }} and '{{ var(\"max_date\") }}' > ''",
                               "2026-01-01", "2026-01-03", {"stg_x": '"main"."stg_x"'})
    assert sql == ("select * from \"main\".\"stg_x\" join \"raw\".\"x\" where event_ts >= cast('2026-01-01' as timestamp) "
                   "and event_ts < cast('2026-01-03' as timestamp) and '2026-01-03' > ''")


def test_dbt_sql_with_an_unknown_macro_or_model_fails_loudly():
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        plain.render_dbt_sql("select {{ some_new_macro('x') }}", "2026-01-01", "2026-01-02", {})
    with pytest.raises(KeyError, match="stg_missing"):
        plain.render_dbt_sql("select * from {{ ref('stg_missing') }}", "2026-01-01", "2026-01-02", {})


def test_load_relation_answered_from_the_warehouse():
    # As features_churn.sql does: join labels.churn only once that table exists (dbt decides at run time).
    sql = ("{%- set labels = source('labels', 'churn') %}{%- set has = execute and load_relation(labels) is not none %}"
           "select * from {{ ref('stg_churn') }} as s{% if has %} left join {{ labels }} as l using (id){% endif %}")
    relations = {"stg_churn": '"main"."stg_churn"'}
    without = plain.render_dbt_sql(sql, "2026-01-01", "2026-01-02", relations)
    with_labels = plain.render_dbt_sql(sql, "2026-01-01", "2026-01-02", relations,
                                       lambda schema, table: (schema, table) == ("labels", "churn"))
    assert '"labels"."churn"' not in without and 'join "labels"."churn"' in with_labels


def test_models_ordered_by_their_refs():
    from mlops_assets.use_cases.loader import get_use_case

    assert [p.stem for p in plain.model_files(get_use_case("churn"))] == ["stg_churn", "features_churn"]


def test_measure_reports_the_largest_process_of_the_tree(tmp_path):
    # The child only waits; its own child holds ~150 MB: ru_maxrss of the tree is that process.
    grandchild = "b = bytearray(150 * 2**20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(1.5)"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}], check=True)"
    m = bench.measure([sys.executable, "-c", child], {}, tmp_path / "log", sample_every=0.2)
    assert m.returncode == 0
    assert 150 <= m.maxrss_mb < 400
    assert m.tree_peak_mb >= 150  # sampled while the grandchild slept holding its memory


def test_benchmarks_md_sections_replaced_and_others_kept(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    bench.update_benchmarks_md({"a": "first A", "b": "first B"}, path)
    bench.update_benchmarks_md({"a": "second A"}, path)
    text = path.read_text()
    assert "second A" in text and "first A" not in text and "first B" in text
    assert text.count("<!-- bench:a -->") == 1 and text.index("bench:a") < text.index("bench:b")


def test_summary_pairs_each_ci_command_with_its_plain_steps():
    groups = {"prepare": 2.0, "load_features": 12.0, "training": 30.0, "last_day": 8.0}
    platform = [bench.SideResult(52.0, groups, {}, 600.0, 700.0, {}, {"load_features": 4.0, "training": 20.0,
                                                                       "last_day": 5.0})] * 3
    plain = [bench.SideResult(w, {"prepare": 0.0, "load_features": 3.0, "training": 15.0, "last_day": 4.0}, {},
                              400.0, 420.0) for w in (24.0, 26.0, 40.0)]
    lines, head = bench.summarize(100_000, list(zip(platform, plain)))
    row = {line.split(" | ")[0].strip("| *"): line for line in lines}
    assert row["raw + dbt features over the range"].endswith("| 12.0 | 4.0 | 3.0 | 4.00x |")
    assert row["training chain (set, model, evaluation, promotion)"].endswith("| 2.00x |")
    assert row["plain script start-up (interpreter, duckdb, use case config)"].endswith("| 4.0 | - |")  # 26 - 22
    assert head["plain_s"] == 26.0 and head["ratio"] == 2.0 and head["goal"] == 1.5
    assert head["memory_ratio"] == 1.5


@pytest.mark.integration
def test_plain_script_does_the_platforms_work(tmp_path):
    from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

    days, per_day = 12, 300
    start = dt.date(2026, 1, 1)
    landing = tmp_path / "landing"
    files = write_days(landing, day_range(start, days), SimulationConfig(start_date=start, rows_per_day=per_day))
    work, out = tmp_path / "work", tmp_path / "out.json"
    proc = subprocess.run([sys.executable, str(BENCH / "plain_pipeline.py"), "--landing", str(landing),
                           "--work", str(work), "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())

    # Every landing row loaded; features keep one row per (customer, timestamp), as the dbt model does.
    with duckdb.connect() as con:
        paths = [str(f) for f in files]
        landed, distinct = con.execute("SELECT count(*), count(DISTINCT (customer_id, event_ts)) FROM read_csv(?)",
                                       [paths]).fetchone()
    assert result["raw_rows"] == landed == days * per_day
    assert result["feature_rows"] == distinct
    assert result["train_rows"] + result["holdout_rows"] == distinct
    assert set(result["steps"]) == set(plain.STEP_GROUPS)

    # The last day scored: one prediction per feature row of that day, and those scores rank
    # the day's labels sanely (the simulator's label is learnable but noisy).
    from sklearn.metrics import roc_auc_score

    last = (start + dt.timedelta(days=days - 1)).isoformat()
    assert result["prediction_day"] == last
    with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as con:
        scored = con.execute("SELECT p.score, f.churned, p.model_version FROM predictions.churn p "
                             "JOIN main.features_churn f USING (customer_id, event_ts)").df()
        day_rows = con.execute("SELECT count(*) FROM main.features_churn WHERE event_date = ?", [last]).fetchone()[0]
    assert len(scored) == result["prediction_rows"] == day_rows > 0
    assert scored["score"].between(0, 1).all()
    assert 0.6 < roc_auc_score(scored["churned"], scored["score"]) < 0.97
    assert 0.6 < result["holdout"]["roc_auc"] < 0.97
    assert result["holdout"]["roc_auc"] > result["baseline"]["roc_auc"]

    # Registered in the local MLflow store, the champion alias on the version that scored.
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=result["tracking_uri"])
    champion = client.get_model_version_by_alias("churn_model", "champion")
    assert str(champion.version) == result["model_version"] == str(scored["model_version"].iloc[0])

    # The drift report of the last day, a real Evidently HTML page.
    report = Path(result["drift_report"])
    assert report.name == f"drift_report_{last}.html" and report.stat().st_size > 10_000
    html = report.read_text(errors="replace")
    assert "Drift score is" in html and all(c in html for c in ("monthly_charges", "plan_type"))
    assert 0.0 <= result["drift_share"] <= 1.0
