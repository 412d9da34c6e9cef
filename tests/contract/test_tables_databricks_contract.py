"""The Databricks tables adapter's Delta history: what a write records (``userMetadata``) and what is read back from
``DESCRIBE HISTORY``. No cluster can be reached from here, and local Spark has no Delta, so a stand-in session plays
the catalog: it records each writer's options and answers the history queries from the commits made."""

from __future__ import annotations

import pytest

from jobs.platform.tables import DatabricksTables, TableContent, TableWrite, content_metadata

pytestmark = pytest.mark.contract

TABLE = "prod.raw.flights"


class Catalog:
    """Tables by name, each a list of commits (newest last) as ``DESCRIBE HISTORY`` shows them."""

    def __init__(self) -> None:
        self.history: dict[str, list[dict]] = {}
        self.queries: list[str] = []
        self.catalog = self

    def tableExists(self, name: str) -> bool:  # noqa: N802 (Spark's name)
        return name in self.history

    def sql(self, query: str) -> Answer:
        self.queries.append(query)
        name, limit = query.removeprefix("DESCRIBE HISTORY ").partition(" LIMIT ")[::2]
        commits = list(reversed(self.history.get(name, [])))
        return Answer(commits[: int(limit)] if limit else commits)


class Answer:
    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def collect(self) -> list[dict]:
        return self.rows


class Writer:
    """``df.write``: each option recorded; ``saveAsTable`` commits the frame's rows with them."""

    def __init__(self, catalog: Catalog, rows: int) -> None:
        self.catalog, self.rows, self.options = catalog, rows, {}

    def format(self, _: str) -> Writer:
        return self

    def mode(self, mode: str) -> Writer:
        self.options["mode"] = mode
        return self

    def option(self, key: str, value) -> Writer:
        self.options[key] = value
        return self

    def saveAsTable(self, name: str) -> None:  # noqa: N802 (Spark's name)
        commits = self.catalog.history.setdefault(name, [])
        commits.append(
            {
                "version": len(commits),
                "userMetadata": self.options.get("userMetadata"),
                "operationMetrics": {"numOutputRows": str(self.rows)},
                "options": dict(self.options),
            }
        )


class Frame:
    """A DataFrame that can be written and nothing else: a write that counted it first (computing it twice on
    Databricks) fails."""

    def __init__(self, catalog: Catalog, rows: int) -> None:
        self.write = Writer(catalog, rows)


@pytest.fixture
def catalog() -> Catalog:
    return Catalog()


def test_a_write_with_content_records_it_and_it_is_read_back_until_the_next_commit(catalog):
    tables = DatabricksTables(lambda: catalog)
    assert tables.last_content(TABLE) is None

    written = tables.write(Frame(catalog, 3), TABLE, content=content_metadata("ab12"))
    held = tables.last_content(TABLE)
    tables.write(Frame(catalog, 1), TABLE, "append")

    assert written == TableWrite(TABLE, 0, 3)
    assert catalog.history[TABLE][0]["options"] == {
        "mode": "overwrite",
        "overwriteSchema": "true",
        "userMetadata": "mlops-content ab12",
    }
    assert held == TableContent("ab12", 3, 0)
    assert tables.last_content(TABLE) is None  # another commit since: the table may hold other rows
    assert (tables.version(TABLE), catalog.queries[-1]) == (1, f"DESCRIBE HISTORY {TABLE} LIMIT 1")


def test_a_write_without_content_records_no_metadata(catalog):
    DatabricksTables(lambda: catalog).write(Frame(catalog, 2), TABLE)

    assert "userMetadata" not in catalog.history[TABLE][0]["options"]


def test_a_table_without_history_is_named(catalog):
    catalog.history[TABLE] = []

    with pytest.raises(ValueError, match=f"table '{TABLE}' has no Delta history"):
        DatabricksTables(lambda: catalog).version(TABLE)
