"""The CloudFormation template of one environment: a pure function of its EnvSettings.

Resources: the planner, worker, finalizer and cleanup Lambdas (each with its own role and log group; with
planning=sharded also the plan-prepare, plan-shard, plan-collect and plan-assemble Lambdas), the
state machine and its role, the manifest bucket when the environment asks the stack to create it, the SNS topic
for run summaries (notification_topic=create), and the EventBridge Scheduler schedules and their role
(schedule_<name>). The Lambda code comes from S3 (parameters CodeBucket / CodeKey): the deployment uploads a
content-hashed zip and passes its key, so a code change updates the functions while the template stays the same
for the same settings (the committed ``cfn/<env>.json`` is golden-tested).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from troposphere import GetAtt, Output, Parameter, Ref, Sub, Template
from troposphere.awslambda import Code, Environment, Function
from troposphere.iam import ManagedPolicy, Policy, Role
from troposphere.logs import LogGroup
from troposphere.s3 import (
    AbortIncompleteMultipartUpload,
    Bucket,
    BucketEncryption,
    BucketPolicy,
    LifecycleConfiguration,
    LifecycleRule,
    PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault,
    ServerSideEncryptionRule,
)
from troposphere.scheduler import FlexibleTimeWindow, RetryPolicy
from troposphere.scheduler import Schedule as SchedulerSchedule
from troposphere.scheduler import Target as SchedulerTarget
from troposphere.sns import Topic
from troposphere.stepfunctions import StateMachine

from generator import policies, policy_size, state_machine
from generator.settings import EnvSettings, FunctionSettings
from lambdas import limits

RUNTIME = "python3.12"
# Graviton: the same pure-Python code, about 20% cheaper per GB-second than x86_64.
ARCHITECTURE = "arm64"
ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS = 1
RUN_FILES_EXPIRE_AFTER_DAYS = 30
STATE_MACHINE = "StateMachine"


@dataclass(frozen=True)
class FunctionSpec:
    logical: str  # "Planner" -> PlannerFunction, PlannerRole, PlannerLogGroup
    suffix: str  # function name = "<stack_name>-<suffix>"
    handler: str
    policy: Callable[[EnvSettings, str], policies.Document]
    sizing: Callable[[EnvSettings], FunctionSettings]

    def function_name(self, settings: EnvSettings) -> str:
        return f"{settings.stack_name}-{self.suffix}"


FUNCTIONS = (
    FunctionSpec("Planner", "planner", "lambdas.handlers.plan", policies.planner_policy, lambda s: s.planner),
    FunctionSpec("Worker", "worker", "lambdas.handlers.copy", policies.worker_policy, lambda s: s.worker),
    FunctionSpec("Finalizer", "finalizer", "lambdas.handlers.finalize", policies.finalizer_policy,
                 lambda s: s.finalizer),
    FunctionSpec("Cleanup", "cleanup", "lambdas.handlers.clean_up", policies.cleanup_policy, lambda s: s.finalizer),
)
# planning=sharded: one function per step of sharded planning, each with its own role (policies.py), rather
# than four handlers of the planner's function: the planner's role reads target objects and starts uploads,
# which a shard or the collector never needs. Sized as the planner (the same kind of work, in pieces).
SHARDED_FUNCTIONS = (
    FunctionSpec("PlanPrepare", "plan-prepare", "lambdas.handlers.prepare", policies.prepare_policy,
                 lambda s: s.planner),
    FunctionSpec("PlanShard", "plan-shard", "lambdas.handlers.plan_shard", policies.shard_policy, lambda s: s.planner),
    FunctionSpec("PlanCollect", "plan-collect", "lambdas.handlers.collect", policies.collect_policy,
                 lambda s: s.planner),
    FunctionSpec("PlanAssemble", "plan-assemble", "lambdas.handlers.assemble", policies.assemble_policy,
                 lambda s: s.planner),
)


def function_specs(settings: EnvSettings) -> tuple[FunctionSpec, ...]:
    """The env's functions: the four of every stack, and sharded planning's when planning=sharded."""
    return FUNCTIONS + SHARDED_FUNCTIONS if settings.sharded else FUNCTIONS


def lambda_environment(settings: EnvSettings) -> dict[str, object]:
    """The SFNCOPY_* variables lambdas/settings.py reads (the same for every function)."""
    manifest_bucket: object = (Ref(policies.MANIFEST_BUCKET_RESOURCE) if settings.manifest_bucket is None
                               else settings.manifest_bucket)
    variables: dict[str, object] = {
        "SFNCOPY_MANIFEST_BUCKET": manifest_bucket,
        "SFNCOPY_MANIFEST_PREFIX": settings.manifest_prefix,
        "SFNCOPY_MAX_PAYLOAD_SIZE_MB": str(settings.max_payload_size_mb),
        "SFNCOPY_MAX_OBJECTS_PER_PAYLOAD": str(settings.max_objects_per_payload),
        "SFNCOPY_WORKER_THREADS": str(settings.worker_threads),
        "SFNCOPY_DEADLINE_MARGIN_SECONDS": str(settings.deadline_margin_seconds),
        # Bucket names only: the planner checks a config's buckets against them for a clear early error.
        "SFNCOPY_SOURCE_BUCKETS": " ".join(sorted({s.bucket for s in settings.source_buckets})),
        "SFNCOPY_TARGET_BUCKETS": " ".join(sorted({t.bucket for t in settings.target_buckets})),
    }
    if settings.copy_cutoff_mb is not None:
        variables["SFNCOPY_COPY_CUTOFF_BYTES"] = str(settings.copy_cutoff_mb * limits.MiB)
    if settings.part_size_mb is not None:
        variables["SFNCOPY_PART_SIZE_BYTES"] = str(settings.part_size_mb * limits.MiB)
    if settings.object_acl:
        variables["SFNCOPY_OBJECT_ACL"] = settings.object_acl  # the one ACL the roles may set (the planner checks)
    return variables


def manifest_bucket_resources(settings: EnvSettings) -> list[Bucket | BucketPolicy]:
    """The stack-owned manifest bucket: encrypted, private, TLS-only, self-cleaning. Kept on stack deletion
    (it holds the reports)."""
    logical = policies.MANIFEST_BUCKET_RESOURCE
    bucket = Bucket(
        logical,
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
        BucketEncryption=BucketEncryption(ServerSideEncryptionConfiguration=[ServerSideEncryptionRule(
            ServerSideEncryptionByDefault=ServerSideEncryptionByDefault(SSEAlgorithm="AES256"))]),
        PublicAccessBlockConfiguration=PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True),
        LifecycleConfiguration=LifecycleConfiguration(Rules=[
            LifecycleRule(Id="AbortIncompleteMultipartUploads", Status="Enabled", Prefix="",
                          AbortIncompleteMultipartUpload=AbortIncompleteMultipartUpload(
                              DaysAfterInitiation=ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS)),
            LifecycleRule(Id="ExpireRunFiles", Status="Enabled", Prefix=f"{settings.manifest_prefix}runs/",
                          ExpirationInDays=RUN_FILES_EXPIRE_AFTER_DAYS),
        ]),
    )
    policy = BucketPolicy(f"{logical}Policy", Bucket=Ref(bucket),
                          PolicyDocument=policies.tls_only_bucket_policy(logical))
    return [bucket, policy]


def add_function(template: Template, settings: EnvSettings, spec: FunctionSpec,
                 environment: dict[str, object]) -> Function:
    name = spec.function_name(settings)
    log_group = template.add_resource(LogGroup(
        f"{spec.logical}LogGroup", LogGroupName=f"/aws/lambda/{name}", RetentionInDays=settings.log_retention_days))
    role, role_policies = add_role(template, settings, f"{spec.logical}Role", "lambda.amazonaws.com",
                                   f"{spec.suffix}-least-privilege", spec.policy(settings, name))
    sizing = spec.sizing(settings)
    return template.add_resource(Function(
        f"{spec.logical}Function",
        DependsOn=[log_group.title, *role_policies],
        FunctionName=name,
        Description=f"sfncopy {spec.suffix} ({settings.env})",
        Handler=spec.handler,
        Runtime=RUNTIME,
        Architectures=[ARCHITECTURE],
        Code=Code(S3Bucket=Ref("CodeBucket"), S3Key=Ref("CodeKey")),
        MemorySize=sizing.memory_mb,
        Timeout=sizing.timeout_seconds,
        Role=GetAtt(role, "Arn"),
        Environment=Environment(Variables=environment),
    ))


def add_role(template: Template, settings: EnvSettings, logical: str, service: str, policy_name: str,
             document: policies.Document) -> tuple[Role, list[str]]:
    """The role ``service`` assumes, with ``document`` as its inline policy; statements past IAM's size limit
    for inline policies go into managed policies "<logical>Policy<n>" attached to it (policy_size.py).

    Returns the role and the logical IDs of those managed policies: a resource using the role must depend on
    them (CloudFormation reference, AWS::IAM::ManagedPolicy, Roles: "If a policy has a Ref to a role and if a
    resource ... also has a Ref to the same role, add a DependsOn attribute to the resource")."""
    fitted = policy_size.fit_role_policy(settings, logical, document, intrinsic_values(settings))
    role = template.add_resource(Role(
        logical,
        AssumeRolePolicyDocument=policies.assume_role_policy(service),
        Policies=[Policy(PolicyName=policy_name, PolicyDocument=fitted.inline)],
    ))
    # Attached through the policy's Roles (the role's name, its Ref) rather than the role's ManagedPolicyArns:
    # moto 5.2.5's CloudFormation attaches the former and ignores the latter (checked by running it).
    managed = [template.add_resource(ManagedPolicy(
        f"{logical}Policy{number}", PolicyDocument=part, Roles=[Ref(role)],
        Description=f"sfncopy {settings.env}: {policy_name}, part {number + 1} (past the inline size limit)"))
        for number, part in enumerate(fitted.managed, start=1)]
    return role, [policy.title for policy in managed]


def intrinsic_values(settings: EnvSettings) -> dict[str, str]:
    """The longest value each intrinsic in the roles' documents can take in this env (sizes are counted so)."""
    values = policy_size.longest_values(settings.region, {f"{spec.logical}Function": spec.function_name(settings)
                                                          for spec in function_specs(settings)})
    return {**values, **topic_values(settings, values)}


def topic_values(settings: EnvSettings, values: dict[str, str]) -> dict[str, str]:
    """The stack's topic's Ref (its ARN, named by the template: notification_topic) for the size count."""
    if not settings.creates_topic:
        return {}
    arn = (f"arn:{values['AWS::Partition']}:sns:{values['AWS::Region']}:{values['AWS::AccountId']}:"
           f"{settings.stack_name}-runs")
    return {policies.NOTIFICATION_TOPIC_RESOURCE: arn}


def definition_string(settings: EnvSettings, timing: state_machine.RetryTiming) -> str:
    sharded = (state_machine.ShardedPlanning(settings.planner_shards, settings.planner_shard_concurrency)
               if settings.sharded else None)
    definition = state_machine.build_definition(settings.workers, state_machine.placeholders(), timing,
                                                state_machine.drain_seconds(settings.worker.timeout_seconds),
                                                settings.worker_concurrency, sharded)
    if settings.notifications:
        topic = (f"${{{policies.NOTIFICATION_TOPIC_RESOURCE}}}" if settings.creates_topic
                 else settings.notification_topic)
        definition = state_machine.with_notifications(definition, topic, settings.stack_name)
    return state_machine.to_json(definition)


def build_template(settings: EnvSettings,
                   timing: state_machine.RetryTiming = state_machine.PRODUCTION_RETRY) -> Template:
    template = Template(Description=f"sfncopy ({settings.env}): copy S3 objects with Step Functions and Lambda")
    template.set_version("2010-09-09")
    template.add_parameter(Parameter(
        "CodeBucket", Type="String", Default=settings.package_bucket,
        Description="Bucket holding the Lambda code zip (package_bucket of the env file)"))
    template.add_parameter(Parameter(
        "CodeKey", Type="String", AllowedPattern=r"^[A-Za-z0-9/._-]+\.zip$",
        Description="Key of the Lambda code zip (content-hashed, set by sfncopy.deploy)"))
    if settings.manifest_bucket is None:
        for resource in manifest_bucket_resources(settings):
            template.add_resource(resource)
    if settings.creates_topic:
        template.add_resource(notification_topic(settings))
    environment = lambda_environment(settings)
    functions = [add_function(template, settings, spec, environment) for spec in function_specs(settings)]
    sfn_role, sfn_role_policies = add_role(template, settings, "StateMachineRole", "states.amazonaws.com",
                                           "invoke-sfncopy-functions",
                                           policies.state_machine_policy(settings, [f.title for f in functions]))
    machine = template.add_resource(StateMachine(
        STATE_MACHINE,
        StateMachineName=settings.stack_name,
        StateMachineType="STANDARD",
        # Fn::Sub with ${Logical.Arn} references, not DefinitionSubstitutions (moto ignores those) and not the
        # list form of Fn::Sub (moto runs it through string.Template, which turns "$$." into "$.").
        DefinitionString=Sub(definition_string(settings, timing)),
        RoleArn=GetAtt(sfn_role, "Arn"),
        **({"DependsOn": sfn_role_policies} if sfn_role_policies else {}),
    ))
    add_schedules(template, settings, machine)
    add_outputs(template, settings, machine, functions)
    return template


def notification_topic(settings: EnvSettings) -> Topic:
    """The stack's own topic for run summaries (notification_topic=create): subscribe to it (e-mail, an SQS
    queue, a chat webhook through Lambda) after deploying."""
    return Topic(policies.NOTIFICATION_TOPIC_RESOURCE, TopicName=f"{settings.stack_name}-runs",
                 DisplayName=f"sfncopy {settings.env} runs")


# EventBridge Scheduler retries a target it could not start for up to a day by default (API reference,
# RetryPolicy: MaximumEventAgeInSeconds 60-86,400, MaximumRetryAttempts 0-185, defaults 86,400 and 185). A
# scheduled copy that could not start for an hour is better left to the next occurrence than started late.
SCHEDULE_MAX_EVENT_AGE_SECONDS = 3600
SCHEDULE_MAX_RETRY_ATTEMPTS = 10


def add_schedules(template: Template, settings: EnvSettings, machine: StateMachine) -> None:
    """One AWS::Scheduler::Schedule per schedule_<name> of the env (in the account's default schedule group),
    each starting the state machine with its stored config's location as the input, through one role that
    may start this state machine only (policies.scheduler_policy)."""
    if not settings.schedules:
        return
    role, role_policies = add_role(template, settings, "SchedulerRole", policies.SCHEDULER_SERVICE,
                                   "start-sfncopy-runs", policies.scheduler_policy(settings))
    for schedule in settings.schedules:
        template.add_resource(SchedulerSchedule(
            f"Schedule{_logical_suffix(schedule.name)}",
            **({"DependsOn": role_policies} if role_policies else {}),
            Name=schedule.aws_name(settings.stack_name),
            Description=f"sfncopy {settings.env}: {schedule.config_uri}",
            ScheduleExpression=schedule.expression,
            # Without a time zone Scheduler evaluates the expression in UTC (API reference, CreateSchedule,
            # ScheduleExpressionTimezone: "default UTC").
            ScheduleExpressionTimezone=schedule.timezone or "UTC",
            FlexibleTimeWindow=FlexibleTimeWindow(Mode="OFF"),
            State="ENABLED",
            Target=SchedulerTarget(
                Arn=Ref(machine),
                RoleArn=GetAtt(role, "Arn"),
                Input=json.dumps(schedule.input_document(), sort_keys=True),
                RetryPolicy=RetryPolicy(MaximumEventAgeInSeconds=SCHEDULE_MAX_EVENT_AGE_SECONDS,
                                        MaximumRetryAttempts=SCHEDULE_MAX_RETRY_ATTEMPTS),
            ),
        ))


def _logical_suffix(name: str) -> str:
    """A schedule name as part of a logical ID (letters and digits only): nightly_full -> NightlyFull."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def add_outputs(template: Template, settings: EnvSettings, machine: StateMachine, functions: list[Function]) -> None:
    manifest_bucket: object = (Ref(policies.MANIFEST_BUCKET_RESOURCE) if settings.manifest_bucket is None
                               else settings.manifest_bucket)
    template.add_output(Output("StateMachineArn", Value=Ref(machine), Description="Start executions here"))
    template.add_output(Output("StateMachineName", Value=GetAtt(machine, "Name")))
    template.add_output(Output("ManifestBucket", Value=manifest_bucket,
                               Description="Plans, results and reports live here"))
    if settings.manifest_prefix:
        template.add_output(Output("ManifestPrefix", Value=settings.manifest_prefix,
                                   Description="Runs live under <prefix>runs/<execution name>/ (absent: no prefix)"))
    template.add_output(Output("Workers", Value=str(settings.workers), Description="Parallel worker branches"))
    if settings.notifications:
        topic = Ref(policies.NOTIFICATION_TOPIC_RESOURCE) if settings.creates_topic else settings.notification_topic
        template.add_output(Output("NotificationTopicArn", Value=topic,
                                   Description="Each run's summary is published here"))
    for spec, function in zip(function_specs(settings), functions, strict=True):
        template.add_output(Output(f"{spec.logical}FunctionName", Value=Ref(function)))


def render_template(settings: EnvSettings,
                    timing: state_machine.RetryTiming = state_machine.PRODUCTION_RETRY) -> str:
    """The template as deterministic JSON (sorted keys, 2-space indent, trailing newline)."""
    text: str = build_template(settings, timing).to_json(indent=2, sort_keys=True)
    return text + "\n"


def template_path(settings: EnvSettings, cfn_dir: Path = Path("cfn")) -> Path:
    return cfn_dir / f"{settings.env}.json"


def write_template(settings: EnvSettings, out: Path | None = None) -> bool:
    """Write the template to ``out`` (default ``cfn/<env>.json``) if its content changed; True when written."""
    path = template_path(settings) if out is None else out
    text = render_template(settings)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
