"""The ``sfncopy`` command line. Each command builds objects and delegates; errors reach the user as one
clear line (``--debug`` shows the traceback instead).

Exit codes: 0 success; 1 an execution failed or a command could not finish; 2 bad input (usage, an
invalid config file, an unknown environment).

Configuration precedence: a command-line argument beats the process environment, which beats
``envs/ENV-env.sh``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

import click
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from lambdas.errors import ConfigError, SettingsError, SfnCopyError
from sfncopy import execution
from sfncopy.progress import LinePrinter
from sfncopy.summary import config_lines, report_lines

if TYPE_CHECKING:
    from generator.settings import EnvSettings
    from lambdas.models import CopyConfig

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class ProblemsError(click.ClickException):
    """Bad input with one or more problems: printed one per line, exit code 2."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, head: str, problems: list[str]) -> None:
        super().__init__(head)
        self.problems = problems

    def show(self, file: IO[Any] | None = None) -> None:
        out = file or sys.stderr
        click.echo(f"error: {self.message}", file=out)
        for problem in self.problems:
            click.echo(f"  - {problem}", file=out)


class FailedChecks(ProblemsError):
    """Checks of a finished run failed: the same listing, exit code 1."""

    exit_code = EXIT_FAILED


class _Group(click.Group):
    """Turns every error into one line and an exit code, unless ``--debug`` asks for the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as err:
            if ctx.params.get("debug"):
                raise
            raise _one_line(err) from err


def _one_line(err: Exception) -> click.ClickException:
    if isinstance(err, ConfigError):
        count = len(err.problems)
        return ProblemsError(f"{count} problem{'s' if count != 1 else ''} in the s3_copy_config", err.problems)
    if isinstance(err, SettingsError):
        problems = getattr(err, "problems", None)
        if problems:
            return ProblemsError(f"{len(problems)} problem(s) in {getattr(err, 'path', 'the environment')}",
                                 list(problems))
        return ProblemsError(str(err), [])
    if isinstance(err, NoCredentialsError):
        return click.ClickException("no AWS credentials found: configure a profile or AWS_ACCESS_KEY_ID "
                                    "(for the embedded emulator: --env local)")
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return click.ClickException(f"AWS said {error.get('Code', '?')}: {error.get('Message', err)} "
                                    f"({err.operation_name})")
    if isinstance(err, BotoCoreError):
        return click.ClickException(f"{err} (is the endpoint reachable? for the emulator: sfncopy emulator)")
    if isinstance(err, SfnCopyError):
        return click.ClickException(str(err))
    return click.ClickException(f"{type(err).__name__}: {err} (run with --debug for the traceback)")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.option("--envs-dir", default="envs", show_default=True, envvar="SFNCOPY_ENVS_DIR",
              type=click.Path(file_okay=False, path_type=Path), help="Where ENV-env.sh files live.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, envs_dir: Path) -> None:
    """Copy very large numbers of S3 objects with AWS Step Functions and Lambda."""
    ctx.obj = envs_dir
    route_library_logs(debug)


def route_library_logs(debug: bool) -> None:
    """The library's JSON logs (lambdas.logs writes them to stdout, as Lambda wants) go to stderr here, and
    only warnings unless --debug: stdout is for the command's own output (``--json`` must parse)."""
    from lambdas.logs import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("sfncopy")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    root.propagate = False


def main() -> None:
    cli(prog_name="sfncopy")


# --- shared steps ------------------------------------------------------------------------------------
def load_config(path: str) -> tuple[Any, CopyConfig]:
    """The file's JSON document and the validated config; ProblemsError (exit 2) otherwise."""
    from lambdas.config import load_config_text

    file = Path(path)
    if not file.is_file():
        raise ProblemsError(f"{path}: no such file", [])
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ProblemsError(f"{path}: cannot read it as UTF-8 text: {err}", []) from err
    try:
        config = load_config_text(text, path)
    except ConfigError as err:
        count = len(err.problems)
        raise ProblemsError(f"{path}: {count} problem{'s' if count != 1 else ''}", err.problems) from err
    return json.loads(text), config


def load_env(ctx: click.Context, name: str) -> EnvSettings:
    from generator.settings import load_env as load

    envs_dir: Path = ctx.find_root().obj
    return load(name, envs_dir=envs_dir)


def clients_for(settings: EnvSettings) -> execution.AwsClients:
    return execution.AwsClients.create(settings.region, dict(settings.client_environment))


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)  # exit code 1


