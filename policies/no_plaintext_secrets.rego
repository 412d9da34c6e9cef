# Rule: no personal access tokens and no secret in plain text. Flagged:
#   - `databricks_token` and `databricks_obo_token` resources (personal access tokens, on behalf of someone);
#   - a `databricks_secret` whose `string_value` is written as a literal in the code;
#   - a provider block with a literal `token`, `password`, `client_secret` or `azure_client_secret`.
# A value that comes from a variable or another resource ("${var.x}" in cdk.tf.json, `references` in a plan) is
# not a literal.
#
# Why: a token in code or in a synthesized JSON ends up in git history, CI logs and artifacts, and works for
# anyone who finds it until someone remembers to revoke it. CI reaches Databricks by OIDC workload identity
# federation (DATABRICKS_AUTH_TYPE=github-oidc), jobs run as a service principal: nothing needs a stored token.
#
# Good:  provider "databricks" { host = "https://adb-....azuredatabricks.net" }   # auth from the environment
#        resource "databricks_secret" "k" { key = "k"  scope = "s"  string_value = var.webhook_token }
# Bad:   provider "databricks" { host = "..."  token = "dapi0123..." }
#        resource "databricks_token" "ci" { comment = "for CI" }
#        resource "databricks_secret" "k" { key = "k"  scope = "s"  string_value = "hunter2" }
#
# Fix: delete the token resource and authenticate with OIDC federation or the service principal; pass secret
# values as sensitive variables (TF_VAR_..., from the CI secret store) or put them with `databricks secrets
# put-secret` outside Terraform; remove credentials from provider blocks (the DATABRICKS_* environment variables
# or a CLI profile provide them).
package mlops.no_plaintext_secrets

import data.mlops.lib

_token_types := {"databricks_token", "databricks_obo_token"}

_credential_attributes := {"token", "password", "client_secret", "azure_client_secret"}

findings contains finding if {
	some r in lib.resources
	r.type in _token_types
	finding := {
		"address": r.address,
		"msg": concat("", [
			r.address, " creates a personal access token: remove it; CI authenticates by OIDC federation ",
			"(DATABRICKS_AUTH_TYPE=github-oidc) and jobs run as the service principal",
		]),
	}
}

findings contains finding if {
	some r in lib.of_type("databricks_secret")
	"string_value" in r.literal_attributes
	finding := {
		"address": r.address,
		"msg": concat("", [
			r.address, " has its string_value written in the code: pass it as a sensitive variable (TF_VAR_ ",
			"from the CI secret store) or put it with databricks secrets put-secret outside Terraform",
		]),
	}
}

findings contains finding if {
	some p in lib.providers
	some attribute in p.literal_attributes
	attribute in _credential_attributes
	finding := {
		"address": p.address,
		"msg": concat("", [
			p.address, " sets ", attribute, " as a literal: remove it and authenticate through the environment ",
			"(DATABRICKS_AUTH_TYPE=github-oidc in CI, a CLI profile on a laptop)",
		]),
	}
}

deny contains f.msg if some f in findings
