"""The online store: the latest prediction per key of a model in a DynamoDB table, read by key at low latency.

One boto3 adapter (``DynamoDBOnlineStore``) serves both sides. On Databricks it talks to DynamoDB with the access key
kept in the environment's secret scope (``online_store.secret_scope``, keys ``aws_access_key_id`` and
``aws_secret_access_key``), read through ``dbutils.secrets`` when the job first needs the store. Locally
(``local.dynalite``) it talks to dynalite, a DynamoDB server on a loopback port, with dummy credentials. Retries and
back-off are botocore's: ``online_store.retry_mode`` ("adaptive" adds client-side rate limiting to "standard") and
``online_store.max_attempts``. The one loop of this module's own resends what a BatchWriteItem leaves unprocessed,
which botocore counts as a success (step 2 below), bounded by the same ``max_attempts``.

Items (partition key ``<key_name>`` of the model's declaration, a string; see ``to_item``)::

    <key_name>       the parts of the model's online_key joined by "#": "2024-05-01#S12#7"
    the key's parts  each typed: a DATE in ISO, an integer a number, a string as is, a TIMESTAMP ISO 8601 UTC to the
                     millisecond ("2024-05-01T15:00:00.000Z"); the event time beside them when the key lacks it
    prediction       a classifier's class (0 | 1), a regressor's value (a number)
    probability      a classifier's, a number as the predictions table holds it (a regressor has none)
    model_name, model_version, model_alias      the model that scored (alias absent when there was none)
    scored_at_ms     epoch milliseconds (number): the version the write condition compares
    scored_at        the same instant, ISO 8601 UTC; batch_id and source: where the prediction came from

Writes (``put_latest``), by chunks of at most 100 items of distinct keys (BatchGetItem's limit):

1. One strongly consistent BatchGetItem reads the ``scored_at_ms`` the table holds for the chunk's keys (keys it
   leaves unprocessed are read one by one with GetItem, which botocore retries and backs off).
2. A key the table does not hold is written by BatchWriteItem (25 items a request). Items a request leaves
   unprocessed (DynamoDB throttled part of it) are sent again after an exponential back-off with jitter, the request
   counted as one of ``online_store.max_attempts``; what is still unprocessed then is an OnlineStoreError.
3. A key whose stored item is older is written by a conditional PutItem,
   ``attribute_not_exists(<key_name>) OR scored_at_ms < :new``, a few at a time; a ConditionalCheckFailed (another
   writer got there first with a newer prediction) counts as kept newer.
4. A key whose stored item is as new (same ``scored_at_ms``: unchanged) or newer (kept newer) is not written: a
   republish of what is already there costs reads only.

Guaranteed: an item the table held when its chunk was read is never replaced by an older prediction (DynamoDB checks
the condition of step 3 atomically), and predictions of the same millisecond never replace each other (the first
one published stays). What remains: BatchWriteItem carries no condition, so when two publishers write the same *new*
key in the milliseconds between one's BatchGetItem and its BatchWriteItem, the older prediction can win. Only two
publish runs overlapping on the same key can do that (the batch and the streaming jobs both publish); the next
publish whose lookback window still covers that key's newest prediction repairs it (step 3). botocore retries and
backs off on throttling *errors* only; a partly throttled batch write is a success to it, hence step 2's own resend.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal, Protocol

from spec.columns import PREDICTION, PROBABILITY
from spec.errors import MlopsError

if TYPE_CHECKING:
    from botocore.config import Config

    from spec.config import Environment
    from spec.config import OnlineStore as OnlineStoreSettings
    from spec.model import ModelSpec

logger = logging.getLogger(__name__)

Item = dict[str, Any]
VERSION = "scored_at_ms"
# BatchGetItem reads at most 100 keys a request.
CHUNK_SIZE = 100
# The partition key attribute in expressions, by placeholder: a model names it (``key_name``), and may name it with
# one of DynamoDB's reserved words.
KEY_PLACEHOLDER = "#key"
NEWER_CONDITION = f"attribute_not_exists({KEY_PLACEHOLDER}) OR {VERSION} < :new"
# Conditional puts sent at once: one request each, so a few in parallel keep the latency per item down.
PUT_WORKERS = 8
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30
# BatchWriteItem writes at most 25 items a request.
BATCH_WRITE_SIZE = 25
# The back-off before resending unprocessed items: full jitter up to base * 2^(attempt - 1), at most the cap.
RESEND_BASE_SECONDS = 0.05
RESEND_CAP_SECONDS = 5.0
# DynamoDB creates an on-demand table in seconds; dynalite in half a second.
TABLE_WAITER = {"Delay": 1, "MaxAttempts": 120}
SECRET_KEYS = ("aws_access_key_id", "aws_secret_access_key")
# What a prediction row carries besides the model's key and outputs (``row_fields``).
_METADATA = ("model_name", "model_version", "model_alias", "scored_at_ms", "batch_id", "source")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def millis_fields(spec: ModelSpec) -> tuple[str, ...]:
    """The instants of a prediction row that a publisher hands ``to_item`` as epoch milliseconds (``<name>_ms``), so
    no time zone of the process that reads them can shift them: the key's TIMESTAMP parts, the event time, scored_at."""
    key_times = tuple(c.name for c in spec.key if c.type == "TIMESTAMP")
    return (*key_times, *spec.event_time_in_rows, "scored_at")


