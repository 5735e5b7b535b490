"""Issue 11 #3 (dbt part): the demo models' SQL builds on DuckDB and on PostgreSQL with the same
results, has no DuckDB-only SQL (per-adapter SQL lives in macros/portable.sql), and the profile
has the postgres, databricks and spark targets reading their settings from variables."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mlops_assets import settings
from mlops_assets.chain.resources import dbt_executable

DBT = settings.DBT_PROJECT_DIR
# Functions and syntax of DuckDB that PostgreSQL, Databricks or Spark lack (or spell otherwise).
DUCKDB_ONLY = {
    r"::": "the :: cast (Spark lacks it): use cast(x as ...)",
    r"\bdouble\b(?!\s+precision)": "the `double` type (PostgreSQL lacks it): use {{ type_double() }}",
    r"\bvarchar\b": "`varchar` (Spark needs a length): use {{ type_text() }}",
    r"\b(strftime|strptime|epoch_ms|epoch_us|epoch|date_diff|list_\w+|struct_pack|regexp_matches|"
    r"string_split|read_csv\w*|read_parquet|read_json\w*|arg_max|arg_min|columns|exclude|"
    r"md5_number)\s*\(": "a DuckDB-only function",
    r"\bqualify\b": "QUALIFY (PostgreSQL lacks it): filter a row_number() in a CTE",
    r"\bselect\s+\*\s+exclude\b": "SELECT * EXCLUDE (DuckDB only)",
}
# The only file allowed to spell SQL per adapter (dispatched by adapter type).
PORTABLE_MACROS = DBT / "macros" / "portable.sql"


def _sql_files() -> list[Path]:
    files = [p for folder in ("models", "macros", "tests") for p in (DBT / folder).rglob("*.sql")]
    return [p for p in files if p != PORTABLE_MACROS]


def _code(text: str) -> str:
    """SQL without comments (-- ... and {# ... #})."""
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def duckdb_only_uses(text: str) -> list[str]:
    code = _code(text)
    return [f"{m.group(0).strip()!r}: {why}" for pattern, why in DUCKDB_ONLY.items()
            for m in re.finditer(pattern, code, flags=re.I)]


def test_the_portability_check_catches_duckdb_only_sql():
    """The check itself: the models as they were before (double, varchar) fail it."""
    assert duckdb_only_uses("select cast(x as double) as a, cast(y as varchar) as b")
    assert duckdb_only_uses("select strftime(ts, '%Y') from t")
    assert duckdb_only_uses("select x::int from t")
    assert not duckdb_only_uses("select cast(x as double precision), cast(y as {{ type_text() }}) -- double")
    assert not duckdb_only_uses("select greatest(a, 1), lower(trim(b)), row_number() over (partition by c)")


def test_models_use_no_duckdb_only_sql():
    files = _sql_files()
    assert any(p.name == "features_churn.sql" for p in files)
    problems = {str(p.relative_to(DBT)): duckdb_only_uses(p.read_text()) for p in files}
    assert not {k: v for k, v in problems.items() if v}


def test_profile_targets_read_their_settings_from_variables():
    outputs = yaml.safe_load((DBT / "profiles.yml").read_text())["mlops_assets"]["outputs"]
    assert {"local", "postgres", "databricks", "spark"} <= set(outputs)
    assert outputs["postgres"]["type"] == "postgres" and outputs["databricks"]["type"] == "databricks"
    assert outputs["spark"]["type"] == "spark"
    for target in ("postgres", "databricks", "spark"):
        for key, value in outputs[target].items():
            if key in ("host", "user", "password", "token", "http_path", "dbname", "port", "cluster"):
                assert "env_var(" in str(value), (target, key, value)  # never a literal secret or host
    pg_vars = set(re.findall(r"env_var\('(\w+)'", (DBT / "profiles.yml").read_text()))
    assert set(settings.WAREHOUSE_PG_ENV.values()) <= pg_vars  # what settings fills is what dbt reads


# --- real builds -----------------------------------------------------------------------------

RAW_COLUMNS = {
    "customer_id": "varchar", "event_ts": "timestamp", "tenure_months": "bigint", "monthly_charges": "double precision",
    "total_charges": "double precision", "num_support_calls": "bigint", "avg_session_minutes": "double precision",
    "days_since_last_login": "bigint", "num_logins_30d": "bigint", "data_usage_gb": "double precision",
    "discount_pct": "double precision", "age": "bigint", "late_payments_12m": "bigint",
    "satisfaction_score": "double precision", "plan_type": "varchar", "contract": "varchar", "region": "varchar",
    "payment_method": "varchar", "device": "varchar", "churned": "bigint", "_source_file": "varchar",
    "_loaded_at": "timestamp",
}


def _raw_rows() -> list[tuple]:
    """Six snapshots over two days; C1 at 08:00 arrives twice (the later load wins)."""
    rows = []
    for i, (cid, ts, support, logins, loaded) in enumerate([
            ("C1", "2026-01-01 08:00:00", 3, 2, "2026-01-02 00:00:00"),
            ("C1", "2026-01-01 08:00:00", 9, 2, "2026-01-03 00:00:00"),
            ("C2", "2026-01-01 09:00:00", 1, 0, "2026-01-02 00:00:00"),
            ("C3", "2026-01-01 10:00:00", 5, 4, "2026-01-02 00:00:00"),
            ("C1", "2026-01-02 08:00:00", 2, 3, "2026-01-03 00:00:00"),
            ("C4", "2026-01-02 11:00:00", 0, 7, "2026-01-03 00:00:00")]):
        rows.append((cid, ts, 12 + i, 50.0 + i, 600.0 + 10 * i, support, 30.5, 2, logins, 3.25, 10.0, 40 + i, 0,
                     4.0, " Basic ", "Monthly", "EU", "card", "ios", i % 2, f"churn_{ts[:10]}.csv", loaded))
    return rows


def _insert_sql(con_param: str) -> str:
    cols = ", ".join(RAW_COLUMNS)
    return f"INSERT INTO raw.churn ({cols}) VALUES ({', '.join([con_param] * len(RAW_COLUMNS))})"


def _create_sql() -> str:
    return "CREATE TABLE raw.churn (" + ", ".join(f"{c} {t}" for c, t in RAW_COLUMNS.items()) + ")"


def _dbt_build(tmp_path: Path, target: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # Own target and log folders: the project's target/ holds the manifest other runs load.
    return subprocess.run(
        [dbt_executable(), "build", "--project-dir", str(DBT), "--profiles-dir", str(DBT), "--target", target,
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
         "--select", "models/churn",  # the raw table written here is churn's; other use cases have their own tests
         "--vars", "{min_date: '2026-01-01', max_date: '2026-01-03'}"],
        capture_output=True, text=True, env={**os.environ, "DO_NOT_TRACK": "1", **env}, timeout=300)


FEATURES_QUERY = ("SELECT customer_id, cast(event_ts as varchar), cast(event_date as varchar), num_support_calls, "
                  "support_calls_per_login, charges_per_tenure_month, plan_type, churned "
                  "FROM main.features_churn ORDER BY customer_id, event_ts")


def _build_duckdb(tmp_path: Path) -> list[tuple]:
    import duckdb

    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute(_create_sql())
        con.executemany(_insert_sql("?"), _raw_rows())
    proc = _dbt_build(tmp_path, "local", {settings.DUCKDB_PATH_ENV: str(path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(FEATURES_QUERY).fetchall()


def _build_postgres(tmp_path: Path, base_url: str) -> list[tuple]:
    import psycopg2

    from mlops_assets_tests.pg_server import drop_database, fresh_database

    url = fresh_database(base_url, "dbt")
    try:
        con = psycopg2.connect(url)
        with con, con.cursor() as cur:
            cur.execute("CREATE SCHEMA raw")
            cur.execute(_create_sql())
            cur.executemany(_insert_sql("%s"), _raw_rows())
        con.close()
        proc = _dbt_build(tmp_path, "postgres", settings.warehouse_pg_env(url))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        con = psycopg2.connect(url)
        with con, con.cursor() as cur:
            cur.execute(FEATURES_QUERY)
            rows = cur.fetchall()
        con.close()
        return rows
    finally:
        drop_database(url)


@pytest.mark.integration
def test_demo_models_build_the_same_features_on_duckdb_and_postgres(tmp_path, postgres_url):
    on_duckdb = _build_duckdb(tmp_path / "duckdb")
    on_postgres = _build_postgres(tmp_path / "postgres", postgres_url)
    assert len(on_duckdb) == 5  # six rows, one re-delivered
    c1 = on_duckdb[0]
    assert c1[0] == "C1" and c1[3] == 9  # the later load of the duplicate wins
    by_customer = {(r[0], r[1]): r for r in on_duckdb}
    # 1 support call / max(0 logins, 1) = 1.0; 5 / 4 = 1.25 (PostgreSQL's integer division gave 1)
    assert by_customer[("C3", "2026-01-01 10:00:00")][4] == pytest.approx(1.25)
    assert by_customer[("C1", "2026-01-02 08:00:00")][4] == pytest.approx(2 / 3)
    assert c1[6] == "basic"
    normalized = [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in on_postgres]
    assert normalized == [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in on_duckdb]


# --- Spark and Databricks (adapters outside the default install) ----------------------------------

def _dbt_with(adapter: str, variable: str) -> str:
    """A dbt that has `adapter`: the project's (e.g. after `uv sync --extra spark`), else the
    executable named by `variable` (a separate install, as dbt-databricks needs), else skip."""
    import importlib.util

    if importlib.util.find_spec(f"dbt.adapters.{adapter}") is not None:
        return dbt_executable()
    if os.environ.get(variable):
        return os.environ[variable]
    pytest.skip(f"dbt-{adapter} is not installed here (optional); set {variable} to a dbt that has it")


def test_models_compile_for_spark_with_spark_types(tmp_path):
    """No Spark server here: compile renders every model and test (the connection attempts to
    the unreachable host fail and are only logged), which is what the adapter dispatch needs."""
    dbt = _dbt_with("spark", "MLOPS_TEST_DBT_SPARK")
    proc = subprocess.run(
        [dbt, "compile", "--project-dir", str(DBT), "--profiles-dir", str(DBT), "--target", "spark",
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "DO_NOT_TRACK": "1", "MLOPS_SPARK_HOST": "127.0.0.1", "MLOPS_SPARK_PORT": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    compiled = tmp_path / "target" / "compiled" / "mlops_assets" / "models" / "churn"
    stg, features = (compiled / "stg_churn.sql").read_text(), (compiled / "features_churn.sql").read_text()
    assert "as double)" in stg and "as string)" in stg and "varchar" not in stg
    assert "cast(s.num_support_calls as double) / greatest(s.num_logins_30d, 1)" in features


def test_project_parses_for_databricks(tmp_path):
    """dbt-databricks is installed on its own (it is not in the lock): parse checks the target
    and the project's configuration for it without a workspace."""
    dbt = _dbt_with("databricks", "MLOPS_TEST_DBT_DATABRICKS")
    proc = subprocess.run(
        [dbt, "parse", "--project-dir", str(DBT), "--profiles-dir", str(DBT), "--target", "databricks",
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "DO_NOT_TRACK": "1", "MLOPS_DATABRICKS_HOST": "adb-0.0.azuredatabricks.net",
             "MLOPS_DATABRICKS_HTTP_PATH": "/sql/1.0/warehouses/0", "MLOPS_DATABRICKS_TOKEN": "not-a-token"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import json

    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "databricks"
    models = [n for k, n in manifest["nodes"].items() if k.startswith("model.")]
    assert models and all(n["config"]["file_format"] == "delta" for n in models)
