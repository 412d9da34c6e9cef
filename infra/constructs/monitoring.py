"""The production loop's watch: the monitored tables (declared here, so they exist before their monitors), a
Lakehouse Monitoring quality monitor (``inference_log``) on each, and the SQL alerts on their metric tables.

- Tables: the predictions (``ml``), the served requests (``monitoring``; the labels job unpacks the inference table
  into it) and the baseline (``ml``; each model version's training data scored by it, written by the train job),
  with the columns the environment's model declares (``MonitoredTable.columns``); the jobs write into them.
- Monitors: the problem type (classification or regression, as data profiling names it), timestamp (the model's
  event time), model id, prediction, probability (a classifier's) and label columns from ``spec.monitoring``'s
  ``MonitoredTable``; granularities and slices from ``env.monitoring`` and the model (no schedule: the
  daily-monitoring job refreshes them); the baseline per model version; failures e-mailed.
- Alerts (``databricks_alert_v2``): the query texts of ``spec.monitoring.alerts`` (the local warehouse runs the same
  text), on the environment's SQL warehouse, run as the jobs' service principal, firing when ``triggered`` > 0 and
  notifying the webhook destination and the alert e-mails. An alert whose query fails is in ERROR, not OK.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktn import ITerraformDependable
from cdktn_provider_databricks.alert_v2 import (
    AlertV2,
    AlertV2Evaluation,
    AlertV2EvaluationNotification,
    AlertV2EvaluationNotificationSubscriptions,
    AlertV2EvaluationSource,
    AlertV2EvaluationThreshold,
    AlertV2EvaluationThresholdValue,
    AlertV2RunAs,
    AlertV2Schedule,
)
from cdktn_provider_databricks.directory import Directory
from cdktn_provider_databricks.quality_monitor import (
    QualityMonitor,
    QualityMonitorInferenceLog,
    QualityMonitorNotifications,
    QualityMonitorNotificationsOnFailure,
)
from cdktn_provider_databricks.schema import Schema
from cdktn_provider_databricks.sql_endpoint import SqlEndpoint
from cdktn_provider_databricks.sql_table import SqlTable, SqlTableColumn
from constructs import Construct

from infra.constructs.notifications import Notifications
from spec import monitoring
from spec.config import Environment


def _name(table: str) -> str:
    return table.split(".")[2]


def inference_log(monitored: monitoring.MonitoredTable) -> QualityMonitorInferenceLog:
    """The ``inference_log`` of ``monitored``'s monitor: its problem type and columns (a regressor has no
    probability column)."""
    return QualityMonitorInferenceLog(
        granularities=list(monitored.granularities),
        timestamp_col=monitored.timestamp_col,
        model_id_col=monitoring.MODEL_ID_COL,
        prediction_col=monitoring.PREDICTION_COL,
        prediction_proba_col=monitored.prediction_proba_col,
        label_col=monitoring.LABEL_COL,
        problem_type=monitored.profiling_problem_type,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: Environment,
        schemas: dict[str, Schema],
        warehouse: SqlEndpoint,
        warehouse_ready: ITerraformDependable,
        notifications: Notifications,
        service_principal_id: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.env = env
        self._warehouse = warehouse
        # The alerts run as the jobs' principal: they wait for its permission on the warehouse.
        self._warehouse_ready = warehouse_ready
        watched = monitoring.monitored_tables(env)
        columns = watched[0].columns
        self.tables = {
            table: self._table(table, schemas[table.split(".")[1]], columns)
            for table in (env.predictions_table, env.served_table, env.baseline_table)
        }
        baseline = self._full_name(self.tables[env.baseline_table], env.baseline_table)
        output_schema = f"{schemas['monitoring'].catalog_name}.{schemas['monitoring'].name}"
        self.monitors = {}
        self.assets_dirs = {}
        for monitored in watched:
            # The monitor's dashboard folder, created first (mkdirs: its parents too); the monitor refers to it.
            self.assets_dirs[monitored.table] = Directory(
                self,
                f"assets_{_name(monitored.table)}",
                path=f"{env.monitor_assets_folder.removeprefix('/Workspace')}/{_name(monitored.table)}",
            )
            self.monitors[monitored.table] = QualityMonitor(
                self,
                f"monitor_{_name(monitored.table)}",
                table_name=self._full_name(self.tables[monitored.table], monitored.table),
                baseline_table_name=baseline,
                output_schema_name=output_schema,
                assets_dir=self.assets_dirs[monitored.table].workspace_path,
                inference_log=[inference_log(monitored)],
                slicing_exprs=list(monitored.slicing_exprs),
                # No schedule of its own: the daily-monitoring job refreshes it after the labels, and alerts after.
                notifications=[
                    QualityMonitorNotifications(
                        on_failure=[QualityMonitorNotificationsOnFailure(email_addresses=list(env.alerts.emails))]
                    )
                ]
                if env.alerts.emails
                else None,
                warehouse_id=warehouse.id,
                depends_on=[self.tables[env.baseline_table]],
            )
        subscriptions = [AlertV2EvaluationNotificationSubscriptions(user_email=e) for e in env.alerts.emails]
        if notifications.webhook is not None:
            subscriptions.append(AlertV2EvaluationNotificationSubscriptions(destination_id=notifications.webhook.id))
        self.alerts = {
            spec.name: AlertV2(
                self,
                f"alert_{spec.name}",
                display_name=f"[{env.name}] {spec.name}",
                custom_summary=spec.description,
                query_text=spec.query_text,
                warehouse_id=warehouse.id,
                evaluation=AlertV2Evaluation(
                    source=AlertV2EvaluationSource(name=spec.source_column),
                    comparison_operator="GREATER_THAN",
                    threshold=AlertV2EvaluationThreshold(value=AlertV2EvaluationThresholdValue(double_value=0)),
                    # No row at all means the query is wrong: say so rather than stay OK.
                    empty_result_state="ERROR",
                    notification=AlertV2EvaluationNotification(notify_on_ok=True, subscriptions=subscriptions),
                ),
                # Evaluated by the daily-monitoring job's alert tasks, right after the refresh it reads: its own
                # schedule (required) stays paused, so no clock offset decides the order.
                schedule=AlertV2Schedule(
                    quartz_cron_schedule=env.monitoring.schedule.quartz_cron,
                    timezone_id=env.monitoring.schedule.timezone,
                    pause_status="PAUSED",
                ),
                run_as=AlertV2RunAs(service_principal_name=service_principal_id),
                # The metric tables appear with the monitor's first refresh.
                depends_on=[self.monitors[spec.monitored.table], self._warehouse_ready],
            )
            for spec in monitoring.alerts(env)
        }

    def _table(self, table: str, schema: Schema, columns: Sequence[tuple[str, str]]) -> SqlTable:
        return SqlTable(
            self,
            f"table_{_name(table)}",
            catalog_name=schema.catalog_name,
            schema_name=schema.name,
            name=_name(table),
            table_type="MANAGED",
            data_source_format="DELTA",
            column=[SqlTableColumn(name=n, type=t) for n, t in columns],
            comment=f"{_name(table)} of {self.env.registered_model}; written by the jobs, watched by a quality monitor",
            warehouse_id=self._warehouse.id,
        )

    @staticmethod
    def _full_name(table: SqlTable, full_name: str) -> str:
        """``catalog.schema.table`` with references to the table's catalog and schema: the monitor waits for it."""
        return f"{table.catalog_name}.{table.schema_name}.{_name(full_name)}"