def row_fields(spec: ModelSpec) -> tuple[str, ...]:
    """What a publisher hands ``to_item``: the key's parts, the event time, the outputs and where they came from."""
    key = tuple(f"{c.name}_ms" if c.type == "TIMESTAMP" else c.name for c in spec.key)
    event_time = tuple(f"{name}_ms" for name in spec.event_time_in_rows)
    return (*key, *event_time, *spec.outputs, *_METADATA)


def _required(spec: ModelSpec) -> tuple[str, ...]:
    key = tuple(f"{c.name}_ms" if c.type == "TIMESTAMP" else c.name for c in spec.key)
    return (*key, *spec.outputs, "model_name", "model_version", VERSION)


class OnlineStoreError(MlopsError):
    """The online store cannot be reached or used; the message names the table, what failed and how to fix it."""


Action = Literal["insert", "replace", "kept_newer", "unchanged"]


@dataclass(frozen=True)
class WriteCounts:
    """What ``put_latest`` did, item by item."""

    inserted: int = 0
    replaced: int = 0
    kept_newer: int = 0
    unchanged: int = 0

    @property
    def written(self) -> int:
        return self.inserted + self.replaced

    def __add__(self, other: WriteCounts) -> WriteCounts:
        return WriteCounts(
            self.inserted + other.inserted,
            self.replaced + other.replaced,
            self.kept_newer + other.kept_newer,
            self.unchanged + other.unchanged,
        )


class OnlineStore(Protocol):
    """What the publish job needs from the online store."""

    table_name: str

    def ensure_table(self) -> None:
        """The table exists and is active; created (on demand capacity) when the config allows it."""
        ...

    def put_latest(self, items: Iterable[Item]) -> WriteCounts:
        """Write items of distinct keys, never replacing a stored item by an older one (see the module doc)."""
        ...

    def get(self, key: str) -> Item | None: ...

    def count(self) -> int: ...


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)


# The item layout: pure functions, shared by the publisher, the lookups and their tests.


def _noun(spec: ModelSpec) -> str:
    return spec.key_name.replace("_", " ")


def _key_part(spec: ModelSpec, name: str, sql_type: str, value: Any) -> str:
    """One part of the partition key as text; a ValueError naming it when it cannot be one."""
    what = f"{_noun(spec)} part {name!r}"
    if sql_type == "STRING":
        if not isinstance(value, str) or not value or "#" in value:
            raise ValueError(f"{what} must be a non-empty string without '#', got {value!r}")
        return value
    if sql_type == "DATE":
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ValueError(f"{what} must be a date, got {value!r}")
        return value.isoformat()
    if sql_type in ("BIGINT", "INT", "TIMESTAMP"):
        # A TIMESTAMP part comes as epoch milliseconds (``row_fields``).
        if isinstance(value, bool) or not isinstance(value, int) or (sql_type != "TIMESTAMP" and value < 0):
            kind = "epoch milliseconds (an integer)" if sql_type == "TIMESTAMP" else "a non-negative integer"
            raise ValueError(f"{what} must be {kind}, got {value!r}")
        return iso_millis(value) if sql_type == "TIMESTAMP" else str(value)
    if sql_type == "BOOLEAN":
        if not isinstance(value, bool):
            raise ValueError(f"{what} must be a boolean, got {value!r}")
        return "true" if value else "false"
    return str(number(value, what))


def online_key(spec: ModelSpec, row: Mapping[str, Any]) -> str:
    """The partition key of a row: the parts of the model's ``online_key`` joined by "#", each as ``key_id`` of
    ``jobs.core.requests`` writes it (a TIMESTAMP to the millisecond); a ValueError naming a part that cannot be one."""
    types = {c.name: c.type for c in spec.key}
    parts = []
    for name in spec.online_key:
        field = f"{name}_ms" if types[name] == "TIMESTAMP" else name
        parts.append(_key_part(spec, name, types[name], row.get(field)))
    return "#".join(parts)


