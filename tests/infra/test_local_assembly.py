"""`make local-check` and `make e2e` expect what the cloud assembly says (tools/local/assembly.py): read from the
dev synth here, it names every stack, Python function, route, parameter, bucket, stream and alarm of the templates."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest

from lambda_src.contracts import guardrail, parameters
from lambda_src.contracts.api import AUTH_USER, ROUTES, SESSION_HEADER, STAGE_NAME
from stacks.stages import DEV, PROD
from tests.infra.conftest import Synth
from tests.infra.templates import by_type
from tests.test_local_emulator import patched  # noqa: F401 - the emulator's patches, a fixture
from tools.local.assembly import Assembly, gateway_responses, preflights, resolve_imports, stage_throttle
from tools.local.gateway import Throttle, contract_responses


def test_the_assembly_lists_what_the_templates_deploy(dev: Synth):
    assembly = Assembly.read(dev.outdir)
    assert sorted(assembly.stacks) == sorted(dev.templates)
    assert {(route.method, route.path) for route in assembly.routes} == {(r.method, r.path) for r in ROUTES}
    by_route = {(r.method, r.path): r.auth for r in ROUTES}
    assert all(route.integration == "AWS_PROXY" for route in assembly.routes)
    assert all(route.authorization == ("COGNITO_USER_POOLS" if by_route[(route.method, route.path)] == AUTH_USER
                                       else "CUSTOM") for route in assembly.routes)  # fmt: skip
    assert assembly.authorizers == 2  # the key's TOKEN authorizer and the user pool's
    python_functions = [
        function
        for template in dev.templates.values()
        for function in by_type(template, "AWS::Lambda::Function").values()
        if function["Properties"]["Runtime"].startswith("python")
    ]
    assert len(assembly.functions) == len(python_functions) > 0
    assert {f.handler for f in assembly.functions} >= {"lambda_src.inference.handler.lambda_handler"}
    model = parameters.parameter_name("dev", parameters.MODEL_PATH)
    assert sum(name.startswith(f"{model}/") for name in assembly.parameters) == len(parameters.MODEL_PARAMETERS) + len(
        guardrail.LEAVES
    )
    assert set(assembly.secure_strings) == {
        parameters.parameter_name("dev", parameters.UPSTREAM_API_KEY),
        parameters.parameter_name("dev", parameters.DATABASE_PASSWORD),
    }
    assert all(assembly.parameters[name] == "SecureString" for name in assembly.secure_strings)
    assert len(assembly.guardrail_versions) == 1
    assert assembly.version_parameters == [f"{model}/{guardrail.VERSION_LEAF}"]
    assert sorted(assembly.usage_plans) == sorted(f"llm-platform-dev-api-{p.name}" for p in DEV.api.usage_plans)
    buckets = [b for t in dev.templates.values() for b in by_type(t, "AWS::S3::Bucket")]
    assert len(assembly.buckets) == len(buckets) and any(b.kms_encrypted for b in assembly.buckets)
    streams = [s for t in dev.templates.values() for s in by_type(t, "AWS::KinesisFirehose::DeliveryStream")]
    assert len(assembly.streams) == len(streams) > 0
    alarms = by_type(dev.raw("monitoring"), "AWS::CloudWatch::Alarm").values()
    assert set(assembly.alarms) == {alarm["Properties"]["AlarmName"] for alarm in alarms}
    failed_runs = ("ExecutionsAborted", "ExecutionsFailed", "ExecutionsTimedOut")
    assert assembly.alarms["llm-platform-dev-pipeline-failed"] == failed_runs
    assert assembly.alarms["llm-platform-dev-api-5xx"] == ("5XXError",)


def test_the_local_gateway_answers_what_the_dev_api_template_defines(dev: Synth):
    """The preflights, stage throttle and gateway responses `make local` serves come from the deployed template
    (tools/local/deployed_api.py); read from the dev synth here, they are the stage's CORS settings and limits."""
    # The web app's origin is the web stack's export, resolved as CloudFormation resolves it.
    exports = {name: "d111abc.cloudfront.net" for name in _imports(dev.raw("api"))}
    resources = resolve_imports(dev.raw("api")["Resources"], exports)
    found = preflights(resources)
    # default_cors_preflight_options puts a preflight on every resource, the root and /chat included.
    assert set(found) >= {"/", "/chat"} | {route.path for route in ROUTES}
    (origin,) = DEV.api.cors_allowed_origins
    for preflight in found.values():
        assert preflight.status == 204 and preflight.echo_origins == frozenset({"https://d111abc.cloudfront.net"})
        assert preflight.headers == {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ",".join([*sorted({route.method for route in ROUTES}), "OPTIONS"]),
            "Access-Control-Allow-Headers": f"Authorization,Content-Type,{SESSION_HEADER}",
            "Access-Control-Max-Age": "3600",
            "Vary": "Origin",
        }
    assert stage_throttle(resources, STAGE_NAME) == Throttle(DEV.api.throttle_rate_limit, DEV.api.throttle_burst_limit)
    assert gateway_responses(resources) == contract_responses(cors=True)


def test_without_origins_of_its_own_the_stage_allows_only_the_web_app(prod: Synth):
    assert not PROD.api.cors_allowed_origins
    exports = {name: "d222abc.cloudfront.net" for name in _imports(prod.raw("api"))}
    found = preflights(resolve_imports(prod.raw("api")["Resources"], exports))
    assert {p.headers["Access-Control-Allow-Origin"] for p in found.values()} == {"https://d222abc.cloudfront.net"}


def test_an_import_no_stack_exports_is_a_clear_error():
    with pytest.raises(ValueError, match="imports 'missing', which no deployed stack exports"):
        resolve_imports({"a": {"Fn::Join": ["", ["x", {"Fn::ImportValue": "missing"}]]}}, {})


def _imports(template: dict[str, Any]) -> set[str]:
    return set(re.findall(r'"Fn::ImportValue": "([^"]+)"', json.dumps(template)))


@pytest.mark.usefixtures("patched")
@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_the_monitoring_stack_deploys_into_the_emulator_as_synthesized(variant, variants):
    """What `make local` deploys: the stage's own monitoring template (its imports given values) through moto's
    CloudFormation with the emulator's patches: every alarm, the topic, the dashboard where there is one."""
    synth = variants[variant]
    template = synth.raw("monitoring")
    exports = {name: f"imported-{index}" for index, name in enumerate(sorted(_imports(template)))}
    # What `cdk bootstrap` leaves in the account, and the template checks.
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=template["Parameters"]["BootstrapVersion"]["Default"], Value="30", Type="String"
    )
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(StackName="monitoring", TemplateBody=json.dumps(resolve_imports(template, exports)))
    assert cfn.describe_stacks(StackName="monitoring")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    deployed = {alarm["AlarmName"]: alarm for alarm in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert set(deployed) == set(Assembly.read(synth.outdir).alarms) and deployed
    (topic,) = boto3.client("sns", region_name="us-east-1").list_topics()["Topics"]
    assert all(alarm["AlarmActions"] == [topic["TopicArn"]] for alarm in deployed.values())
    dashboards = [d["DashboardName"] for d in cloudwatch.list_dashboards()["DashboardEntries"]]
    assert dashboards == ([] if variant == "dev" else ["llm-platform-prod-overview"])
