# Rule: in a protected environment (staging, prod: `data_scientist_access` is not "write" in spec/config.py), the
# data scientists group holds no write privilege on anything: no MODIFY, no CREATE_*, no ALL_PRIVILEGES, MANAGE,
# REFRESH, WRITE_VOLUME, WRITE_FILES or APPLY_TAG, on catalogs, schemas, tables, volumes or registered models,
# through `databricks_grants` or `databricks_grant`.
#
# Why: staging and prod data is written by the jobs' service principal only, so what is there can be traced to
# reviewed code. Data scientists explore in dev, where they write; in prod they read and load models.
#
# Good (prod):
#     resource "databricks_grants" "catalog" {
#       catalog = "prod"
#       grant { principal = "data-scientists"  privileges = ["USE_CATALOG", "USE_SCHEMA", "SELECT"] }
#     }
# Bad (prod):
#     grant { principal = "data-scientists"  privileges = ["USE_CATALOG", "MODIFY"] }
#
# Fix: grant the data scientists group only the read privileges (spec/access.py READ_PRIVILEGES) in this
# environment; writes belong to the service principal (JOB_PRIVILEGES) through a job.
package mlops.data_scientists_read_only

import data.mlops.lib

findings contains finding if {
	lib.protected
	some r in _grant_resources
	privileges := _write_privileges_of_data_scientists(r)
	count(privileges) > 0
	finding := {
		"address": r.address,
		"msg": concat("", [
			r.address, " grants ", lib.env_config.data_scientists_group, " the write privileges ",
			concat(", ", privileges), " on ", _securable(r), " in protected environment ", lib.environment,
			": grant that group only ", concat(", ", lib.config.read_privileges),
			" here and leave writes to the service principal's jobs",
		]),
	}
}

deny contains f.msg if some f in findings

_grant_resources := [r | some r in lib.resources; r.type in {"databricks_grants", "databricks_grant"}]

_write_privileges_of_data_scientists(r) := sort({p |
	some entry in _entries(r)
	is_string(entry.principal)
	lower(entry.principal) == lower(lib.env_config.data_scientists_group)
	some p in entry.privileges
	_is_write(p)
})

# databricks_grants lists `grant` blocks; databricks_grant is one principal's privileges.
_entries(r) := object.get(r.values, "grant", []) if r.type == "databricks_grants"

_entries(r) := [r.values] if r.type == "databricks_grant"

_is_write(p) if p in {q | some q in lib.config.write_privileges}

_is_write(p) if startswith(p, "CREATE_")

_securable_kinds := [
	"catalog", "schema", "table", "volume", "model", "function", "external_location", "storage_credential",
	"foreign_connection", "metastore", "share",
]

_securable(r) := concat(" ", [kind, _display(r.values[kind])]) if {
	kinds := [k | some k in _securable_kinds; lib.is_set(r.values[k])]
	kind := kinds[0]
} else := "an unnamed securable"

# A reference that the document resolves is shown by value ("prod"); an unresolved one by the resource it names.
_display(value) := shown if {
	shown := lib.resolve(value)
	not lib.is_reference(shown)
} else := concat(".", array.slice(parts, 0, 2)) if {
	parts := split(trim_suffix(trim_prefix(value, "${"), "}"), ".")
	count(parts) == 3
} else := value
