# Rule: an environment's catalog is bound read-only to every workspace listed in its `read_only_from`
# (spec/config.py: staging and prod are readable from dev), and bound read-write to no workspace but its own.
# Checked on `databricks_workspace_binding` (and the older `databricks_catalog_workspace_binding`); a binding
# without `binding_type` is read-write, the provider's default.
#
# Why: the catalogs are ISOLATED, so a workspace sees only the catalogs bound to it. Data scientists in dev need
# to read prod data and compare against the prod model; nothing run from dev may write to prod.
#
# Good (prod, read_only_from = ("dev",)):
#     resource "databricks_workspace_binding" "own"     { securable_name = "prod"  workspace_id = <prod workspace>
#                                                         binding_type = "BINDING_TYPE_READ_WRITE" }
#     resource "databricks_workspace_binding" "dev_ro"  { securable_name = "prod"  workspace_id = <dev workspace>
#                                                         binding_type = "BINDING_TYPE_READ_ONLY" }
# Bad: no binding for the dev workspace; or the dev binding with BINDING_TYPE_READ_WRITE (or no binding_type).
#
# Fix: declare one BINDING_TYPE_READ_ONLY binding per `read_only_from` environment (infra/constructs/governance.py
# does) and keep BINDING_TYPE_READ_WRITE for the environment's own workspace.
package mlops.workspace_bindings

import data.mlops.lib

_read_only := "BINDING_TYPE_READ_ONLY"

_read_write := "BINDING_TYPE_READ_WRITE"

findings contains finding if {
	catalog := lib.env_config.catalog
	some reader in lib.env_config.read_only_from
	reader_id := lib.config.environments[reader].workspace_id
	not _bound_read_only(catalog, reader_id)
	address := _catalog_address(catalog)
	finding := {
		"address": address,
		"msg": concat("", [
			address, " (catalog ", catalog, ") is not bound read-only to the ", reader, " workspace ",
			_shown_id(reader_id), ": add a databricks_workspace_binding with securable_name = ", catalog,
			", workspace_id = ", _shown_id(reader_id), " and binding_type = ", _read_only,
			" (", lib.environment, ".read_only_from in spec/config.py)",
		]),
	}
}

findings contains finding if {
	some b in _bindings
	_binding_type(b) == _read_write
	workspace := b.values.workspace_id
	_foreign(workspace)
	finding := {
		"address": b.address,
		"msg": concat("", [
			b.address, " binds catalog ", _display(_securable_name(b)), " read-write to workspace ",
			lib.id_string(workspace), ", which is not the ", lib.environment, " workspace ",
			_shown_id(lib.env_config.workspace_id), ": bind other workspaces with binding_type = ", _read_only,
			" or remove the binding",
		]),
	}
}

deny contains f.msg if some f in findings

_bindings := [b |
	some b in lib.resources
	b.type in {"databricks_workspace_binding", "databricks_catalog_workspace_binding"}
	_securable_type(b) == "catalog"
]

_securable_type(b) := b.values.securable_type if {
	lib.is_set(b.values.securable_type)
} else := "catalog"

_securable_name(b) := b.values.securable_name if {
	lib.is_set(b.values.securable_name)
} else := b.values.catalog_name

# Unset means read-write: the provider's default.
_binding_type(b) := b.values.binding_type if {
	lib.is_set(b.values.binding_type)
} else := _read_write

_bound_read_only(catalog, reader_id) if {
	some b in _bindings
	_display(_securable_name(b)) == catalog
	_binding_type(b) == _read_only
	_same_workspace(b.values.workspace_id, reader_id)
}

_same_workspace(value, id) if {
	id != null
	not lib.is_reference(value)
	lib.id_string(value) == id
}

# A workspace the `workspaces` stack creates has no id until apply: its binding can only be a reference.
_same_workspace(value, null) if lib.is_reference(value)

_foreign(value) if {
	not lib.is_reference(value)
	own := lib.env_config.workspace_id
	own != null
	lib.id_string(value) != own
}

_foreign(value) if {
	not lib.is_reference(value)
	lib.env_config.workspace_id == null
}

_display(value) := lib.resolve(value)

_shown_id(null) := "(created by the workspaces stack)"

_shown_id(id) := id if id != null

_catalog_address(catalog) := address if {
	addresses := [r.address | some r in lib.of_type("databricks_catalog"); lib.resolve(r.values.name) == catalog]
	address := addresses[0]
} else := concat(".", ["databricks_catalog", catalog])
