"""What a writer of ``append_once`` reads back from a table's history (``Tables.appended_since``): rows per
transaction version of its app id, after a version, without reading the table's rows. The streaming job counts its
micro-batches this way."""

from __future__ import annotations

import pytest

from jobs.platform.tables import append_metadata, appended_by
from local.tables import LocalTables

TABLE = "dev.ml.appends"


def test_append_metadata_names_the_app_and_version_and_refuses_a_space():
    assert append_metadata("dev.streaming-inference", 12) == "mlops-append dev.streaming-inference 12"
    with pytest.raises(ValueError, match="without spaces"):
        append_metadata("dev stream", 1)


def test_appended_by_keeps_the_app_ids_own_commits_only():
    commits = [
        ("mlops-append dev.s 3", 10),
        ("mlops-append dev.s.rejects 3", 2),
        (None, 99),
        ("someone else's note", 5),
        ("mlops-append dev.s 4", 0),
    ]
    assert appended_by(commits, "dev.s") == {3: 10, 4: 0}
    assert appended_by(commits, "dev.s.rejects") == {3: 2}
    assert appended_by(commits, "dev.t") == {}


def test_local_tables_count_the_appends_after_a_version(spark, mlops_home):
    tables = LocalTables(lambda: spark)
    assert tables.appended_since(TABLE, "app", None) == {}

    def rows(n: int):
        return spark.createDataFrame([(i,) for i in range(n)], "i INT") if n else spark.createDataFrame([], "i INT")

    tables.append_once(rows(3), TABLE, "app", 0)
    tables.write(rows(7), TABLE, mode="append")  # another writer's commit: not the app's
    before = tables.version(TABLE)
    tables.append_once(rows(5), TABLE, "app", 1)
    tables.append_once(rows(4), TABLE, "other", 1)
    assert tables.append_once(rows(5), TABLE, "app", 1) is None  # a replay: skipped, no commit
    tables.append_once(rows(0), TABLE, "app", 2)  # a micro-batch of no row still commits

    assert tables.appended_since(TABLE, "app", None) == {0: 3, 1: 5, 2: 0}
    assert tables.appended_since(TABLE, "app", before) == {1: 5, 2: 0}
    assert tables.appended_since(TABLE, "other", before) == {1: 4}
    assert tables.appended_since(TABLE, "app", tables.version(TABLE)) == {}
