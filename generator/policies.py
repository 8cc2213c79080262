"""Least-privilege IAM documents, one role per function, as plain data (CloudFormation intrinsics as dicts).

Each role may touch only what its function does:
- planner: read and list the sources; list the targets and start the multipart uploads of split objects;
  read and write the run's manifest files.
- worker: read the sources; write objects, parts and tags on the targets; read and write the manifest files.
- finalizer: complete, tag and check target objects; read and write the manifest files.
- cleanup: list and abort the targets' multipart uploads; read and write the manifest files.
- with planning=sharded (lambdas/sharding/), four more, each with only its step's rights:
  - plan-prepare: list the sources and targets (the partition's probes, the one-key location checks); read the
    sources (manifests of keys: an inventory or a CSV of keys in a source bucket); write the run's files;
  - plan-shard: list the sources and targets and HEAD their objects (HeadObject is authorised as s3:GetObject:
    Amazon S3 API reference, HeadObject, Permissions); read inventory files in the sources; write the run's files;
  - plan-collect: list and read the run's files (the shards' hand-ons) and write the next generation's items;
  - plan-assemble: read and write the run's files; read the sources' metadata and tags; start (and, when one
    fails, abort) the multipart uploads of split objects on the targets, with tags.
- the state machine: invoke these functions; run its own Distributed Maps (start its own child
  executions, describe and stop them, read the workers' payload lists in the manifest location); with
  notification_topic set, publish to that topic alone.
- with schedule_<name> settings: the planner (or, sharded, plan-prepare) may read exactly the stored configs
  the schedules name (s3:GetObject on each object), and the scheduler's role may start this state machine
  and nothing else.
KMS rights (only on the configured keys) go to the three roles that read or write object data. Buckets
narrowed to a prefix in the env file ("bucket/prefix/") get object rights under that prefix only, and
their ListBucket is conditioned on ``s3:prefix``. No statement has a "*" resource. With ``object_acl`` set
in the env, the planner and the worker may set that one canned ACL on the objects they write. A config's
expected_bucket_owner and request_payer need no right: they are request headers S3 checks against the bucket
(Amazon S3 user guide, "Verifying bucket ownership with bucket owner condition" and "Downloading objects from
Requester Pays buckets" name no permission for them; that the Service Authorization Reference has no action for
either is unverified here), and a Requester Pays bucket's owner grants the ordinary actions in its bucket policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from generator.settings import BucketScope, EnvSettings

Document = dict[str, Any]
Statement = dict[str, Any]

SOURCE_READ = ("s3:GetObject", "s3:GetObjectTagging")
# The planner starts the multipart uploads of split objects with the source's tags (x-amz-tagging), which
# S3 authorises as s3:PutObjectTagging besides s3:PutObject (Amazon S3 user guide, "Categorizing your objects
# using tags", on tagging at upload; Amazon S3 API reference, CreateMultipartUpload, x-amz-tagging).
PLANNER_TARGET = ("s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload")
# The assembler starts split objects' uploads as the planner does, but never reads a target object.
ASSEMBLER_TARGET = ("s3:AbortMultipartUpload", "s3:PutObject", "s3:PutObjectTagging")
WORKER_TARGET = ("s3:AbortMultipartUpload", "s3:GetObject", "s3:GetObjectTagging", "s3:ListMultipartUploadParts",
                 "s3:PutObject", "s3:PutObjectTagging")
FINALIZER_TARGET = ("s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject",
                    "s3:PutObjectTagging")
CLEANUP_TARGET = ("s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
MANIFEST_READ_WRITE = ("s3:GetObject", "s3:PutObject")
# The finalizer writes report.csv as a multipart upload in the run's folder, and it or cleanup aborts it when
# the run fails (AbortMultipartUpload is its own action: Amazon S3 user guide, "Multipart upload API and
# permissions").
MANIFEST_REPORT_WRITER = (*MANIFEST_READ_WRITE, "s3:AbortMultipartUpload")
KMS_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*")
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
MANIFEST_BUCKET_RESOURCE = "ManifestBucket"  # logical id of the bucket when the stack creates it


@dataclass(frozen=True)
class Location:
    """Where a role may act: a bucket ARN expression and an optional key prefix."""

    bucket_arn: str  # a Fn::Sub body, e.g. "arn:${AWS::Partition}:s3:::my-bucket"
    prefix: str = ""

    def objects(self) -> Any:
        return _sub(f"{self.bucket_arn}/{self.prefix}*")

    def bucket(self) -> Any:
        return _sub(self.bucket_arn)


def _sub(body: str) -> Any:
    return {"Fn::Sub": body}


def bucket_location(scope: BucketScope) -> Location:
    return Location(f"arn:${{AWS::Partition}}:s3:::{scope.bucket}", scope.prefix)


def source_locations(settings: EnvSettings) -> list[Location]:
    return [bucket_location(scope) for scope in settings.source_buckets]


def target_locations(settings: EnvSettings) -> list[Location]:
    return [bucket_location(scope) for scope in settings.target_buckets]


def manifest_location(settings: EnvSettings) -> Location:
    if settings.manifest_bucket is None:
        return Location(f"${{{MANIFEST_BUCKET_RESOURCE}.Arn}}", settings.manifest_prefix)
    return Location(f"arn:${{AWS::Partition}}:s3:::{settings.manifest_bucket}", settings.manifest_prefix)


def log_group_arn(function_name: str) -> Any:
    return _sub(f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/"
                f"{function_name}:*")


# --- statements -------------------------------------------------------------------------------------------
def objects_statement(sid: str, actions: Sequence[str], locations: Iterable[Location]) -> Statement:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions),
            "Resource": [loc.objects() for loc in locations]}


def list_statements(sid: str, locations: Sequence[Location]) -> list[Statement]:
    """ListBucket on each bucket; a bucket narrowed to prefixes may be listed only under them."""
    by_bucket: dict[str, set[str]] = {}
    for loc in locations:
        by_bucket.setdefault(loc.bucket_arn, set()).add(loc.prefix)
    whole = sorted(arn for arn, prefixes in by_bucket.items() if "" in prefixes)
    statements: list[Statement] = []
    if whole:
        statements.append({"Sid": sid, "Effect": "Allow", "Action": ["s3:ListBucket"],
                           "Resource": [_sub(arn) for arn in whole]})
    # Buckets narrowed to the same prefixes share one statement: a role's inline policies have a size limit.
    by_prefixes: dict[tuple[str, ...], list[str]] = {}
    for arn, bucket_prefixes in by_bucket.items():
        if "" not in bucket_prefixes:
            by_prefixes.setdefault(tuple(sorted(bucket_prefixes)), []).append(arn)
    for number, (shared, arns) in enumerate(sorted(by_prefixes.items()), start=1):
        statements.append({"Sid": f"{sid}Prefix{number}", "Effect": "Allow", "Action": ["s3:ListBucket"],
                           "Resource": [_sub(arn) for arn in sorted(arns)],
                           "Condition": {"StringLike": {"s3:prefix": [p + "*" for p in shared]}}})
    return statements


def acl_statements(settings: EnvSettings, locations: Iterable[Location]) -> list[Statement]:
    """s3:PutObjectAcl on the targets, for the env's object_acl only (none when it is unset).

    A canned ACL sent with a write (x-amz-acl on CopyObject and CreateMultipartUpload) needs s3:PutObjectAcl
    besides s3:PutObject, and the s3:x-amz-acl condition key holds the ACL asked for (Amazon S3 user guide,
    "Bucket policy examples using condition keys", example 1; AWS re:Post knowledge center "When other AWS
    accounts upload objects to my Amazon S3 bucket, how can I require that they grant me full control": a
    cross-account upload with --acl bucket-owner-full-control is allowed s3:PutObject and s3:PutObjectAcl
    under StringEquals s3:x-amz-acl). The condition is on this statement alone: UploadPartCopy and
    CompleteMultipartUpload carry no ACL and need s3:PutObject only (Amazon S3 user guide, "Multipart upload
    API and permissions"), so the finalizer gets no ACL right at all."""
    if not settings.object_acl:
        return []
    return [{**objects_statement("SetObjectAcl", ("s3:PutObjectAcl",), locations),
             "Condition": {"StringEquals": {"s3:x-amz-acl": settings.object_acl}}}]


def kms_statements(settings: EnvSettings) -> list[Statement]:
    if not settings.kms_key_arns:
        return []
    return [{"Sid": "UseKmsKeys", "Effect": "Allow", "Action": list(KMS_ACTIONS),
             "Resource": list(settings.kms_key_arns)}]


def log_statement(function_name: str) -> Statement:
    return {"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": list(LOG_ACTIONS),
            "Resource": [log_group_arn(function_name)]}


def _document(statements: list[Statement]) -> Document:
    return {"Version": "2012-10-17", "Statement": statements}


def _manifest_statements(settings: EnvSettings, actions: Sequence[str] = MANIFEST_READ_WRITE) -> list[Statement]:
    manifest = manifest_location(settings)
    return [objects_statement("ReadWriteRunFiles", actions, [manifest]),
            *list_statements("ListRunFiles", [manifest])]


# --- one document per function -----------------------------------------------------------------------------
def stored_config_statements(settings: EnvSettings) -> list[Statement]:
    """s3:GetObject on each stored config a schedule names (the object alone, no prefix, no wildcard): a
    scheduled run's input names its config (lambdas/stored_config.py), which the planner reads."""
    if not settings.schedules:
        return []
    objects = sorted({f"arn:${{AWS::Partition}}:s3:::{s.config_bucket}/{s.config_key}" for s in settings.schedules})
    return [{"Sid": "ReadStoredConfigs", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": [_sub(arn) for arn in objects]}]


def planner_policy(settings: EnvSettings, function_name: str) -> Document:
    sources = source_locations(settings)
    targets = target_locations(settings)
    return _document([
        log_statement(function_name),
        *stored_config_statements(settings),
        objects_statement("ReadSources", SOURCE_READ, sources),
        *list_statements("ListSources", sources),
        objects_statement("StartSplitCopies", PLANNER_TARGET, targets),
        *acl_statements(settings, targets),
        *list_statements("ListTargets", targets),
        *_manifest_statements(settings),
        *kms_statements(settings),
    ])


def prepare_policy(settings: EnvSettings, function_name: str) -> Document:
    sources = source_locations(settings)
    targets = target_locations(settings)
    return _document([
        log_statement(function_name),
        *stored_config_statements(settings),
        objects_statement("ReadSourceManifests", ("s3:GetObject",), sources),
        *list_statements("ListSources", sources),
        *list_statements("ListTargets", targets),
        *_manifest_statements(settings),
        *kms_statements(settings),
    ])


def shard_policy(settings: EnvSettings, function_name: str) -> Document:
    sources = source_locations(settings)
    targets = target_locations(settings)
    return _document([
        log_statement(function_name),
        objects_statement("HeadSources", ("s3:GetObject",), sources),
        *list_statements("ListSources", sources),
        objects_statement("HeadTargets", ("s3:GetObject",), targets),
        *list_statements("ListTargets", targets),
        *_manifest_statements(settings),
        *kms_statements(settings),
    ])


def collect_policy(settings: EnvSettings, function_name: str) -> Document:
    return _document([log_statement(function_name), *_manifest_statements(settings)])


def assemble_policy(settings: EnvSettings, function_name: str) -> Document:
    sources = source_locations(settings)
    targets = target_locations(settings)
    return _document([
        log_statement(function_name),
        objects_statement("ReadSources", SOURCE_READ, sources),
        objects_statement("StartSplitCopies", ASSEMBLER_TARGET, targets),
        *acl_statements(settings, targets),
        *_manifest_statements(settings),
        *kms_statements(settings),
    ])


def worker_policy(settings: EnvSettings, function_name: str) -> Document:
    sources = source_locations(settings)
    targets = target_locations(settings)
    return _document([
        log_statement(function_name),
        objects_statement("ReadSources", SOURCE_READ, sources),
        *list_statements("ListSources", sources),
        objects_statement("WriteTargets", WORKER_TARGET, targets),
        *acl_statements(settings, targets),
        *list_statements("ListTargets", targets),
        *_manifest_statements(settings),
        *kms_statements(settings),
    ])


def restore_policy(settings: EnvSettings, function_name: str) -> Document:
    """The restore function (restore_archived=true only): the worker's rights, since it copies what became
    readable with the worker's copy core, plus s3:RestoreObject on the sources alone (Amazon S3 API Reference,
    "RestoreObject", Permissions: "you must have permissions to perform the s3:RestoreObject action")."""
    sources = source_locations(settings)
    worker = worker_policy(settings, function_name)
    return _document([*worker["Statement"], objects_statement("RestoreSources", ("s3:RestoreObject",), sources)])


def finalizer_policy(settings: EnvSettings, function_name: str) -> Document:
    targets = target_locations(settings)
    return _document([
        log_statement(function_name),
        objects_statement("CompleteAndCheckTargets", FINALIZER_TARGET, targets),
        *list_statements("ListTargets", targets),
        *_manifest_statements(settings, MANIFEST_REPORT_WRITER),
        *kms_statements(settings),
    ])


def cleanup_policy(settings: EnvSettings, function_name: str) -> Document:
    targets = target_locations(settings)
    buckets = sorted({t.bucket_arn for t in targets})
    return _document([
        log_statement(function_name),
        objects_statement("AbortTargetUploads", CLEANUP_TARGET, targets),
        {"Sid": "FindTargetUploads", "Effect": "Allow", "Action": ["s3:ListBucketMultipartUploads"],
         "Resource": [_sub(arn) for arn in buckets]},
        *_manifest_statements(settings, MANIFEST_REPORT_WRITER),
    ])


def state_machine_policy(settings: EnvSettings, function_logical_ids: Sequence[str]) -> Document:
    """Invoke the four functions, and what a Distributed Map needs of its state machine's role (Step Functions
    developer guide, "IAM policies for using Distributed Map states": states:StartExecution on the state
    machine itself, states:DescribeExecution and states:StopExecution on its executions, and s3:GetObject on
    the object an ItemReader reads).

    The machine's ARN is built from its name (the stack name, which the template gives it), not taken from
    the machine: the machine depends on this role, so a reference back would be a circular dependency. Child
    executions are named "<machine>/<map label>:<id>" (the Map Run ARN "…:mapRun:<machine>/<label>:<id>",
    developer guide, "Examining Map Run"), hence the second execution pattern; the first is the one the
    guide's example grants. The lists are read from the run folders' plan/workers/ and finalizer/shards.json
    only."""
    account = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    manifest = manifest_location(settings)
    statements: list[Statement] = [
        {"Sid": "InvokeOwnFunctions", "Effect": "Allow", "Action": ["lambda:InvokeFunction"],
         "Resource": [{"Fn::GetAtt": [logical, "Arn"]} for logical in function_logical_ids]},
        {"Sid": "StartOwnChildExecutions", "Effect": "Allow", "Action": ["states:StartExecution"],
         "Resource": [_sub(f"{account}:stateMachine:{settings.stack_name}")]},
        {"Sid": "SuperviseOwnChildExecutions", "Effect": "Allow",
         "Action": ["states:DescribeExecution", "states:StopExecution"],
         "Resource": [_sub(f"{account}:execution:{settings.stack_name}:*"),
                      _sub(f"{account}:execution:{settings.stack_name}/*"),
                      # The Service Authorization Reference lists DescribeExecution on two resource types, execution
                      # and express, and parliament wants both named. This machine and its children are STANDARD,
                      # so the express pattern (still this machine's name only) matches nothing that exists.
                      _sub(f"{account}:express:{settings.stack_name}:*:*")]},
        {"Sid": "ReadWorkerLists", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": [_sub(f"{manifest.bucket_arn}/{manifest.prefix}runs/*/plan/workers/*"),
                      # The FinalizeShards Map's items (lambdas/finalize_shards.py, shards_key).
                      _sub(f"{manifest.bucket_arn}/{manifest.prefix}runs/*/finalizer/shards.json")]},
    ]
    if settings.sharded:
        # The PlanShards Map reads each generation's shard items (lambdas/sharding/layout.py: shards.json and
        # shards-gen<NN>.json), not the shards' own files under plan/sharding/shards/.
        run_files = f"{manifest.bucket_arn}/{manifest.prefix}runs/*/plan/sharding"
        statements.append({"Sid": "ReadShardLists", "Effect": "Allow", "Action": ["s3:GetObject"],
                           "Resource": [_sub(f"{run_files}/shards.json"), _sub(f"{run_files}/shards-gen*.json")]})
    if settings.notifications:
        # The optimized SNS integration publishes with the state machine's role (Step Functions developer guide,
        # "Call Amazon SNS with Step Functions", IAM policies: sns:Publish on the topic).
        statements.append({"Sid": "PublishRunSummaries", "Effect": "Allow", "Action": ["sns:Publish"],
                           "Resource": [notification_topic_arn(settings)]})
    if settings.kms_key_arns:
        # A manifest bucket of the env's own may encrypt the lists with one of its keys: reading them then
        # needs kms:Decrypt (Amazon S3 user guide, "Using server-side encryption with AWS KMS keys").
        statements.append({"Sid": "DecryptWorkerLists", "Effect": "Allow", "Action": ["kms:Decrypt"],
                           "Resource": list(settings.kms_key_arns)})
    return _document(statements)


NOTIFICATION_TOPIC_RESOURCE = "NotificationTopic"  # logical id of the topic when the stack creates it
SCHEDULER_SERVICE = "scheduler.amazonaws.com"


def notification_topic_arn(settings: EnvSettings) -> Any:
    """The topic's ARN: a Ref to the stack's topic (an SNS topic's Ref is its ARN: CloudFormation reference,
    AWS::SNS::Topic, Return values), or the env's ARN."""
    return {"Ref": NOTIFICATION_TOPIC_RESOURCE} if settings.creates_topic else settings.notification_topic


def scheduler_policy(settings: EnvSettings) -> Document:
    """The schedules' execution role: start executions of this state machine, nothing else (EventBridge
    Scheduler User Guide, "Using templated targets", Step Functions StartExecution: states:StartExecution on
    the state machine). Its ARN is built from its name, as in state_machine_policy."""
    account = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    return _document([{"Sid": "StartScheduledRuns", "Effect": "Allow", "Action": ["states:StartExecution"],
                       "Resource": [_sub(f"{account}:stateMachine:{settings.stack_name}")]}])


def assume_role_policy(service: str) -> Document:
    """Trust policy: only ``service`` (lambda.amazonaws.com or states.amazonaws.com) may assume the role.

    EventBridge Scheduler's role trusts it only on behalf of this account's schedules (EventBridge Scheduler User
    Guide, "Confused deputy prevention": aws:SourceAccount in the execution role's trust policy)."""
    statement: Statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if service == SCHEDULER_SERVICE:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    return _document([statement])


def tls_only_bucket_policy(bucket_logical_id: str) -> Document:
    """Deny every request to the bucket that does not use TLS."""
    return _document([{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [_sub(f"${{{bucket_logical_id}.Arn}}"), _sub(f"${{{bucket_logical_id}.Arn}}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }])
