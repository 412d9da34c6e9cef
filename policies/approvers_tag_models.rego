# Rule: in an environment where promotions wait for a person's approval (`promotion.approval = "manual"` in
# spec/config.py, prod by default), only the approvers group (`approvers_group`, else the ml-engineers group) and the
# jobs' service principal may set tags on its registered models' versions. A grant of APPLY_TAG, MANAGE or
# ALL_PRIVILEGES on the catalog, a schema or a registered model (models inherit the first two) to anyone else is
# flagged, through `databricks_grants` or `databricks_grant` (the data scientists group of a protected environment is
# left to data_scientists_read_only, which flags any write of theirs).
#
# Why: the approval of a model version is its `approval` tag (MLflow 3 deployment jobs' convention; jobs/approval.py).
# Whoever may tag the versions may approve a model into prod: the grant is the platform's refusal of anyone else.
#
# Good (prod, approvers ml-engineers):
#     resource "databricks_grants" "model" {
#       model = "prod.ml.flight_delay"
#       grant { principal = "ml-engineers"     privileges = ["ALL_PRIVILEGES"] }
#       grant { principal = "data-scientists"  privileges = ["EXECUTE"] }
#     }
# Bad (prod):
#     grant { principal = "flight-ops"  privileges = ["EXECUTE", "APPLY_TAG"] }
#
# Fix: remove the tagging privilege from that principal, or make it the environment's approvers group
# (`approvers_group` in spec/config/environments.py), which spec/access.py grants APPLY_TAG on the model.
package mlops.approvers_tag_models

import data.mlops.lib

findings contains finding if {
	lib.env_config.manual_approval == true
	some r in _grant_resources
	_on_models(r)
	some entry in _entries(r)
	is_string(entry.principal)
	not _may_tag(entry.principal)
	privileges := sort({p | some p in entry.privileges; p in {q | some q in lib.config.tagging_privileges}})
	count(privileges) > 0
	finding := {
		"address": r.address,
		"msg": concat("", [
			r.address, " lets ", _shown(entry.principal), " set tags on model versions (", concat(", ", privileges),
			") in ", lib.environment, ", where promotions wait for approval: only the approvers group ",
			lib.env_config.approvers_group, " and the jobs' service principal may approve; remove these privileges ",
			"or make that principal the approvers group (approvers_group in spec/config)",
		]),
	}
}

deny contains f.msg if some f in findings

_grant_resources := [r | some r in lib.resources; r.type in {"databricks_grants", "databricks_grant"}]

_entries(r) := object.get(r.values, "grant", []) if r.type == "databricks_grants"

_entries(r) := [r.values] if r.type == "databricks_grant"

# A model's privileges come from the model, its schema or its catalog.
_on_models(r) if lib.is_set(r.values.catalog)

_on_models(r) if lib.is_set(r.values.schema)

_on_models(r) if lib.is_set(r.values.model)

_may_tag(principal) if lower(principal) == lower(lib.env_config.approvers_group)

# The data scientists of a protected environment are data_scientists_read_only's: any write of theirs is flagged there.
_may_tag(principal) if {
	lib.protected
	lower(principal) == lower(lib.env_config.data_scientists_group)
}

_may_tag(principal) if {
	some sp in lib.of_type("databricks_service_principal")
	sp.values.display_name == lib.env_config.service_principal
	lib.points_to(principal, sp, "application_id")
}

_shown(principal) := shown if {
	shown := lib.resolve(principal)
	not lib.is_reference(shown)
} else := principal
