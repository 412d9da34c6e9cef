# Rule: what the project owns is owned by a group or a service principal, never by a person. A principal name with
# "@" is a person. Checked on:
#   - every `owner` attribute (catalogs, schemas, registered models, volumes, tables, ...), and catalogs, schemas and
#     registered models must declare one (without it, whoever applies the plan becomes the owner);
#   - `databricks_job.run_as`: `user_name` is a person, `service_principal_name` is fine;
#   - `databricks_permissions`: IS_OWNER for a `user_name` (jobs, pipelines), CAN_MANAGE for a `user_name` on a
#     serving endpoint (an endpoint has no owner field: whoever manages it owns it);
#   - in protected environments (staging, prod), every job runs as that environment's service principal (the
#     `databricks_service_principal` whose display_name is `service_principal` in spec/config.py).
#
# Why: people leave and change teams; a catalog owned by a person, or a prod job that runs with a person's
# rights, breaks or leaks when they do. Prod jobs act with the prod service principal's grants and nothing else.
#
# Good:  owner = "ml-engineers"
#        run_as { service_principal_name = databricks_service_principal.prod.application_id }
# Bad:   owner = "alice@example.com"
#        run_as { user_name = "alice@example.com" }
#
# Fix: set `owner` to a group (spec/access.py owner()) or the service principal's application id, and
# `run_as.service_principal_name` to the environment's service principal.
package mlops.owners_not_people

import data.mlops.lib

findings contains finding if {
	some r in lib.resources
	owner := r.values.owner
	lib.is_person(owner)
	finding := {
		"address": r.address,
		"msg": concat("", [
			r.address, " is owned by the person ", owner,
			": set owner to a group or to the service principal's application id",
		]),
	}
}

# Unity Catalog securables without an owner are owned by whoever applies the plan: possibly a person.
_must_declare_owner := {"databricks_catalog", "databricks_schema", "databricks_registered_model"}

findings contains finding if {
	some r in lib.resources
	r.type in _must_declare_owner
	not lib.is_set(object.get(r.values, "owner", null))
	finding := {
		"address": r.address,
		"msg": concat("", [
			r.address, " declares no owner, so whoever applies it owns it",
			": set owner to a group or to the service principal's application id",
		]),
	}
}

findings contains finding if {
	some job in lib.of_type("databricks_job")
	user := _run_as(job).user_name
	lib.is_set(user)
	finding := {
		"address": job.address,
		"msg": concat("", [
			job.address, " runs as the user ", user,
			": set run_as.service_principal_name to the service principal's application id instead",
		]),
	}
}

findings contains finding if {
	some r in lib.of_type("databricks_permissions")
	some entry in object.get(r.values, "access_control", [])
	lib.is_person(entry.user_name)
	_owning_level(r, entry.permission_level)
	finding := {
		"address": r.address,
		"msg": concat("", [
			r.address, " gives ", entry.permission_level, " to the person ", entry.user_name,
			": give it to a group (group_name) or to the service principal (service_principal_name)",
		]),
	}
}

findings contains finding if {
	lib.protected
	some job in lib.of_type("databricks_job")
	not _run_as_user(job)
	not _runs_as_environment_principal(job)
	finding := {
		"address": job.address,
		"msg": concat("", [
			job.address, " does not run as the ", lib.environment, " service principal ",
			lib.env_config.service_principal, ": set run_as.service_principal_name to its application_id",
		]),
	}
}

deny contains f.msg if some f in findings

_run_as(job) := lib.block(object.get(job.values, "run_as", null))

_run_as_user(job) if lib.is_set(_run_as(job).user_name)

_owning_level(_, level) if level == "IS_OWNER"

_owning_level(r, level) if {
	level == "CAN_MANAGE"
	lib.is_set(r.values.serving_endpoint_id)
}

_runs_as_environment_principal(job) if {
	name := _run_as(job).service_principal_name
	some sp in lib.of_type("databricks_service_principal")
	sp.values.display_name == lib.env_config.service_principal
	lib.points_to(name, sp, "application_id")
}
