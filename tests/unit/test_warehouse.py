"""The local SQL warehouse: which tables a Databricks query reads, how it reaches DuckDB, what comes back. Small Delta
tables written with delta-rs under a temporary folder (no Spark, no MLOPS_HOME)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from local.warehouse import LocalSql, TableRef, WarehouseError, parse, python_value, tables_read, to_duckdb
from spec.config import ENVIRONMENTS
from spec.errors import MlopsError
from spec.monitoring import alerts, describe_alert_row, monitored_tables

DEV = ENVIRONMENTS["dev"]


@pytest.fixture
def warehouse(tmp_path) -> tuple[LocalSql, Path]:
    def locate(full_name: str) -> Path:
        return tmp_path.joinpath(*full_name.split("."))

    return LocalSql("dev", locate=locate), tmp_path


def write(root: Path, full_name: str, table: pa.Table) -> None:
    path = root.joinpath(*full_name.split("."))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(path), table)


def test_tables_read_are_the_three_part_names_not_the_ctes():
    statement = parse(
        "WITH w AS (SELECT * FROM Dev.Monitoring.T_Drift_Metrics), x AS (SELECT * FROM w) "
        "SELECT * FROM x JOIN `dev`.ml.preds p ON TRUE WHERE EXISTS (SELECT 1 FROM dev.ml.other) "
        "UNION ALL SELECT * FROM dev.monitoring.t_drift_metrics"
    )

    assert sorted(tables_read(statement), key=lambda t: t.full_name) == [
        TableRef("dev", "ml", "other"),
        TableRef("dev", "ml", "preds"),
        TableRef("dev", "monitoring", "t_drift_metrics"),
    ]


@pytest.mark.parametrize("spec", alerts(DEV), ids=lambda s: s.name)
def test_every_alert_query_reads_the_metric_tables_and_transpiles(spec):
    statement = parse(spec.query_text)

    tables = tables_read(statement)

    assert tables and all(table.is_metric_table for table in tables)
    expected = {spec.monitored.profile_metrics_table}
    if spec.kind == "feature_drift":  # the drift, for the models that scored enough flights (profile counts)
        expected.add(spec.monitored.drift_metrics_table)
    assert {table.full_name for table in tables} == expected
    assert "COUNT_IF" in to_duckdb(statement)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT * FROM monitoring.t", "table monitoring.t must be named catalog.schema.table"),
        ("SELECT 1; SELECT 2", "expected one SQL statement, got 2"),
        ("SELECT FROM WHERE (", "the query is not valid Databricks SQL"),
    ],
)
def test_queries_the_warehouse_cannot_run_are_value_errors(warehouse, text, message):
    sql, _ = warehouse
    with pytest.raises(ValueError, match=message) as raised:
        sql.query(text)
    # the project's own error (the CLI prints its message), still a ValueError for the alert verdict
    assert isinstance(raised.value, WarehouseError) and isinstance(raised.value, MlopsError)


def test_rows_come_back_as_plain_python_values(warehouse):
    # given
    sql, root = warehouse
    window = pa.struct([("start", pa.timestamp("us", tz="UTC")), ("end", pa.timestamp("us", tz="UTC"))])
    start = datetime(2013, 6, 3, tzinfo=UTC)
    table = pa.table(
        {
            "window": pa.array([{"start": start, "end": start}], type=window),
            "day": pa.array([date(2013, 6, 3)]),
            "amount": pa.array([Decimal("1.25")], type=pa.decimal128(5, 2)),
        }
    )
    write(root, "dev.ml.typed", table)

    # when
    rows = sql.query(
        "SELECT `window`.start AS s, `window`, day, amount, CAST(0.5 AS DECIMAL(3, 2)) AS d FROM dev.ml.typed"
    )

    # then
    assert rows == [
        {"s": start, "window": {"start": start, "end": start}, "day": date(2013, 6, 3), "amount": 1.25, "d": 0.5}
    ]
    assert rows[0]["s"].tzinfo is UTC


def test_two_catalogs_and_the_latest_version_of_each_table(warehouse):
    sql, root = warehouse
    write(root, "dev.ml.a", pa.table({"k": [1, 2], "v": ["x", "y"]}))
    write(root, "staging.ml.b", pa.table({"k": [2], "w": [10]}))
    write_deltalake(str(root / "dev" / "ml" / "a"), pa.table({"k": [3], "v": ["z"]}), mode="append")

    rows = sql.query("SELECT a.k, v, w FROM dev.ml.a a LEFT JOIN staging.ml.b b ON a.k = b.k ORDER BY a.k")

    assert rows == [{"k": 1, "v": "x", "w": None}, {"k": 2, "v": "y", "w": 10}, {"k": 3, "v": "z", "w": None}]


def test_a_missing_metric_table_says_which_command_creates_it(warehouse):
    sql, root = warehouse
    path = root / "dev" / "monitoring" / "t_profile_metrics"

    with pytest.raises(ValueError) as error:
        sql.query("SELECT COUNT(*) AS n FROM dev.monitoring.t_profile_metrics")

    assert str(error.value) == (
        f"table dev.monitoring.t_profile_metrics does not exist (no Delta table at {path}): it is a quality "
        "monitor's metric table, run mlops monitor --env dev first"
    )


def test_a_missing_metric_table_of_a_table_without_rows_says_so(warehouse):
    # Given nothing served yet: no served-requests table, so the monitor has no metric table for it
    sql, root = warehouse
    served = next(m for m in monitored_tables(DEV) if m.table == DEV.served_table)
    path = root.joinpath(*served.profile_metrics_table.split("."))

    with pytest.raises(ValueError) as error:
        sql.query(f"SELECT COUNT(*) AS n FROM {served.profile_metrics_table}")

    assert str(error.value) == (
        f"table {served.profile_metrics_table} does not exist (no Delta table at {path}): it is the quality "
        f"monitor's metric table of {DEV.served_table}, which has no rows yet (nothing scored or served there so "
        "far); mlops monitor --env dev creates it once there are"
    )
    # and once the served table exists, the missing metric table only wants the monitor
    write(root, DEV.served_table, pa.table({"x": [1]}))
    with pytest.raises(ValueError, match="run mlops monitor --env dev first"):
        sql.query(f"SELECT COUNT(*) AS n FROM {served.profile_metrics_table}")


def test_a_missing_table_that_is_not_a_metric_table_only_says_it_is_missing(warehouse):
    sql, root = warehouse
    with pytest.raises(ValueError) as error:
        sql.query("SELECT * FROM dev.ml.nothing")
    assert str(error.value) == f"table dev.ml.nothing does not exist (no Delta table at {root / 'dev/ml/nothing'})"


def test_a_failing_query_quotes_duckdb_and_the_databricks_text(warehouse):
    sql, root = warehouse
    write(root, "dev.ml.a", pa.table({"k": [1]}))

    with pytest.raises(ValueError) as error:
        sql.query("-- which query\nSELECT no_such_column FROM dev.ml.a")

    message = str(error.value)
    assert message.startswith("the query failed on the local warehouse (DuckDB): Binder Error")
    assert "no_such_column" in message
    assert "Databricks SQL: -- which query | SELECT no_such_column FROM dev.ml.a" in message


def test_python_value_flattens_decimals_and_zones():
    aware = datetime(2013, 6, 3, 2, tzinfo=UTC).astimezone()
    assert python_value({"a": [Decimal("2.5")], "t": aware}) == {"a": [2.5], "t": datetime(2013, 6, 3, 2, tzinfo=UTC)}


def test_an_alert_row_reads_as_names_and_short_values():
    row = {
        "windows": 4,
        "latest_worst_psi": 0.5401466859851719,
        "latest_window": datetime(2013, 7, 1, tzinfo=UTC),
        "since": datetime(2013, 7, 1, 6, 30, tzinfo=UTC),
        "model_version": "7",
    }
    assert describe_alert_row(row) == (
        "windows=4, latest_worst_psi=0.540, latest_window=2013-07-01, since=2013-07-01T06:30:00+00:00, model_version=7"
    )