def wait_and_report(aws: execution.AwsClients, arn: str, files: Callable[[], execution.RunFiles | None]) -> None:
    """Follow the execution with a progress line, then print its summary; exit 1 when it failed."""
    printer = LinePrinter()
    status = execution.follow(aws.sfn, arn, files, printer, map_runs=execution.MapRuns(aws.sfn, arn))
    printer.end()
    run = files()
    report = execution.read_report(aws.s3, status, run.location if run is not None else None)
    for line in report_lines(report or {}):
        click.echo(line)
    if not status.succeeded:
        fail(f"execution {status.status}: {status.error or '?'}: {status.cause or 'no cause given'}")


# --- commands ----------------------------------------------------------------------------------------
@cli.command()
@click.argument("config_path", metavar="CONFIG.json")
def validate(config_path: str) -> None:
    """Check an s3_copy_config file; list every problem (exit 2) or summarise it."""
    _, config = load_config(config_path)
    click.echo(f"{config_path}: valid")
    for line in config_lines(config):
        click.echo("  " + line)


@cli.command()
@click.argument("config_path", metavar="CONFIG.json")
@click.option("--env", "env_name", required=True, help="Environment (envs/ENV-env.sh).")
@click.option("--workers", type=click.IntRange(min=1), help="Plan for this many workers instead of the env's.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_context
def plan(ctx: click.Context, config_path: str, env_name: str, workers: int | None, as_json: bool) -> None:
    """Dry run against the environment's buckets: what would be copied, how it is spread, what it costs."""
    from sfncopy import dry_run

    document, _ = load_config(config_path)
    settings = load_env(ctx, env_name)
    if workers is not None:
        settings = settings.with_workers(workers)
    aws = clients_for(settings)
    result = dry_run.plan(document, settings, aws.s3)
    concurrency = dry_run.check_concurrency(aws.lam, settings, result)
    room = dry_run.headroom(result, settings, concurrency)
    if as_json:
        click.echo(json.dumps({**result.to_dict(), "lambda_concurrency": concurrency.to_dict(),
                               "headroom": room.to_dict()}, indent=2, sort_keys=True))
    else:
        click.echo("\n".join(result.lines() + room.lines()))
    if concurrency.verdict == "refuse":
        fail(concurrency.message())
    if not as_json:
        click.echo(("warning: " if concurrency.verdict == "warn" else "") + concurrency.message())


@cli.command("start-execution")
@click.argument("config_path", metavar="CONFIG.json")
@click.option("--env", "env_name", required=True, help="Environment (envs/ENV-env.sh).")
@click.option("--name", help="Execution name (the run id); default: generated by Step Functions.")
@click.option("--wait", is_flag=True, help="Show progress until the execution ends, then its report.")
@click.pass_context
def start_execution(ctx: click.Context, config_path: str, env_name: str, name: str | None, wait: bool) -> None:
    """Validate a config locally, then start the environment's state machine with it."""
    document, config = load_config(config_path)
    if name is not None:
        execution.check_name(name)
    settings = load_env(ctx, env_name)
    execution.check_buckets_allowed(config, settings)
    aws = clients_for(settings)
    outputs = execution.stack_outputs(aws.cfn, settings.stack_name)
    arn = execution.start_execution(aws.sfn, outputs.state_machine_arn, document, name)
    click.echo(arn)
    if wait:
        location = outputs.run_location(execution.run_id_of(arn))
        wait_and_report(aws, arn, execution.files_finder(aws.sfn, aws.s3, arn, location))


@cli.command()
@click.argument("arn", metavar="EXECUTION_ARN")
@click.option("--watch", is_flag=True, help="Keep showing progress until the execution ends.")
@click.option("--env", "env_name", help="Environment whose endpoint/credentials to use (envs/ENV-env.sh).")
@click.pass_context
def status(ctx: click.Context, arn: str, watch: bool, env_name: str | None) -> None:
    """Status and progress of an execution."""
    aws = _clients_for_arn(ctx, arn, env_name)
    files = execution.files_finder(aws.sfn, aws.s3, arn)
    if watch:
        wait_and_report(aws, arn, files)
        return
    current = execution.describe(aws.sfn, arn)
    click.echo(f"{current.name}: {current.status} (started {current.started}"
               + (f", stopped {current.stopped})" if current.stopped else ")"))
    run = files()
    snap = run.snapshot() if run is not None else None
    if snap is not None:
        from sfncopy.progress import render

        payloads = execution.MapRuns(aws.sfn, arn).counts()
        click.echo(render(snap, None, None if not current.finished else 0.0, payloads))
        for line in run.worker_lines() if run is not None else []:
            click.echo(line)
    if current.error or current.cause:
        click.echo(f"{current.error}: {current.cause}")


@cli.command()
@click.argument("arn", metavar="EXECUTION_ARN")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also save the report as one CSV (one row per object) to this file.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the run's HTML report (timeline per worker, bytes over time, failures, cost beside "
                   "the plan's estimate) to this file.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json as it is.")
