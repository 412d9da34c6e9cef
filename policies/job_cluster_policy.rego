# Rule: every cluster a `databricks_job` starts is governed by a cluster policy: each `job_cluster.new_cluster`
# and each `task.new_cluster` sets `policy_id`. Serverless tasks (an `environment_key`, no `new_cluster`) and
# tasks on a shared `job_cluster_key` start no cluster of their own and pass.
#
# Why: the policy (infra/constructs/ml_assets.py) pins the ML runtime, the node type, the size bound, single-user
# access mode and the environment tag, so a job cannot quietly run on a huge, untagged or shared-access cluster.
#
# Good:
#     job_cluster { job_cluster_key = "job_cluster"
#                   new_cluster { policy_id = databricks_cluster_policy.jobs.id  spark_version = "..." } }
#     task { task_key = "train"  environment_key = "default" }                      # serverless
# Bad:
#     task { task_key = "train"  new_cluster { spark_version = "16.4.x-cpu-ml-scala2.12"  num_workers = 8 } }
#
# Fix: set new_cluster.policy_id to the environment's databricks_cluster_policy id (with
# apply_policy_default_values = true), or run the task serverless.
package mlops.job_cluster_policy

import data.mlops.lib

findings contains finding if {
	some job in lib.of_type("databricks_job")
	clusters := sort(array.concat(_shared_clusters_without_policy(job), _task_clusters_without_policy(job)))
	count(clusters) > 0
	finding := {
		"address": job.address,
		"msg": concat("", [
			job.address, " starts clusters without a cluster policy (", concat(", ", clusters),
			"): set new_cluster.policy_id to the environment's databricks_cluster_policy, or run the task serverless",
		]),
	}
}

deny contains f.msg if some f in findings

_shared_clusters_without_policy(job) := [concat(" ", ["job_cluster", c.job_cluster_key]) |
	some c in object.get(job.values, "job_cluster", [])
	some cluster in lib.blocks(object.get(c, "new_cluster", null))
	not _has_policy(cluster)
]

_task_clusters_without_policy(job) := [concat(" ", ["task", t.task_key]) |
	some t in object.get(job.values, "task", [])
	some cluster in lib.blocks(object.get(t, "new_cluster", null))
	not _has_policy(cluster)
]

_has_policy(cluster) if lib.is_set(cluster.policy_id)
