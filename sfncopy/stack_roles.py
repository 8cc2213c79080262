"""The deployed stack's role ARNs, for ``sfncopy policy``: CloudFormation's ListStackResources names each
role (its physical id is the role's name: CloudFormation reference, AWS::IAM::Role, "Return values", Ref),
IAM GetRole gives its ARN.
Both through the env's endpoint, so this works on the embedded emulator as on AWS."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lambdas.errors import SfnCopyError
from sfncopy.deploy import find_stack


class StackNotDeployedError(SfnCopyError):
    """The env's stack (or one of its roles) does not exist yet."""


def role_arns(cfn: Any, iam: Any, stack_name: str, logical_ids: Iterable[str], env: str) -> dict[str, str]:
    """logical id -> ARN of each role of the deployed stack ``stack_name``."""
    stack = find_stack(cfn, stack_name)
    if stack is None:
        raise StackNotDeployedError(f"stack {stack_name} is not deployed: deploy it first (sfncopy deploy --env {env})")
    names = {resource["LogicalResourceId"]: resource.get("PhysicalResourceId", "")
             for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name)
             for resource in page["StackResourceSummaries"]}
    arns: dict[str, str] = {}
    for logical in logical_ids:
        name = names.get(logical, "")
        if not name:
            raise StackNotDeployedError(f"stack {stack_name} ({stack['StackStatus']}) has no role {logical}: deploy "
                                        f"it again (sfncopy deploy --env {env})")
        arns[logical] = str(iam.get_role(RoleName=name)["Role"]["Arn"])
    return arns