@click.option("--env", "env_name", help="Environment whose endpoint/credentials to use (envs/ENV-env.sh).")
@click.pass_context
def report(ctx: click.Context, arn: str, csv_path: Path | None, html_path: Path | None, as_json: bool,
           env_name: str | None) -> None:
    """The report of an execution (report.json, or failure.json when it failed early)."""
    aws = _clients_for_arn(ctx, arn, env_name)
    current = execution.describe(aws.sfn, arn)
    location = execution.find_run_location(aws.sfn, arn)
    data = execution.read_report(aws.s3, current, location)
    if data is None:
        fail(f"execution {current.name} ({current.status}) has no report yet")
    click.echo(json.dumps(data, indent=2, sort_keys=True) if as_json else "\n".join(report_lines(data)))
    if csv_path is not None:
        from sfncopy.report_csv import save_csv

        _, csv_uri = execution.report_uris(current, location)
        source = save_csv(aws.s3, data, csv_uri, csv_path)  # report.csv, or the header and every part
        click.echo(f"saved {source} to {csv_path}", err=True)
    if html_path is not None:
        from sfncopy.report_html import save_html

        if location is None:
            fail(f"execution {current.name} has no plan to draw (it stopped before planning)")
        size = save_html(aws.s3, location, data, html_path)
        click.echo(f"saved the HTML report ({size:,} bytes) to {html_path}", err=True)


def _clients_for_arn(ctx: click.Context, arn: str, env_name: str | None) -> execution.AwsClients:
    if env_name:
        return clients_for(load_env(ctx, env_name))
    return execution.AwsClients.create(execution.region_of(arn))


@cli.command()
@click.option("--env", "env_name", required=True, help="Environment (envs/ENV-env.sh).")
@click.option("--workers", type=click.IntRange(min=1), help="Override num_copy_lambda_workers.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Template file [cfn/ENV.json].")
@click.pass_context
def generate(ctx: click.Context, env_name: str, workers: int | None, out: Path | None) -> None:
    """Write the CloudFormation template of an environment."""
    from generator import template_path, write_template

    settings = load_env(ctx, env_name)
    if workers is not None:
        settings = settings.with_workers(workers)
    target = out or template_path(settings)
    changed = write_template(settings, target)
    click.echo(f"{target}: {'written' if changed else 'unchanged'} ({settings.workers} workers)")


@cli.command()
@click.option("--env", "env_name", required=True, help="Environment (envs/ENV-env.sh).")
@click.pass_context
def package(ctx: click.Context, env_name: str) -> None:
    """Regenerate the template if needed and upload the Lambda code to the package bucket."""
    from sfncopy import deploy as deployment

    settings = load_env(ctx, env_name)
    key = deployment.package(settings)
    click.echo(f"s3://{settings.package_bucket}/{key}")


@cli.command()
@click.option("--env", "env_name", required=True, help="Environment (envs/ENV-env.sh).")
@click.pass_context
def deploy(ctx: click.Context, env_name: str) -> None:
    """Package, then create or update the environment's stack; print its outputs."""
    from sfncopy import deploy as deployment

    outputs = deployment.deploy(load_env(ctx, env_name))
    for key in sorted(outputs):
        click.echo(f"{key}: {outputs[key]}")


@cli.group()
def schedule() -> None:
    """EventBridge Scheduler schedules of an env: its schedule_<name> lines (sfncopy/schedule_file.py says why the
    env file, not the Scheduler API, is where they live). add/remove edit the file; deploy to apply."""


@schedule.command("list")
@click.option("--env", "env_name", required=True, help="Environment (envs/ENV-env.sh).")
@click.option("--deployed", is_flag=True, help="Also ask EventBridge Scheduler what the stack holds.")
@click.pass_context
def schedule_list(ctx: click.Context, env_name: str, deployed: bool) -> None:
    """The env's schedules: name, expression, time zone, stored config (and, --deployed, their state)."""
    from sfncopy import deploy as deployment
    from sfncopy.schedule_file import listing

    settings = load_env(ctx, env_name)
    rows = listing(settings, deployment.client(settings, "scheduler") if deployed else None)
    if not rows:
        click.echo(f"no schedules in {settings.path} (add one: sfncopy schedule add NAME EXPRESSION "
                   "s3://bucket/config.json --env ENV)")
    for row in rows:
        state = f"  [{row.deployed}]" if row.deployed else ""
        click.echo("  ".join(part for part in (row.name, row.expression, row.timezone, row.config_uri) if part)
                   + state)


