# Rule: every table watched by a `databricks_quality_monitor` (or the older `databricks_lakehouse_monitor`) has
# at least one SQL alert in the same stack that reads it: a `databricks_alert_v2` whose `query_text`, or a
# `databricks_alert` whose `databricks_query` (by `query_id`), names the table, or its `_profile_metrics` /
# `_drift_metrics` tables (matched on the table's last name part, case-insensitively); and every
# `databricks_alert_v2` notifies someone: `evaluation.notification.subscriptions` is not empty.
#
# Why: a monitor only computes metrics; without an alert on them, accuracy decay and drift are recorded and
# nobody is told, and retraining never starts. An alert without a subscription changes state in silence.
#
# Good:
#     resource "databricks_quality_monitor" "predictions" { table_name = "prod.monitoring.predictions" ... }
#     resource "databricks_alert_v2" "accuracy" {
#       query_text = "SELECT ... FROM prod.monitoring.predictions_profile_metrics WHERE ..."  ...
#     }
# Bad:   the monitor alone, or alerts whose queries read other tables; an alert_v2 with no subscriptions.
#
# Fix: declare the alerts with the monitor (thresholds in env.monitoring, spec/config.py) and send them to the
# environment's notification destinations.
package mlops.monitor_alerts

import data.mlops.lib

_monitor_types := {"databricks_quality_monitor", "databricks_lakehouse_monitor"}

findings contains finding if {
	some monitor in lib.resources
	monitor.type in _monitor_types
	table := lib.resolve(monitor.values.table_name)
	short := _short_name(table)
	not _alerted(short)
	finding := {
		"address": monitor.address,
		"msg": concat("", [
			monitor.address, " monitors ", table, " but no SQL alert reads it: add a databricks_alert_v2 whose ",
			"query_text reads ", short, "_profile_metrics, ", short, "_drift_metrics or the table itself",
		]),
	}
}

findings contains finding if {
	some alert in lib.of_type("databricks_alert_v2")
	count(_subscriptions(alert)) == 0
	finding := {
		"address": alert.address,
		"msg": concat("", [
			alert.address, " notifies nobody: add evaluation.notification.subscriptions with the environment's ",
			"notification destination or e-mails (alerts in spec/config.py)",
		]),
	}
}

deny contains f.msg if some f in findings

_subscriptions(alert) := subscriptions if {
	evaluation := lib.block(object.get(alert.values, "evaluation", null))
	notification := lib.block(object.get(evaluation, "notification", null))
	subscriptions := lib.blocks(object.get(notification, "subscriptions", null))
}

_short_name(table) := lower(parts[count(parts) - 1]) if parts := split(table, ".")

_alerted(short) if {
	some alert in lib.of_type("databricks_alert_v2")
	contains(lower(alert.values.query_text), short)
}

_alerted(short) if {
	some alert in lib.of_type("databricks_alert")
	some query in lib.of_type("databricks_query")
	lib.points_to(alert.values.query_id, query, "id")
	contains(lower(query.values.query_text), short)
}
