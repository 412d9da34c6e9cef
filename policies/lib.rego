# Shared helpers: one view of the resources, whichever document is checked.
#
# Every rule reads `lib.resources`, a list of
#     {"address": "<type>.<name>", "type": ..., "name": ..., "values": {...}, "literal_attributes": [...]}
# plus `lib.providers` (same shape, "name" and "alias" instead of "type"), `lib.environment` (the stack name) and
# `lib.env_config` (that environment's entry in `config`). Three input shapes are understood:
#
#   1. already normalized:   {"resources": [...], "providers": [...], "environment": "prod", "config": {...}}
#   2. cdktn synth output:   cdktf.out/stacks/<env>/cdk.tf.json  (`resource.<type>.<name>`, `provider.<name>`)
#   3. a Terraform plan:     `terraform show -json plan.tfplan`   (`planned_values`, else `resource_changes`;
#                            `configuration` supplies references and literals)
#
# In a plan, a value not known until apply is absent; when the configuration says it comes from another resource
# (`references`), it is filled in as "${<reference>}", the way cdk.tf.json writes it, so one rule matches both.
# `literal_attributes` names the top-level attributes written as literals in the code: a scalar without "${" in
# cdk.tf.json, an expression with a `constant_value` in a plan. Only root-module configuration is read for that.
#
# The policy configuration (groups, protected environments, service principals, workspace ids) is `input.config`
# or, as conftest/opa pass data files, `data.mlops.config`; `mlops policy --write-data FILE` writes it from
# spec/config.py. The environment is `input.environment`, else the synthesized stack's name, else
# `data.mlops.environment`, else the `environment` property of the one catalog in the document.
#
# Strings are joined with concat(), never sprintf(): rego-cpp 1.5 (regopy) keeps the JSON quotes of a string that a
# built-in returned when it is formatted with %s, so sprintf("%s", [concat(...)]) differs from OPA.
package mlops.lib

default resources := []

default providers := []

_normalized if is_array(input.resources)

_plan if {
	not _normalized
	_has_plan_values
}

_has_plan_values if input.planned_values

_has_plan_values if input.resource_changes

_cdktf if {
	not _normalized
	not _plan
}

resources := [_complete(r) | some r in input.resources] if _normalized

resources := [r | some r in _cdktf_resources] if _cdktf

resources := [r | some r in _planned_resources] if {
	_plan
	input.planned_values
}

resources := [r | some r in _changed_resources] if {
	_plan
	not input.planned_values
}

providers := [_complete(p) | some p in input.providers] if {
	_normalized
	is_array(input.providers)
}

providers := [p | some p in _cdktf_providers] if _cdktf

providers := [p | some p in _plan_providers] if _plan

# --- environment and configuration -----------------------------------------------------------------------------

environment := input.environment if {
	is_string(input.environment)
} else := input["//"].metadata.stackName if {
	is_string(input["//"].metadata.stackName)
} else := data.mlops.environment if {
	is_string(data.mlops.environment)
} else := env if {
	envs := {e | some r in resources; r.type == "databricks_catalog"; e := r.values.properties.environment}
	count(envs) == 1
	some env in envs
}

config := input.config if {
	is_object(input.config)
} else := data.mlops.config

env_config := config.environments[environment]

# Staging and prod: data scientists read there, jobs run as the environment's service principal.
protected if environment in config.protected_environments

# --- helpers for rules ------------------------------------------------------------------------------------------

of_type(resource_type) := [r | some r in resources; r.type == resource_type]

# A nested block: an object in cdk.tf.json, a one-element list in a plan.
blocks(x) := x if is_array(x)

blocks(x) := [x] if is_object(x)

blocks(x) := [] if x == null

block(x) := first if {
	some first in array.slice(blocks(x), 0, 1)
} else := {}

is_reference(value) if {
	is_string(value)
	contains(value, "${")
}

is_person(name) if {
	is_string(name)
	contains(name, "@")
}

# A plan lists every attribute, unset ones as null: "set" means a non-empty string.
is_set(value) if {
	is_string(value)
	value != ""
}

# `value` is `resource`'s `attribute`: a reference to it, or (in a plan) the same known value.
points_to(value, resource, attribute) if value == concat("", ["${", resource.address, ".", attribute, "}"])

points_to(value, resource, attribute) if {
	value != null
	not is_reference(value)
	known := resource.values[attribute]
	known == value
}

# The value behind a whole-string reference "${type.name.attribute}" when the document knows it, else the value.
resolve(value) := resolved if {
	is_string(value)
	regex.match(`^\$\{[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_]+\}$`, value)
	parts := split(trim_suffix(trim_prefix(value, "${"), "}"), ".")
	some r in resources
	r.address == concat(".", [parts[0], parts[1]])
	resolved := r.values[parts[2]]
	not is_reference(resolved)
} else := value

