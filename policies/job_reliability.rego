# Rule: every `databricks_job` tells someone when it fails (a non-empty `email_notifications.on_failure` or
# `webhook_notifications.on_failure`), and in a protected environment (staging, prod) every task retries
# (`max_retries >= 1`) unless the job says why a retry is unsafe: the tag `no_retry_reason`, for the tasks listed
# in the tag `no_retry_tasks` (comma-separated task keys) or, without that tag, for the whole job.
# Condition tasks are exempt from retries: they only compare values and cannot be retried.
#
# Why: a scheduled training or inference job that fails silently leaves a stale model or an empty table that
# nobody notices until the business does; most failures on shared compute are transient and pass on a retry.
#
# Good:
#     resource "databricks_job" "training" {
#       email_notifications { on_failure = ["ml-oncall@example.com"] }
#       task { task_key = "train"  max_retries = 2 ... }
#     }
# Bad:   no email_notifications / webhook_notifications block; or, in prod, `task { task_key = "train" }`
#        without max_retries.
#
# Fix: set the environment's `alerts` in spec/config.py (the jobs construct turns them into failure
# notifications) and `job_retries` >= 1 for staging and prod; for a task that must not retry, set its
# `no_retry_reason` in spec/workflows.py (rendered as the tags no_retry_tasks and no_retry_reason).
package mlops.job_reliability

import data.mlops.lib

findings contains finding if {
	some job in lib.of_type("databricks_job")
	not _notifies_on_failure(job)
	finding := {
		"address": job.address,
		"msg": concat("", [
			job.address, " sends no failure notification: set email_notifications.on_failure or ",
			"webhook_notifications.on_failure (the environment's alerts in spec/config.py)",
		]),
	}
}

findings contains finding if {
	lib.protected
	some job in lib.of_type("databricks_job")
	not _job_retry_exempt(job)
	keys := sort([t.task_key |
		some t in object.get(job.values, "task", [])
		_without_retries(t)
		not _task_retry_exempt(job, t)
	])
	count(keys) > 0
	finding := {
		"address": job.address,
		"msg": concat("", [
			job.address, " has tasks without retries in protected environment ", lib.environment, " (",
			concat(", ", keys), "): set max_retries >= 1 on each task, or tag the job no_retry_reason ",
			"with why a retry is unsafe",
		]),
	}
}

deny contains f.msg if some f in findings

_notifies_on_failure(job) if {
	some notifications in lib.blocks(object.get(job.values, "email_notifications", null))
	_non_empty_list(notifications.on_failure)
}

_notifies_on_failure(job) if {
	some notifications in lib.blocks(object.get(job.values, "webhook_notifications", null))
	_non_empty_list(notifications.on_failure)
}

_non_empty_list(x) if {
	is_array(x)
	count(x) > 0
}

_job_retry_exempt(job) if {
	lib.is_set(job.values.tags.no_retry_reason)
	not lib.is_set(job.values.tags.no_retry_tasks)
}

_task_retry_exempt(job, task) if {
	lib.is_set(job.values.tags.no_retry_reason)
	some key in split(job.values.tags.no_retry_tasks, ",")
	trim_space(key) == task.task_key
}

_without_retries(task) if {
	count(lib.blocks(object.get(task, "condition_task", null))) == 0
	object.get(task, "max_retries", 0) < 1
}
