"""The engine: rule discovery, the configuration it hands the rules, the input shapes it accepts, and the errors
it raises instead of passing silently."""

from __future__ import annotations

import copy
import json
import shutil

import pytest

from policies import engine
from spec.config import ENVIRONMENTS
from tests.policies.conftest import fixture


def test_rules_are_the_rego_files_besides_lib():
    stems = sorted(p.stem for p in engine.POLICY_DIR.glob("*.rego"))
    assert engine.rule_names() == [s for s in stems if s != "lib"]


def test_a_rule_file_with_the_wrong_package_is_refused(tmp_path):
    for path in engine.POLICY_DIR.glob("*.rego"):
        shutil.copy(path, tmp_path)
    (tmp_path / "extra.rego").write_text("package mlops.something_else\n\nfindings := set()\n")
    with pytest.raises(engine.PolicyEngineError, match="extra.rego: expected 'package mlops.extra'"):
        engine.evaluate(fixture("no_plaintext_secrets/pass.json"), policy_dir=tmp_path)


def test_policy_config_comes_from_infra_config():
    config = engine.policy_config()
    protected = [name for name, env in ENVIRONMENTS.items() if env.data_scientist_access != "write"]
    assert config["protected_environments"] == protected
    assert config["protected_environments"], "staging and prod are protected"
    for name, env in ENVIRONMENTS.items():
        entry = config["environments"][name]
        assert entry["service_principal"] == env.service_principal
        assert entry["data_scientists_group"] == env.data_scientists_group
        assert entry["workspace_id"] == str(env.workspace_id)
        assert entry["read_only_from"] == list(env.read_only_from)
    assert "MODIFY" in config["write_privileges"] and "SELECT" in config["read_privileges"]
    assert engine.policy_data() == {"mlops": {"config": config}}
    json.dumps(engine.policy_data())  # what conftest reads with --data


def test_the_rules_follow_the_configuration_they_are_given():
    """Rename the data scientists group: the same grants stop being a data scientist's write access."""
    config = copy.deepcopy(engine.policy_config())
    config["environments"]["prod"]["data_scientists_group"] = "analysts"
    # (Else approvers_tag_models flags their APPLY_TAG: in prod only the approvers may tag model versions.)
    config["environments"]["prod"]["manual_approval"] = False
    assert engine.evaluate(fixture("data_scientists_read_only/fail.json"), config=config) == []
    assert engine.evaluate(fixture("data_scientists_read_only/fail.json")) != []


def test_configuration_in_the_input_wins_over_data():
    document = fixture("data_scientists_read_only/fail.json")
    config = copy.deepcopy(engine.policy_config())
    config["protected_environments"] = []
    config["environments"]["prod"]["manual_approval"] = False
    assert engine.evaluate({**document, "config": config}) == []


def test_unknown_environment_is_an_error_not_a_pass():
    document = fixture("no_plaintext_secrets/fail.json")
    document["//"]["metadata"]["stackName"] = "qa"
    with pytest.raises(engine.PolicyInputError, match="environment 'qa' has no policy configuration"):
        engine.evaluate(document)


def test_a_document_that_does_not_name_its_environment_needs_one():
    document = fixture("no_plaintext_secrets/fail.json")
    del document["//"]
    with pytest.raises(engine.PolicyInputError, match="cannot tell which environment"):
        engine.evaluate(document)
    assert len(engine.evaluate(document, environment="dev")) == 5


def test_a_document_must_be_an_object():
    with pytest.raises(engine.PolicyInputError, match="must be a JSON object"):
        engine.evaluate([])  # type: ignore[arg-type]


def test_load_names_the_file_it_cannot_read(tmp_path):
    broken = tmp_path / "plan.json"
    broken.write_text("{not json")
    with pytest.raises(engine.PolicyInputError, match="plan.json: cannot read a JSON document"):
        engine.load(broken)


def test_already_normalized_input_is_checked_as_is():
    document = {
        "environment": "dev",
        "resources": [
            {"address": "databricks_token.ci", "type": "databricks_token", "name": "ci", "values": {}},
            # No literal_attributes given: derived from the values, as for cdk.tf.json.
            {
                "address": "databricks_secret.k",
                "type": "databricks_secret",
                "name": "k",
                "values": {"scope": "s", "key": "k", "string_value": "plain"},
            },
        ],
    }
    violations = engine.evaluate(document)
    assert [(v.rule, v.address) for v in violations] == [
        ("no_plaintext_secrets", "databricks_secret.k"),
        ("no_plaintext_secrets", "databricks_token.ci"),
    ]


def test_quotes_and_backslashes_survive_the_engine():
    """rego-cpp prints strings without escaping them; the engine reads values node by node instead."""
    document = fixture("owners_not_people/pass.json")
    document["resource"]["databricks_schema"]["ml"]["owner"] = 'o"hara\\x@example.com'
    assert [v.message for v in engine.evaluate(document)] == [
        'databricks_schema.ml is owned by the person o"hara\\x@example.com: set owner to a group or to the '
        "service principal's application id"
    ]
    definition = engine.normalized(fixture("job_cluster_policy/pass.json"))["resources"][0]["values"]["definition"]
    assert json.loads(definition) == {"spark_version": {"type": "fixed"}}


@pytest.mark.parametrize("rule", engine.rule_names())
def test_deny_lists_the_messages_of_the_findings(rule):
    """conftest and `opa eval` read `deny`; the engine reads `findings`: the same messages."""
    document = fixture(f"{rule}/fail.json")
    session = engine._Session(document, engine.policy_config(), engine.POLICY_DIR)
    findings = session.value(f"data.mlops.{rule}.findings")
    assert findings
    assert sorted(session.value(f"data.mlops.{rule}.deny")) == sorted(f["msg"] for f in findings)
