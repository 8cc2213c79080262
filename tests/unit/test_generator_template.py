"""The template: golden files, worker scaling, cfn-lint, the manifest bucket and the functions' settings."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint

from generator import available_envs, load_env, render_template, write_template
from generator.state_machine import Functions, build_definition
from lambdas.errors import SettingsError
from tests.unit.generator_helpers import settings_for

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("PlannerFunction", "WorkerFunction", "FinalizerFunction", "CleanupFunction")


def template_of(tmp_path: Path, **changes: str | None) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(render_template(settings_for(tmp_path, **changes)))
    return result


def definition_of(template: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        template["Resources"]["StateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"])
    return result


@pytest.mark.parametrize("env", available_envs(ROOT / "envs"))
def test_committed_template_is_current(env: str) -> None:
    # GIVEN the env file  WHEN the template is generated again  THEN it equals the committed cfn/<env>.json
    expected = render_template(load_env(env, ROOT / "envs", environ={}))
    committed = ROOT / "cfn" / f"{env}.json"
    assert committed.is_file(), f"cfn/{env}.json is missing: run `python -m generator {env}` and commit it"
    assert committed.read_text() == expected, (
        f"cfn/{env}.json is stale: run `python -m generator {env}` (or `sfncopy generate --env {env}`) and commit it")


def test_every_committed_template_has_an_env() -> None:
    assert sorted(p.stem for p in (ROOT / "cfn").glob("*.json")) == available_envs(ROOT / "envs")


def test_generation_is_byte_identical(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert render_template(settings) == render_template(settings)


def test_two_to_five_workers_changes_only_the_branches(tmp_path: Path) -> None:
    # GIVEN the same env with 2 and with 5 workers
    two = template_of(tmp_path, num_copy_lambda_workers="2")
    five = template_of(tmp_path, num_copy_lambda_workers="5")
    # THEN the 5-worker machine has exactly 5 branches, the first two identical to the 2-worker ones
    two_copy, five_copy = definition_of(two)["States"]["Copy"], definition_of(five)["States"]["Copy"]
    assert len(five_copy["Branches"]) == 5
    assert five_copy["Branches"][:2] == two_copy["Branches"]
    assert sorted(five_copy["Parameters"]) == sorted(
        ["run_id.$", "manifest.$"] + [f"worker{i}.$" for i in range(5)])
    # AND the planner is told the branch count by the machine itself (no second copy to drift)
    assert definition_of(five)["States"]["Plan"]["Parameters"]["workers"] == 5
    assert "SFNCOPY_WORKERS" not in five["Resources"]["PlannerFunction"]["Properties"]["Environment"]["Variables"]
    # AND nothing else differs but the worker count the Plan state and the outputs report
    assert normalise(two) == normalise(five)


def test_worker_concurrency_sets_each_workers_max_concurrency_and_nothing_else(tmp_path: Path) -> None:
    # GIVEN the same env with the default worker_concurrency and with 16
    default = definition_of(template_of(tmp_path, num_copy_lambda_workers="3"))
    sixteen = definition_of(template_of(tmp_path, num_copy_lambda_workers="3", worker_concurrency="16"))
    # THEN every worker's Distributed Map runs 1, resp. 16, payloads at once
    for definition, expected in ((default, 1), (sixteen, 16)):
        branches = definition["States"]["Copy"]["Branches"]
        assert [b["States"][b["StartAt"]].pop("MaxConcurrency") for b in branches] == [expected] * 3
    # AND nothing else differs
    assert default == sixteen


def normalise(template: dict[str, Any]) -> dict[str, Any]:
    """The template without what must change with the worker count."""
    result = copy.deepcopy(template)
    definition = definition_of(result)
    definition["States"]["Copy"]["Branches"] = []
    parameters = definition["States"]["Copy"]["Parameters"]
    definition["States"]["Copy"]["Parameters"] = {k: v for k, v in parameters.items() if not k.startswith("worker")}
    result["Resources"]["StateMachine"]["Properties"]["DefinitionString"] = definition
    del definition["States"]["Plan"]["Parameters"]["workers"]
    del result["Outputs"]["Workers"]
    return result


@pytest.mark.slow  # cfn-lint takes ~2 s a template
@pytest.mark.parametrize("env", available_envs(ROOT / "envs"))
def test_cfn_lint_finds_no_errors(env: str) -> None:
    matches = lint((ROOT / "cfn" / f"{env}.json").read_text())
    assert [str(m) for m in matches if m.rule.id.startswith("E")] == []


@pytest.mark.slow
def test_cfn_lint_accepts_the_definition_itself(tmp_path: Path) -> None:
    # cfn-lint does not look inside a DefinitionString; give it the definition as an object.
    arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    definition = build_definition(3, Functions(arn, arn, arn, arn))
    template = {"Resources": {"Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
        "Definition": definition, "RoleArn": "arn:aws:iam::123456789012:role/r"}}}}
    problems = [m for m in lint(json.dumps(template)) if m.rule.id.startswith("E")]
    # cfn-lint's ASL schema lacks Parallel.Parameters, which AWS documents ("Used to pass information to the
    # state machines defined in the Branches array"); that one finding is a schema gap, not ours.
    assert [str(m) for m in problems if m.path[-2:] != ["Copy", "Parameters"]] == []


def test_functions_use_the_env_settings(tmp_path: Path) -> None:
    template = template_of(tmp_path, worker_timeout_seconds="600", worker_memory_mb="2048", copy_cutoff_mb="16",
                           source_buckets="src-a/data/ src-b", log_retention_days="7")
    resources = template["Resources"]
    worker = resources["WorkerFunction"]["Properties"]
    assert (worker["Timeout"], worker["MemorySize"], worker["Runtime"]) == (600, 2048, "python3.12")
    assert worker["Handler"] == "lambdas.handlers.copy"
    assert worker["FunctionName"] == "sfncopy-test-worker"
    assert worker["Code"] == {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}
    variables = worker["Environment"]["Variables"]
    assert variables["SFNCOPY_MANIFEST_BUCKET"] == {"Ref": "ManifestBucket"}
    assert variables["SFNCOPY_MANIFEST_PREFIX"] == "sfncopy/"
    assert "SFNCOPY_WORKERS" not in variables  # the Plan state passes the branch count (one place)
    assert variables["SFNCOPY_DEADLINE_MARGIN_SECONDS"] == "60"
    assert variables["SFNCOPY_COPY_CUTOFF_BYTES"] == str(16 * 1024 * 1024)
    assert "SFNCOPY_PART_SIZE_BYTES" not in variables  # not set: the Lambda's default applies
    assert variables["SFNCOPY_SOURCE_BUCKETS"] == "src-a src-b"
    handlers = {name: resources[name]["Properties"]["Handler"] for name in FUNCTIONS}
    assert handlers == {"PlannerFunction": "lambdas.handlers.plan", "WorkerFunction": "lambdas.handlers.copy",
                        "FinalizerFunction": "lambdas.handlers.finalize",
                        "CleanupFunction": "lambdas.handlers.clean_up"}
    for name in FUNCTIONS:
        log_group = resources[name.replace("Function", "LogGroup")]["Properties"]
        assert log_group == {"LogGroupName": f"/aws/lambda/{resources[name]['Properties']['FunctionName']}",
                             "RetentionInDays": 7}
    assert template["Parameters"]["CodeBucket"]["Default"] == "pkg-bucket"


def test_created_manifest_bucket_is_private_encrypted_tls_only_and_self_cleaning(tmp_path: Path) -> None:
    resources = template_of(tmp_path)["Resources"]
    bucket = resources["ManifestBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["AbortIncompleteMultipartUploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rules["ExpireRunFiles"]["Prefix"] == "sfncopy/runs/"
    assert rules["ExpireRunFiles"]["ExpirationInDays"] == 30
    (statement,) = resources["ManifestBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_existing_manifest_bucket_is_used_not_created(tmp_path: Path) -> None:
    template = template_of(tmp_path, manifest_bucket="my-manifests", manifest_prefix=None)
    assert "ManifestBucket" not in template["Resources"]
    assert template["Outputs"]["ManifestBucket"]["Value"] == "my-manifests"
    assert "ManifestPrefix" not in template["Outputs"]  # no prefix: runs/ at the bucket's root
    variables = template["Resources"]["PlannerFunction"]["Properties"]["Environment"]["Variables"]
    assert (variables["SFNCOPY_MANIFEST_BUCKET"], variables["SFNCOPY_MANIFEST_PREFIX"]) == ("my-manifests", "")


def test_outputs_name_the_machine_the_manifest_and_the_functions(tmp_path: Path) -> None:
    outputs = template_of(tmp_path)["Outputs"]
    assert set(outputs) == {"StateMachineArn", "StateMachineName", "ManifestBucket", "ManifestPrefix", "Workers",
                            "PlannerFunctionName", "WorkerFunctionName", "FinalizerFunctionName",
                            "CleanupFunctionName"}
    assert outputs["ManifestPrefix"]["Value"] == "sfncopy/"


def test_write_template_writes_only_on_change(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "envs")
    out = tmp_path / "cfn" / "test.json"
    assert write_template(settings, out) is True
    assert write_template(settings, out) is False
    assert write_template(settings.with_workers(3), out) is True
    assert json.loads(out.read_text())["Outputs"]["Workers"]["Value"] == "3"


def test_entry_point_writes_the_template_and_reports_bad_settings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from generator.__main__ import main
    from tests.unit.generator_helpers import write_env

    # GIVEN an env file  WHEN `python -m generator test --workers 3 --out FILE` runs  THEN FILE has 3 branches
    write_env(tmp_path / "envs")
    out = tmp_path / "out.json"
    assert main(["test", "--workers", "3", "--out", str(out), "--envs-dir", str(tmp_path / "envs")]) == 0
    assert len(definition_of(json.loads(out.read_text()))["States"]["Copy"]["Branches"]) == 3
    # GIVEN a bad value  THEN exit 2 and one line naming the variable and the file
    write_env(tmp_path / "envs", num_copy_lambda_workers="0")
    assert main(["test", "--out", str(out), "--envs-dir", str(tmp_path / "envs")]) == 2
    error = capsys.readouterr().err
    assert "num_copy_lambda_workers='0'" in error and "test-env.sh" in error


@pytest.mark.parametrize("env", available_envs(ROOT / "envs"))
def test_lambda_environment_is_accepted_by_lambdas_settings(env: str) -> None:
    from generator.template import lambda_environment
    from lambdas.settings import Settings

    # GIVEN the variables the template gives every function (the created bucket's Ref replaced by a name)
    settings = load_env(env, ROOT / "envs", environ={})
    variables = {k: v if isinstance(v, str) else "created-bucket" for k, v in lambda_environment(settings).items()}
    # WHEN the Lambda reads them  THEN they are valid and mean what the env file says
    plan_event = definition_of(json.loads(render_template(settings)))["States"]["Plan"]["Parameters"]
    read = Settings.from_environ(variables).with_branches(plan_event["workers"])
    assert read.workers == settings.workers
    assert read.max_payload_size_mb == settings.max_payload_size_mb
    assert read.deadline_margin_seconds == settings.deadline_margin_seconds
    assert set(read.source_buckets) == {s.bucket for s in settings.source_buckets}


@pytest.mark.parametrize("workers", [0, 1001, "4", 2.0, True])
def test_a_branch_count_the_machine_cannot_have_is_a_settings_error(workers: object) -> None:
    from lambdas.settings import Settings

    with pytest.raises(SettingsError, match=r"event field workers=.* must be a whole number from 1 to 1000"):
        Settings("m").with_branches(workers)


def test_the_plan_events_branch_count_beats_the_environment() -> None:
    from lambdas.settings import Settings

    environment = Settings.from_environ({"SFNCOPY_MANIFEST_BUCKET": "m", "SFNCOPY_WORKERS": "2"})
    assert (environment.workers, environment.with_branches(7).workers, environment.with_branches(None).workers) == (
        2, 7, 2)