def iso_millis(epoch_ms: int) -> str:
    """Epoch milliseconds as ISO 8601 in UTC, to the millisecond: ``2024-05-01T10:00:00.000Z``."""
    instant = _EPOCH + timedelta(milliseconds=int(epoch_ms))
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def number(value: float, what: str) -> Decimal:
    """A finite number as a DynamoDB number: the shortest decimal that reads back as the same double."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return Decimal(repr(float(value)))


def probability_number(value: float) -> Decimal:
    """A probability as a DynamoDB number (``number``), checked to lie in [0, 1]."""
    decimal = number(value, "probability")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"probability must be between 0 and 1, got {value!r}")
    return decimal


def _attribute(value: Any, sql_type: str, name: str) -> Any:
    """A key part as an item attribute, in its type."""
    if sql_type == "DATE":
        return value.isoformat()
    if sql_type in ("BIGINT", "INT"):
        return int(value)
    if sql_type == "TIMESTAMP":
        return iso_millis(value)
    if sql_type == "DOUBLE":
        return number(value, name)
    if sql_type == "BOOLEAN":
        return bool(value)
    return value


def to_item(spec: ModelSpec, row: Mapping[str, Any]) -> Item:
    """The DynamoDB item of one prediction row (``row_fields``); a ValueError naming the field when it is invalid."""
    missing = [name for name in _required(spec) if row.get(name) is None]
    if missing:
        raise ValueError(f"prediction row {_describe(spec, row)} has no value for {', '.join(missing)}")
    item: Item = {spec.key_name: online_key(spec, row)}
    for column in spec.key:
        field = f"{column.name}_ms" if column.type == "TIMESTAMP" else column.name
        item[column.name] = _attribute(row[field], column.type, column.name)
    prediction = row[PREDICTION]
    if spec.is_classifier:
        if prediction not in (0, 1) or isinstance(prediction, bool):
            raise ValueError(f"prediction row {_describe(spec, row)}: prediction must be 0 or 1, got {prediction!r}")
        item[PREDICTION] = int(prediction)
        item[PROBABILITY] = probability_number(row[PROBABILITY])
    else:
        item[PREDICTION] = number(prediction, "prediction")
    item.update(
        {
            "model_name": str(row["model_name"]),
            "model_version": str(row["model_version"]),
            VERSION: int(row[VERSION]),
            "scored_at": iso_millis(row[VERSION]),
        }
    )
    optional = {
        **{name: _instant(row.get(f"{name}_ms")) for name in spec.event_time_in_rows},
        "model_alias": row.get("model_alias"),
        "batch_id": row.get("batch_id"),
        "source": row.get("source"),
    }
    # DynamoDB has no null worth storing: an attribute without a value is left out.
    item.update({name: str(value) for name, value in optional.items() if value not in (None, "")})
    return item


def _instant(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else iso_millis(epoch_ms)


def _describe(spec: ModelSpec, row: Mapping[str, Any]) -> str:
    return "(" + ", ".join(f"{name}={row.get(name)!r}" for name in spec.online_key) + ")"


def plan(new_version: int, stored_version: int | None) -> Action:
    """What to do with an item given the version the table holds for its key (None: the key is new)."""
    if stored_version is None:
        return "insert"
    if stored_version < new_version:
        return "replace"
    return "unchanged" if stored_version == new_version else "kept_newer"


def chunked(items: Iterable[Item], size: int = CHUNK_SIZE) -> Iterator[list[Item]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def check_distinct_keys(chunk: list[Item], partition_key: str) -> list[str]:
    """The chunk's keys; a ValueError when two items share one (a batch request rejects duplicate keys)."""
    keys = [item[partition_key] for item in chunk]
    if len(set(keys)) != len(keys):
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        noun = partition_key.replace("_", " ")
        raise ValueError(f"items share the {noun}s {duplicates}: publish one item (the latest) per key")
    return keys


def client_config(settings: OnlineStoreSettings) -> Config:
    """botocore's retries as configured (mode and attempts), bounded timeouts, a connection per put worker, and no
    client-side parameter validation: ``to_item`` builds every item, DynamoDB validates each request anyway (a
    ValidationException is a ClientError like any other), and botocore's walk over every attribute of every item was
    a large share of a publish's time against dynalite.

    ``online_store.max_attempts`` counts every attempt, the first included (1: no retry), as AWS_MAX_ATTEMPTS does:
    botocore's ``total_max_attempts``. Its ``max_attempts`` would count retries only, one attempt more."""
    from botocore.config import Config

    return Config(
        region_name=settings.region,
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        max_pool_connections=PUT_WORKERS * 2,
        parameter_validation=False,
    )


