"""Renders the job graphs of ``spec.workflows`` to `databricks_job` resources: one per graph per environment.

Tasks run the project's wheel entry points (python_wheel_task) on a serverless environment by default, or on a job
cluster governed by the cluster policy; alert tasks evaluate the stack's SQL alerts. Jobs run as the environment's
service principal and notify on failure. The wheel is uploaded to a Unity Catalog volume, one folder per commit
(`make wheel` builds it before `cdktn deploy`). ml-engineers manage every job; data scientists run them in dev and
only see them elsewhere; the CI runner may run the jobs CI runs (``spec.access.CI_JOBS``) and nothing else; the jobs'
principal may run the jobs its run-job tasks start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdktn import ITerraformDependable, Token
from cdktn_provider_databricks.alert_v2 import AlertV2
from cdktn_provider_databricks.file import File
from cdktn_provider_databricks.job import (
    Job,
    JobContinuous,
    JobEmailNotifications,
    JobEnvironment,
    JobEnvironmentSpec,
    JobJobCluster,
    JobJobClusterNewCluster,
    JobParameter,
    JobRunAs,
    JobSchedule,
    JobTask,
    JobTaskAlertTask,
    JobTaskAlertTaskSubscribers,
    JobTaskConditionTask,
    JobTaskDependsOn,
    JobTaskLibrary,
    JobTaskPythonWheelTask,
    JobTaskRunJobTask,
    JobTrigger,
    JobTriggerModel,
    JobTriggerTableUpdate,
    JobWebhookNotifications,
    JobWebhookNotificationsOnFailure,
)
from cdktn_provider_databricks.permissions import Permissions, PermissionsAccessControl
from cdktn_provider_databricks.schema import Schema
from cdktn_provider_databricks.volume import Volume
from constructs import Construct

from infra.constructs.notifications import Notifications
from spec import access
from spec.config import Environment
from spec.workflows import PACKAGE_NAME, AlertTask, ConditionTask, JobGraph, RunJobTask, WheelTask, job_graphs

ENVIRONMENT_KEY = "default"
JOB_CLUSTER_KEY = "job_cluster"


def wheel_filename(version: str) -> str:
    return f"{PACKAGE_NAME}-{version}-py3-none-any.whl"


def job_name(env: Environment, graph: JobGraph) -> str:
    """``[<environment>] <model>/<graph>``: every model of an environment has its own jobs."""
    return f"[{env.name}] {env.model_name}/{graph.name}"


class Artifacts(Construct):
    """The wheel every job of the environment installs: uploaded once per commit to the ml schema's volume."""

    def __init__(
        self, scope: Construct, construct_id: str, *, ml_schema: Schema, wheel_version: str, code_version: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.volume = Volume(
            self,
            "artifacts",
            catalog_name=ml_schema.catalog_name,
            schema_name=ml_schema.name,
            name="artifacts",
            volume_type="MANAGED",
            comment="the project's wheel, uploaded by cdktn deploy",
        )
        wheel = wheel_filename(wheel_version)
        self.code_version = code_version
        self.wheel = File(
            self,
            "wheel",
            # One folder per commit: a new commit's jobs install a new path, never a cached build of an older one.
            path=f"{self.volume.volume_path}/{code_version}/{wheel}",
            # cdktf.out/stacks/<env>/ is three levels below the repository root, where `make wheel` writes dist/.
            source=f"${{path.module}}/../../../dist/{wheel}",
        )
        # The jobs install the uploaded file: referring to its path orders them after the upload.
        self.wheel_path = self.wheel.path


class Jobs(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: Environment,
        service_principal_id: str,
        ci_service_principal_id: str,
        principal_ready: Sequence[ITerraformDependable],
        cluster_policy_id: str,
        notifications: Notifications,
        artifacts: Artifacts,
        alerts: Mapping[str, AlertV2],
        warehouse_id: str,
        triggers_ready: Sequence[ITerraformDependable] = (),
        model_ready: Sequence[ITerraformDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.env = env
        self.volume = artifacts.volume
        self.wheel = artifacts.wheel
        self.code_version = artifacts.code_version
        self.wheel_path = artifacts.wheel_path
        self._sp = service_principal_id
        # run_as and single_user_name name the service principal: it must be in the workspace first.
        self._principal_ready = list(principal_ready)
        self._triggers_ready = list(triggers_ready)
        # A model trigger watches the registered model: the Jobs API refuses one on a model that does not exist.
        self._model_ready = list(model_ready)
        self._alerts = alerts
        self._warehouse_id = warehouse_id
        self._policy = cluster_policy_id
        self._notifications = notifications
        self.jobs: dict[str, Job] = {}
        graphs = job_graphs(env)
        # Children first, so run-job tasks can refer to their job ids.
        for name in sorted(graphs, key=lambda n: _depth(graphs, n)):
            self.jobs[name] = self._job(graphs[name])
        children = {t.action.job for g in graphs.values() for t in g.tasks if isinstance(t.action, RunJobTask)}
        self.permissions = {
            name: Permissions(
                self,
                f"{name.replace('-', '_')}_permissions",
                job_id=job.id,
                access_control=[
                    *(
                        PermissionsAccessControl(group_name=g.principal, permission_level=g.level)
                        for g in access.job_access(env)
                    ),
                    # A run-job task starts its child as the parent's run_as: that principal must be allowed to run it.
                    *(
                        [PermissionsAccessControl(service_principal_name=self._sp, permission_level="CAN_MANAGE_RUN")]
                        if name in children
                        else []
                    ),
                    # CI signs in as the CI runner to run these jobs (run-now, then reads the run's result).
                    *(
                        [
                            PermissionsAccessControl(
                                service_principal_name=ci_service_principal_id, permission_level="CAN_MANAGE_RUN"
                            )
                        ]
                        if name in access.CI_JOBS
                        else []
                    ),
                ],
                depends_on=list(self._principal_ready),
            )
            for name, job in self.jobs.items()
        }

    def _job(self, graph: JobGraph) -> Job:
        env = self.env
        serverless = env.compute.serverless
        webhook = self._notifications.webhook
        return Job(
            self,
            graph.name.replace("-", "_"),
            name=job_name(env, graph),
            description=graph.description,
            parameter=[JobParameter(name=k, default=v) for k, v in graph.parameters.items()],
            task=[self._task(task, serverless) for task in graph.tasks],
            environment=[
                JobEnvironment(
                    environment_key=ENVIRONMENT_KEY,
                    spec=JobEnvironmentSpec(
                        environment_version=env.compute.serverless_environment_version,
                        dependencies=[self.wheel_path],
                    ),
                )
            ]
            if serverless
            else None,
            job_cluster=None
            if serverless
            else [
                JobJobCluster(
                    job_cluster_key=JOB_CLUSTER_KEY,
                    new_cluster=JobJobClusterNewCluster(
                        policy_id=self._policy,
                        apply_policy_default_values=True,
                        spark_version=env.compute.spark_version,
                        node_type_id=env.compute.node_types[env.cloud],
                        num_workers=env.compute.num_workers,
                        data_security_mode="SINGLE_USER",
                        single_user_name=self._sp,
                    ),
                )
            ],
            schedule=JobSchedule(
                quartz_cron_expression=graph.schedule.quartz_cron,
                timezone_id=graph.schedule.timezone,
                pause_status="PAUSED" if graph.schedule.paused else "UNPAUSED",
            )
            if graph.schedule
            else None,
            continuous=JobContinuous(pause_status="UNPAUSED") if graph.continuous else None,
            trigger=_trigger(graph),
            run_as=JobRunAs(service_principal_name=self._sp),
            email_notifications=JobEmailNotifications(on_failure=self._notifications.emails)
            if self._notifications.emails
            else None,
            webhook_notifications=JobWebhookNotifications(on_failure=[JobWebhookNotificationsOnFailure(id=webhook.id)])
            if webhook
            else None,
            timeout_seconds=graph.job_timeout_seconds,
            max_concurrent_runs=graph.max_concurrent_runs,
            tags={**graph.tags, **graph.no_retry_tags(), "code_version": self.code_version},
            depends_on=[
                *self._principal_ready,
                *(self._triggers_ready if graph.trigger_tables else []),
                *(self._model_ready if graph.trigger_model else []),
            ],
        )

    def _task(self, task, serverless: bool) -> JobTask:
        common = dict(
            task_key=task.key,
            description=task.description or None,
            depends_on=[JobTaskDependsOn(task_key=d.task_key, outcome=d.outcome) for d in task.depends_on] or None,
            run_if=task.run_if if task.depends_on else None,
            timeout_seconds=task.timeout_seconds,
        )
        action = task.action
        if isinstance(action, WheelTask):
            return JobTask(
                **common,
                max_retries=task.max_retries,
                min_retry_interval_millis=task.min_retry_interval_millis,
                retry_on_timeout=task.retry_on_timeout,
                python_wheel_task=JobTaskPythonWheelTask(
                    package_name=PACKAGE_NAME, entry_point=action.entry_point, parameters=list(action.parameters)
                ),
                environment_key=ENVIRONMENT_KEY if serverless else None,
                job_cluster_key=None if serverless else JOB_CLUSTER_KEY,
                library=None if serverless else [JobTaskLibrary(whl=self.wheel_path)],
            )
        if isinstance(action, ConditionTask):
            return JobTask(
                **common, condition_task=JobTaskConditionTask(left=action.left, op=action.op, right=action.right)
            )
        if isinstance(action, AlertTask):
            alert = self._alerts[action.alert]
            return JobTask(
                **common,
                max_retries=task.max_retries,
                min_retry_interval_millis=task.min_retry_interval_millis,
                alert_task=JobTaskAlertTask(
                    alert_id=alert.id,
                    warehouse_id=self._warehouse_id,
                    subscribers=[JobTaskAlertTaskSubscribers(user_name=e) for e in self._notifications.emails]
                    + (
                        [JobTaskAlertTaskSubscribers(destination_id=self._notifications.webhook.id)]
                        if self._notifications.webhook is not None
                        else []
                    ),
                ),
            )
        if isinstance(action, RunJobTask):
            return JobTask(
                **common,
                max_retries=task.max_retries,
                min_retry_interval_millis=task.min_retry_interval_millis,
                run_job_task=JobTaskRunJobTask(
                    job_id=Token.as_number(self.jobs[action.job].id), job_parameters=dict(action.job_parameters)
                ),
            )
        raise TypeError(f"unsupported task action {type(action).__name__}")


def _depth(graphs: dict[str, JobGraph], name: str) -> int:
    children = [t.action.job for t in graphs[name].tasks if isinstance(t.action, RunJobTask)]
    return 1 + max((_depth(graphs, child) for child in children), default=0)


def _trigger(graph: JobGraph) -> JobTrigger | None:
    """A table-update or a model trigger (spec/graph.py ModelTrigger; provider 1.138's ``trigger { model { ... } }``:
    condition, securable_name, aliases, min_time_between_triggers_seconds, wait_after_last_change_seconds)."""
    if graph.trigger_tables:
        return JobTrigger(
            pause_status="UNPAUSED",
            table_update=JobTriggerTableUpdate(table_names=list(graph.trigger_tables), condition="ANY_UPDATED"),
        )
    model = graph.trigger_model
    if model is None:
        return None
    return JobTrigger(
        pause_status="UNPAUSED",
        model=JobTriggerModel(
            condition=model.condition,
            securable_name=model.securable_name,
            aliases=list(model.aliases) or None,
            min_time_between_triggers_seconds=model.min_time_between_triggers_seconds,
            wait_after_last_change_seconds=model.wait_after_last_change_seconds,
        ),
    )
