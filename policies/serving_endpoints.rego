# Rule: every `databricks_model_serving` endpoint logs to an inference table
# (`ai_gateway.inference_table_config.enabled = true`) and has a `databricks_permissions` on its
# `serving_endpoint_id` that grants CAN_QUERY to at least one consumer; CAN_QUERY on an endpoint goes only to named
# principals: a `group_name` other than the built-in "users" / "account users", or a `service_principal_name`;
# never a `user_name` (a person).
#
# Why: the inference table is what the quality monitor and the drift alerts read; an endpoint without it is
# unmonitored. Without explicit permissions an endpoint is reachable by whoever its creator lets in; a per-person
# or all-users grant cannot be reviewed and does not leave with the person; an endpoint only its managers may
# query serves nobody (the applications that call it get 403).
#
# Good:
#     resource "databricks_model_serving" "ep" {
#       ai_gateway { inference_table_config { enabled = true  catalog_name = "prod"  schema_name = "monitoring" } }
#     }
#     resource "databricks_permissions" "ep" {
#       serving_endpoint_id = databricks_model_serving.ep.serving_endpoint_id
#       access_control { group_name = "ml-engineers"  permission_level = "CAN_QUERY" }
#     }
# Bad:   no ai_gateway block (or enabled = false); no databricks_permissions for the endpoint, or one with only
#        CAN_MANAGE entries;
#        access_control { user_name = "alice@example.com"  permission_level = "CAN_QUERY" };
#        access_control { group_name = "users"  permission_level = "CAN_QUERY" }.
#
# Fix: see infra/constructs/serving.py: the endpoint enables its inference table, and `env.serving.consumers`
# (groups; spec/config.py rejects an empty list) are the only ones granted CAN_QUERY.
package mlops.serving_endpoints

import data.mlops.lib

_everyone := {"users", "account users"}

findings contains finding if {
	some endpoint in lib.of_type("databricks_model_serving")
	not _logs_inference(endpoint)
	finding := {
		"address": endpoint.address,
		"msg": concat("", [
			endpoint.address, " has no inference table: set ai_gateway.inference_table_config.enabled = true ",
			"(with catalog_name and schema_name) so requests and responses reach the monitor",
		]),
	}
}

findings contains finding if {
	some endpoint in lib.of_type("databricks_model_serving")
	count([p | some p in lib.of_type("databricks_permissions"); _governs(p, endpoint)]) == 0
	finding := {
		"address": endpoint.address,
		"msg": concat("", [
			endpoint.address, " has no databricks_permissions: declare one with serving_endpoint_id = ",
			endpoint.address, ".serving_endpoint_id that grants CAN_QUERY to named groups or service principals",
		]),
	}
}

findings contains finding if {
	some p in lib.of_type("databricks_permissions")
	lib.is_set(p.values.serving_endpoint_id)
	some entry in object.get(p.values, "access_control", [])
	entry.permission_level == "CAN_QUERY"
	who := _unnamed(entry)
	finding := {
		"address": p.address,
		"msg": concat("", [
			p.address, " grants CAN_QUERY to ", who,
			": grant it to named groups (group_name) or service principals (service_principal_name) only",
		]),
	}
}

findings contains finding if {
	some p in lib.of_type("databricks_permissions")
	lib.is_set(p.values.serving_endpoint_id)
	count([entry |
		some entry in object.get(p.values, "access_control", [])
		entry.permission_level == "CAN_QUERY"
		not _unnamed(entry)
	]) == 0
	finding := {
		"address": p.address,
		"msg": concat("", [
			p.address, " grants CAN_QUERY to no named consumer: add the groups or service principals that call ",
			"the endpoint (serving.consumers in spec/config.py)",
		]),
	}
}

deny contains f.msg if some f in findings

_logs_inference(endpoint) if {
	gateway := lib.block(object.get(endpoint.values, "ai_gateway", null))
	lib.block(object.get(gateway, "inference_table_config", null)).enabled == true
}

_governs(permissions, endpoint) if lib.points_to(permissions.values.serving_endpoint_id, endpoint, "serving_endpoint_id")

_unnamed(entry) := concat(" ", ["the person", entry.user_name]) if lib.is_set(entry.user_name)

_unnamed(entry) := concat(" ", ["the group", entry.group_name]) if {
	lib.is_set(entry.group_name)
	lower(entry.group_name) in _everyone
}