class DynamoDBOnlineStore:
    """The online store as a DynamoDB table, through boto3 (DynamoDB on AWS, dynalite locally)."""

    def __init__(
        self, resource: Any, table_name: str, settings: OnlineStoreSettings, where: str, partition_key: str
    ) -> None:
        self.table_name = table_name
        # The model's key_name: the partition key attribute of every item.
        self.partition_key = partition_key
        self.settings = settings
        self.where = where
        # The resource's client applies boto3's DynamoDB type conversions and, unlike resources, is thread-safe.
        self.client = resource.meta.client
        self.sleep: Callable[[float], None] = time.sleep

    @classmethod
    def connect(
        cls,
        table_name: str,
        settings: OnlineStoreSettings,
        credentials: Credentials,
        endpoint_url: str | None = None,
        *,
        partition_key: str,
    ) -> DynamoDBOnlineStore:
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            region_name=settings.region,
        )
        resource = session.resource("dynamodb", endpoint_url=endpoint_url, config=client_config(settings))
        return cls(resource, table_name, settings, endpoint_url or f"AWS region {settings.region}", partition_key)

    def ensure_table(self) -> None:
        if not self._table_exists():
            self._create_missing_table()
        with self._failures("waiting for the table to be active (table_exists waiter)"):
            self.client.get_waiter("table_exists").wait(TableName=self.table_name, WaiterConfig=TABLE_WAITER)

    def put_latest(self, items: Iterable[Item]) -> WriteCounts:
        counts = WriteCounts()
        with ThreadPoolExecutor(PUT_WORKERS, thread_name_prefix="online-put") as pool:
            for chunk in chunked(items):
                counts += self._put_chunk(chunk, pool)
        return counts

    def get(self, key: str) -> Item | None:
        with self._failures("reading an item (GetItem)"):
            response = self.client.get_item(
                TableName=self.table_name, Key={self.partition_key: key}, ConsistentRead=True
            )
        return response.get("Item")

    def count(self) -> int:
        with self._failures("counting the items (Scan)"):
            pages = self.client.get_paginator("scan").paginate(TableName=self.table_name, Select="COUNT")
            return sum(page["Count"] for page in pages)

    def _table_exists(self) -> bool:
        from botocore.exceptions import ClientError

        with self._failures("describing the table (DescribeTable)"):
            try:
                self.client.describe_table(TableName=self.table_name)
            except ClientError as e:
                if _code(e) == "ResourceNotFoundException":
                    return False
                raise
        return True

    def _create_missing_table(self) -> None:
        from botocore.exceptions import ClientError

        if not self.settings.create_table:
            raise OnlineStoreError(
                f"DynamoDB table {self.table_name!r} ({self.where}) does not exist: create it (partition key "
                f"{self.partition_key!r}, a string) or set online_store.create_table for this environment"
            )
        logger.info("creating DynamoDB table %s (%s, on-demand capacity)", self.table_name, self.where)
        with self._failures("creating the table (CreateTable)"):
            try:
                self.client.create_table(
                    TableName=self.table_name,
                    KeySchema=[{"AttributeName": self.partition_key, "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": self.partition_key, "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            except ClientError as e:
                # Another publisher created it in the meantime: the waiter waits for it as well.
                if _code(e) != "ResourceInUseException":
                    raise

    def _put_chunk(self, chunk: list[Item], pool: ThreadPoolExecutor) -> WriteCounts:
        keys = check_distinct_keys(chunk, self.partition_key)
        with self._failures("reading the stored versions (BatchGetItem)"):
            stored = self._stored_versions(keys)
        actions = [plan(item[VERSION], stored.get(item[self.partition_key])) for item in chunk]
        inserts = [item for item, action in zip(chunk, actions, strict=True) if action == "insert"]
        replaces = [item for item, action in zip(chunk, actions, strict=True) if action == "replace"]
        with self._failures("writing new items (BatchWriteItem)"):
            for start in range(0, len(inserts), BATCH_WRITE_SIZE):
                self._write_batch(inserts[start : start + BATCH_WRITE_SIZE])
        with self._failures("replacing older items (conditional PutItem)"):
            replaced = sum(pool.map(self._put_if_newer, replaces))
        return WriteCounts(
            inserted=len(inserts),
            replaced=replaced,
            kept_newer=actions.count("kept_newer") + len(replaces) - replaced,
            unchanged=actions.count("unchanged"),
        )

    def _write_batch(self, items: list[Item]) -> None:
        """One BatchWriteItem of ``items``; what it leaves unprocessed is sent again after a jittered exponential
        back-off, up to ``max_attempts`` requests in all, then an OnlineStoreError saying how many were not written."""
        requests = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in range(1, self.settings.max_attempts + 1):
            response = self.client.batch_write_item(RequestItems={self.table_name: requests})
            requests = response.get("UnprocessedItems", {}).get(self.table_name, [])
            if not requests:
                return
            if attempt < self.settings.max_attempts:
                self.sleep(random.uniform(0, min(RESEND_CAP_SECONDS, RESEND_BASE_SECONDS * 2 ** (attempt - 1))))
        raise OnlineStoreError(
            f"DynamoDB table {self.table_name!r} ({self.where}): {len(requests)} of {len(items)} items were left "
            f"unprocessed (throttled) by {self.settings.max_attempts} BatchWriteItem requests "
            "(online_store.max_attempts); the others are written, and publishing again writes the rest"
        )

    def _stored_versions(self, keys: list[str]) -> dict[str, int]:
        request = {
            "ConsistentRead": True,
            "ProjectionExpression": f"{KEY_PLACEHOLDER}, {VERSION}",
            "ExpressionAttributeNames": {KEY_PLACEHOLDER: self.partition_key},
        }
        response = self.client.batch_get_item(
            RequestItems={self.table_name: {"Keys": [{self.partition_key: key} for key in keys], **request}}
        )
        found = response.get("Responses", {}).get(self.table_name, [])
        # Keys DynamoDB could not serve now (throttled, size): one GetItem each, retried and backed off by botocore.
        unprocessed = response.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
        for key in unprocessed:
            item = self.client.get_item(TableName=self.table_name, Key=key, **request).get("Item")
            if item is not None:
                found.append(item)
        return {item[self.partition_key]: int(item[VERSION]) for item in found if VERSION in item}

    def _put_if_newer(self, item: Item) -> bool:
        """True when written; False when the table holds a prediction at least as new (checked by DynamoDB)."""
        from botocore.exceptions import ClientError

        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression=NEWER_CONDITION,
                ExpressionAttributeNames={KEY_PLACEHOLDER: self.partition_key},
                ExpressionAttributeValues={":new": item[VERSION]},
            )
        except ClientError as e:
            if _code(e) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    @contextmanager
    def _failures(self, operation: str) -> Iterator[None]:
        """botocore's errors (after its retries) as one OnlineStoreError naming the table and the operation."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as e:
            if _code(e) == "ResourceNotFoundException":
                raise OnlineStoreError(
                    f"DynamoDB table {self.table_name!r} ({self.where}) does not exist: {operation} failed; publish "
                    "first (mlops-publish creates it when online_store.create_table is set)"
                ) from e
            retries = f"{self.settings.retry_mode} retries, at most {self.settings.max_attempts} attempts"
            raise OnlineStoreError(
                f"DynamoDB table {self.table_name!r} ({self.where}): {operation} failed ({retries}): {e}"
            ) from e


def _code(error: Exception) -> str:
    return getattr(error, "response", {}).get("Error", {}).get("Code", "")


def databricks_online_store(env: Environment) -> Callable[[], OnlineStore]:
    """The store of a job run on Databricks: DynamoDB with the access key of the environment's secret scope."""

    def build() -> OnlineStore:
        settings = env.online_store
        credentials = Credentials(*(_secret(settings.secret_scope, key) for key in SECRET_KEYS))
        return DynamoDBOnlineStore.connect(
            env.online_table_name, settings, credentials, settings.endpoint_url, partition_key=env.model.key_name
        )

    return build


def _secret(scope: str, key: str) -> str:
    # dbutils only exists on a Databricks compute, hence the import here.
    from databricks.sdk.runtime import dbutils

    try:
        return dbutils.secrets.get(scope=scope, key=key)
    # The secrets backend differs between clusters (py4j) and serverless (the SDK): each raises its own error type.
    except Exception as e:
        raise OnlineStoreError(
            f"cannot read the secret {key!r} of the secret scope {scope!r} ({e}): put the online store's AWS access "
            f"key there (databricks secrets put-secret {scope} {key}) and grant the job's principal READ on the scope"
        ) from e


def no_online_store() -> OnlineStore:
    raise OnlineStoreError(
        "the online store's credentials are read from the secret scope inside a Databricks job run; "
        "they are not available outside one"
    )
