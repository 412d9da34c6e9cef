# Rule: every table watched by a `databricks_quality_monitor` (or the older `databricks_lakehouse_monitor`) has
# at least one SQL alert in the same stack that reads it: a `databricks_alert_v2` whose `query_text`, or a
# `databricks_alert` whose `databricks_query` (by `query_id`), names the table, or its `_profile_metrics` /
# `_drift_metrics` tables (matched on the table's last name part, case-insensitively).
#
# Why: a monitor only computes metrics; without an alert on them, accuracy decay and drift are recorded and
# nobody is told, and retraining never starts.
#
# Good:
#     resource "databricks_quality_monitor" "predictions" { table_name = "prod.monitoring.predictions" ... }
#     resource "databricks_alert_v2" "accuracy" {
#       query_text = "SELECT ... FROM prod.monitoring.predictions_profile_metrics WHERE ..."  ...
#     }
# Bad:   the monitor alone, or alerts whose queries read other tables.
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

deny contains f.msg if some f in findings

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