@schedule.command("add")
@click.argument("name")
@click.argument("expression")
@click.argument("config_uri", metavar="s3://BUCKET/CONFIG.json")
@click.option("--env", "env_name", required=True, help="Environment (envs/ENV-env.sh).")
@click.option("--timezone", default="", help="IANA time zone the expression is evaluated in [UTC].")
@click.option("--deploy", "deploy_now", is_flag=True, help="Deploy the stack right after editing the env file.")
@click.pass_context
def schedule_add(ctx: click.Context, name: str, expression: str, config_uri: str, env_name: str, timezone: str,
                 deploy_now: bool) -> None:
    """Add schedule NAME: EXPRESSION (rate(...) or cron(...)) starts a run of the config stored at CONFIG_URI."""
    from sfncopy.schedule_file import edit, env_line, new_schedule

    added = new_schedule(name, expression, config_uri, timezone)
    settings = edit(env_name, ctx.find_root().obj, "add", schedule=added)
    click.echo(f"added to {settings.path}: {env_line(added)}")
    _apply(ctx, settings, env_name, deploy_now)


@schedule.command("remove")
@click.argument("name")
@click.option("--env", "env_name", required=True, help="Environment (envs/ENV-env.sh).")
@click.option("--deploy", "deploy_now", is_flag=True, help="Deploy the stack right after editing the env file.")
@click.pass_context
def schedule_remove(ctx: click.Context, name: str, env_name: str, deploy_now: bool) -> None:
    """Remove schedule NAME from the env file (deploying deletes it from EventBridge Scheduler)."""
    from sfncopy.schedule_file import edit

    settings = edit(env_name, ctx.find_root().obj, "remove", name=name)
    click.echo(f"removed schedule_{name} from {settings.path}")
    _apply(ctx, settings, env_name, deploy_now)


def _apply(ctx: click.Context, settings: EnvSettings, env_name: str, deploy_now: bool) -> None:
    if not deploy_now:
        click.echo(f"apply it: ./scripts/deploy.sh {env_name}  (or: sfncopy deploy --env {env_name})")
        return
    from sfncopy import deploy as deployment

    outputs = deployment.deploy(load_env(ctx, env_name))
    click.echo(f"deployed {settings.stack_name} ({len(settings.schedules)} schedule(s)); "
               f"state machine {outputs.get('StateMachineArn', '?')}")


@cli.command()
@click.option("--env", "env_name", required=True, help="Environment (envs/ENV-env.sh) whose stack is deployed.")
@click.pass_context
def policy(ctx: click.Context, env_name: str) -> None:
    """Print (JSON) the statements the owners of the env's buckets and KMS keys add to their bucket and key
    policies so the deployed stack's roles may use them from another account."""
    from generator.bucket_policies import policy_documents, role_logical_ids
    from sfncopy import deploy as deployment
    from sfncopy.stack_roles import role_arns

    settings = load_env(ctx, env_name)
    arns = role_arns(deployment.client(settings, "cloudformation"), deployment.client(settings, "iam"),
                     settings.stack_name, role_logical_ids(settings), env_name)
    click.echo(json.dumps(policy_documents(settings, arns), indent=2, sort_keys=True))


@cli.command()
@click.option("--port", type=click.IntRange(1, 65535), default=4566, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Keep the emulator's files here.")
@click.option("--no-iam", is_flag=True, help="Do not enforce IAM on S3 (also: SFNCOPY_EMULATOR_IAM=off).")
def emulator(port: int, data_dir: Path | None, no_iam: bool) -> None:
    """Run the embedded AWS emulator (S3, CloudFormation, IAM, Lambda, Step Functions) until Ctrl-C."""
    from sfncopy.emulator.server import EmulatorError, iam_enforced, run_forever

    try:
        enforce_iam = iam_enforced(no_iam)
    except EmulatorError as err:
        raise click.UsageError(str(err)) from err
    run_forever(port, data_dir, announce=click.echo, enforce_iam=enforce_iam)


@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Emulator port [a free one].")
@click.option("--objects", type=click.IntRange(10, 5000), default=240, show_default=True,
              help="Small objects in the demo source bucket (plus a few large ones).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("sfncopy-demo-report.html"), show_default=True,
              help="Save the run's HTML report (timeline per worker, bytes over time, cost) to this file.")
def demo(port: int, objects: int, html_file: Path) -> None:
    """The embedded default end to end: emulator, demo data, deploy, copy, verify byte for byte."""
    from sfncopy.demo import run_demo

    started = time.monotonic()
    outcome = run_demo(port=port, objects=objects, echo=click.echo, progress=LinePrinter(), html_file=html_file)
    if outcome.problems:
        raise FailedChecks(f"demo failed verification ({len(outcome.problems)} problem(s))", outcome.problems)
    click.echo(f"demo verified in {time.monotonic() - started:.1f} s")
    if outcome.report_html:
        click.echo(f"HTML report: {outcome.report_html} (in the emulator, gone when the demo ends)")
    if outcome.html_file is not None:
        click.echo(f"HTML report saved to {outcome.html_file.resolve()}: open it in a browser")
