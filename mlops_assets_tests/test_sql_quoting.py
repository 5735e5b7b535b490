"""The quoting helper: hostile names stay names."""
import duckdb
import pytest

from mlops_assets.warehouse.sql import ident, is_plain, literal, qualified


def test_hostile_column_name_is_a_name_not_sql(tmp_path):
    evil = 'x" AS VARCHAR)) FROM (SELECT 1 AS x); COPY (SELECT 1) TO \'' + str(tmp_path / "owned.csv") + "'; --"
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({ident(evil)} INTEGER)")
    con.execute("INSERT INTO t VALUES (7)")
    assert con.execute(f"SELECT CAST({ident(evil)} AS VARCHAR) FROM t").fetchone() == ("7",)
    assert [r[0] for r in con.execute("DESCRIBE t").fetchall()] == [evil]
    assert not (tmp_path / "owned.csv").exists()


def test_qualified_and_literal():
    assert qualified("raw.churn") == '"raw"."churn"'
    assert literal("it's") == "'it''s'"
    with pytest.raises(ValueError):
        ident("")


@pytest.mark.parametrize("name,plain", [("event_ts", True), ("_x1", True), ("1x", False), ("a b", False),
                                        ('a"b', False), ("a;b", False), ("", False), ("ünï", False)])
def test_is_plain(name, plain):
    assert is_plain(name) is plain