# Ids compare as strings: workspace ids are numbers in a plan and strings in cdk.tf.json.
id_string(x) := x if is_string(x)

id_string(x) := format_int(x, 10) if is_number(x)

# --- shape 2: cdk.tf.json ---------------------------------------------------------------------------------------

_cdktf_resources contains r if {
	some rtype, by_name in input.resource
	some name, body in by_name
	values := object.remove(body, ["//"])
	r := {
		"address": concat(".", [rtype, name]),
		"type": rtype,
		"name": name,
		"values": values,
		"literal_attributes": _literal_keys(values),
	}
}

_cdktf_providers contains p if {
	some pname, declared in input.provider
	some body in _as_list(declared)
	values := object.remove(body, ["alias", "//"])
	p := {
		"address": _provider_address(pname, object.get(body, "alias", "")),
		"name": pname,
		"alias": object.get(body, "alias", ""),
		"values": values,
		"literal_attributes": _literal_keys(values),
	}
}

_as_list(x) := x if is_array(x)

_as_list(x) := [x] if is_object(x)

_literal_keys(values) := sort([k | v := values[k]; _is_literal(v)])

_is_literal(v) if {
	is_string(v)
	not contains(v, "${")
}

_is_literal(v) if is_number(v)

_is_literal(v) if is_boolean(v)

_complete(r) := r if {
	r.literal_attributes
} else := object.union(r, {"literal_attributes": _literal_keys(object.get(r, "values", {}))})

_provider_address(pname, "") := concat(".", ["provider", pname])

_provider_address(pname, alias) := concat(".", ["provider", pname, alias]) if alias != ""

# --- shape 3: terraform show -json ------------------------------------------------------------------------------

# The root module and child modules three deep (no recursion in Rego; walk() over every value is slow in rego-cpp).
_modules contains m if m := input.planned_values.root_module

_modules contains m if some m in input.planned_values.root_module.child_modules

_modules contains m if some m in input.planned_values.root_module.child_modules[_].child_modules

_modules contains m if some m in input.planned_values.root_module.child_modules[_].child_modules[_].child_modules

_planned_resources contains r if {
	some module in _modules
	some node in object.get(module, "resources", [])
	node.mode == "managed"
	r := _plan_resource(node.address, node.type, node.name, object.get(node, "values", {}))
}

_changed_resources contains r if {
	some change in input.resource_changes
	change.mode == "managed"
	is_object(change.change.after)
	r := _plan_resource(change.address, change.type, change.name, change.change.after)
}

_plan_resource(address, rtype, name, values) := {
	"address": address,
	"type": rtype,
	"name": name,
	"values": _with_references(_config_address(address), values),
	"literal_attributes": _plan_literals(_config_address(address)),
}

# "databricks_job.x[0]" and "databricks_job.x[\"a\"]" are configured as "databricks_job.x".
_config_address(address) := split(address, "[")[0]

_config_expressions[address] := expressions if {
	some resource in input.configuration.root_module.resources
	address := resource.address
	expressions := object.get(resource, "expressions", {})
}

# The lookup stays outside the comprehension: rego-cpp 1.5 does not bind a function argument used as a key there.
_plan_literals(address) := sort([k | e := expressions[k]; _has_constant(e)]) if {
	expressions := _config_expressions[address]
} else := []

_has_constant(e) if {
	is_object(e)
	"constant_value" in object.keys(e)
}

_with_references(address, values) := json.patch(values, ops) if {
	expressions := _config_expressions[address]
	present := {p | walk(values, [p, _])}
	objects := {p | walk(values, [p, node]); is_object(node)}
	ops := [op |
		walk(expressions, [path, expression])
		is_object(expression)
		is_array(expression.references)
		count(expression.references) > 0
		count(path) > 0
		array.slice(path, 0, count(path) - 1) in objects
		not path in present
		op := {"op": "add", "path": path, "value": concat("", ["${", expression.references[0], "}"])}
	]
} else := values

_plan_providers contains p if {
	some provider in input.configuration.provider_config
	expressions := object.get(provider, "expressions", {})
	alias := object.get(provider, "alias", "")
	p := {
		"address": _provider_address(provider.name, alias),
		"name": provider.name,
		"alias": alias,
		"values": {k: v | e := expressions[k]; v := _expression_value(e)},
		"literal_attributes": sort([k | e := expressions[k]; _has_constant(e)]),
	}
}

_expression_value(e) := e.constant_value if _has_constant(e)

_expression_value(e) := concat("", ["${", e.references[0], "}"]) if {
	not _has_constant(e)
	count(e.references) > 0
}
