"""What boto3 reads back from the emulator, compared with what the cloud assembly says was deployed.

Every expectation comes from cdk.out (tools/local/assembly.py), so a new capability's stacks, functions,
routes and parameters are checked without editing this file. Each row is (check, what was found, ok).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tools.gates.iam_scan import document_violations, listify
from tools.local.assembly import Assembly, alarm_metric_names

Row = tuple[str, str, bool]


def checks(client: Callable[[str], Any], expected: Assembly, stage_prefix: str) -> list[Row]:
    cfn = client("cloudformation")
    physical = physical_ids(cfn, expected.stacks)
    return [
        _stacks(cfn, expected),
        *_parameters(client("ssm"), expected, physical),
        _iam_row(client("iam"), stage_prefix),
        _buckets(client("s3"), expected, physical),
        _functions(client("lambda"), expected, physical),
        _routes(client("apigateway"), expected, physical),
        _usage_plans(client("apigateway"), expected, stage_prefix),
        _streams(client("firehose"), expected, physical),
        _guardrails(client("bedrock"), client("ssm"), expected, physical),
        _alarms(client("cloudwatch"), expected),
    ]


def physical_ids(cfn: Any, stacks: list[str]) -> dict[tuple[str, str], str]:
    """(stack, logical id) -> physical id of every resource the emulator created."""
    found = {}
    for stack in stacks:
        for resource in cfn.describe_stack_resources(StackName=stack)["StackResources"]:
            if "PhysicalResourceId" in resource:  # moto lists resources it did not model without one
                found[(stack, resource["LogicalResourceId"])] = resource["PhysicalResourceId"]
    return found


def _stacks(cfn: Any, expected: Assembly) -> Row:
    status = {s["StackName"]: s["StackStatus"] for s in cfn.describe_stacks()["Stacks"]}
    found = {name: status.get(name, "MISSING") for name in expected.stacks}
    text = ", ".join(f"{name.rsplit('-', 1)[1]} {state}" for name, state in found.items())
    return ("stacks", text, all(state == "CREATE_COMPLETE" for state in found.values()))


def _parameters(ssm: Any, expected: Assembly, physical: dict[tuple[str, str], str]) -> list[Row]:
    deployed = {}
    for name in expected.parameters:
        found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
        deployed[name] = found[0] if found else None
    types = sorted(set(expected.parameters.values()))
    same = [n for n, p in deployed.items() if p is not None and p["Type"] == expected.parameters[n]]
    rows: list[Row] = [("SSM parameters", f"{len(same)} of {len(expected.parameters)} with the template's type "
                        f"({', '.join(types)})", len(same) == len(expected.parameters) > 0)]  # fmt: skip
    tied = 0
    for name, (stack, key) in expected.secure_strings.items():
        raw = ssm.get_parameter(Name=name, WithDecryption=False)["Parameter"]["Value"]
        clear = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        key_id = str((deployed.get(name) or {}).get("KeyId", ""))
        tied += raw != clear and len(clear) >= 32 and key_id.endswith(physical.get((stack, key), "-"))
    secrets = ", ".join(name.rsplit("/", 1)[1] for name in sorted(expected.secure_strings))
    rows.append(("SecureStrings", f"{tied} of {len(expected.secure_strings)} ({secrets}) under their stack's CMK, "
                 "value only WithDecryption (moto marks, does not encrypt)",
                 tied == len(expected.secure_strings)))  # fmt: skip
    return rows


def _iam_row(iam: Any, stage_prefix: str) -> Row:
    """Every statement of every policy on the stage's roles, read back and put through the same IAM scan as
    the templates (tools/gates/iam_scan.py)."""
    documents: list[tuple[str, Any]] = []
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(stage_prefix)]
    for role in roles:
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)
            documents.append(("AWS::IAM::ManagedPolicy", document["PolicyVersion"]["Document"]))
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            documents.append(("AWS::IAM::Role", iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]))
    parsed = [(kind, json.loads(doc) if isinstance(doc, str) else doc) for kind, doc in documents]
    statements = sum(len(listify(doc.get("Statement"))) for _, doc in parsed)
    bad = [problem for kind, doc in parsed for problem in document_violations(kind, doc)]
    found = f"{statements} statements in {len(parsed)} policies on {len(roles)} roles; {len(bad)} too wide"
    return ("IAM statements", found, statements > 0 and not bad)


def _buckets(s3: Any, expected: Assembly, physical: dict[tuple[str, str], str]) -> Row:
    matching = 0
    for bucket in expected.buckets:
        name = physical.get((bucket.stack, bucket.logical_id))
        if name is None:
            continue
        rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
        kms = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        matching += kms == bucket.kms_encrypted
    kms_count = sum(b.kms_encrypted for b in expected.buckets)
    return ("buckets", f"{matching} of {len(expected.buckets)} encrypted as the template says ({kms_count} SSE-KMS, "
            "log targets SSE-S3)", matching == len(expected.buckets))  # fmt: skip


def _functions(lam: Any, expected: Assembly, physical: dict[tuple[str, str], str]) -> Row:
    matching = 0
    for function in expected.functions:
        name = physical.get((function.stack, function.logical_id))
        if name is None:
            continue
        configuration = lam.get_function_configuration(FunctionName=name)
        variables = (configuration.get("Environment") or {}).get("Variables", {})
        matching += (configuration["Handler"] == function.handler and configuration["Runtime"] == function.runtime
                     and all(variables.get(k) == v for k, v in function.literal_environment.items()))  # fmt: skip
    runtimes = sorted({f.runtime for f in expected.functions})
    return ("Lambda functions", f"{matching} of {len(expected.functions)} Python ({', '.join(runtimes)}) with the "
            "template's handler and environment", matching == len(expected.functions) > 0)  # fmt: skip


def _routes(apigw: Any, expected: Assembly, physical: dict[tuple[str, str], str]) -> Row:
    deployed: dict[tuple[str, str], tuple[str, bool]] = {}
    authorizers = 0
    for api in apigw.get_rest_apis()["items"]:
        if api["id"] not in physical.values():
            continue
        authorizers += len(apigw.get_authorizers(restApiId=api["id"])["items"])
        for resource in apigw.get_resources(restApiId=api["id"])["items"]:
            for verb in resource.get("resourceMethods", {}):
                if verb == "OPTIONS":  # CORS preflight
                    continue
                method = apigw.get_method(restApiId=api["id"], resourceId=resource["id"], httpMethod=verb)
                proxy = method.get("methodIntegration", {}).get("type") == "AWS_PROXY"
                kind = str(method.get("authorizationType", "NONE")) if method.get("authorizerId") else "NONE"
                deployed[(verb, resource["path"])] = (kind, proxy)
    # Every route behind an authorizer (the key's TOKEN one or the user pool's) as the template says, a Lambda proxy.
    wanted = {(r.method, r.path): (r.authorization, r.integration == "AWS_PROXY") for r in expected.routes}
    ok = (
        deployed == wanted
        and authorizers == expected.authorizers
        and all(kind in ("CUSTOM", "COGNITO_USER_POOLS") and proxy for kind, proxy in wanted.values())
    )
    names = ", ".join(f"{m} {p}" for m, p in sorted(wanted))
    return ("API routes", f"{names} ({authorizers} authorizers, Lambda proxy)", ok)


def _usage_plans(apigw: Any, expected: Assembly, stage_prefix: str) -> Row:
    deployed = {p["name"] for p in apigw.get_usage_plans()["items"] if p["name"].startswith(stage_prefix)}
    names = ", ".join(sorted(name.rsplit("-", 1)[1] for name in deployed))
    return ("usage plans", names, deployed == set(expected.usage_plans))


def _streams(firehose: Any, expected: Assembly, physical: dict[tuple[str, str], str]) -> Row:
    deployed = set(firehose.list_delivery_streams()["DeliveryStreamNames"])
    found = [physical.get(key) for key in expected.streams]
    return ("delivery streams", f"{sum(name in deployed for name in found)} of {len(expected.streams)} (audit log)",
            all(name in deployed for name in found))  # fmt: skip


def _guardrails(bedrock: Any, ssm: Any, expected: Assembly, physical: dict[tuple[str, str], str]) -> Row:
    """Each guardrail version exists, numbered, READY, and is the one the model settings name."""
    versions = []
    for key in expected.guardrail_versions:
        identifier, _, number = physical.get(key, "").partition("|")  # a version's Ref is "<id>|<version>"
        found = bedrock.get_guardrail(guardrailIdentifier=identifier, guardrailVersion=number) if number else {}
        versions.append(number if number.isdigit() and found.get("status") == "READY" else "")
    named = sorted(ssm.get_parameter(Name=name)["Parameter"]["Value"] for name in expected.version_parameters)
    ok = all(versions) and named == sorted(versions)
    return ("guardrail versions", f"{', '.join(versions) or 'none'} (READY, named by the model settings: "
            f"{', '.join(named) or 'none'})", ok)  # fmt: skip


def _alarms(cloudwatch: Any, expected: Assembly) -> Row:
    """Every alarm of the monitoring stack, reading the template's metrics and notifying an SNS topic."""
    names = sorted(expected.alarms)
    deployed = cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"] if names else []
    same = [alarm for alarm in deployed if alarm_metric_names(alarm) == expected.alarms.get(alarm["AlarmName"])
            and any(":sns:" in action for action in alarm.get("AlarmActions", []))]  # fmt: skip
    return ("alarms", f"{len(same)} of {len(names)} with the template's metrics, to the alarm topic",
            len(same) == len(names) > 0)  # fmt: skip


def print_table(rows: list[Row]) -> None:
    width = max(len(name) for name, _, _ in rows)
    for name, found, ok in rows:
        print(f"  {'ok ' if ok else 'BAD'}  {name:<{width}}  {found}")
