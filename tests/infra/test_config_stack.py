"""ConfigStack template assertions: every parameter, the key, the SecureString resources and the provider's IAM."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from lambda_src.secure_parameter.logic import PLACEHOLDER_PREFIX
from stacks.config_stack import ConfigStack
from stacks.data_stack import DataStack
from stacks.stages import DEV, PROD, StageConfig
from tests.infra.conftest import CDK_JSON_CONTEXT, Synth, by_type

KEY = "ConfigKey331CCF85"
KEY_ARN = {"Fn::GetAtt": [KEY, "Arn"]}
PROVIDER_FUNCTION = "SecureParameterProviderHandlerFunction412C89D6"
PROVIDER_POLICY = "SecureParameterProviderHandlerPolicyB2B70DF8"
PROVIDER_LOGS = "SecureParameterProviderHandlerLogs1B2DD06B"
SECURE = {"DatabasePassword49A8070F": ("database-password", "generated"),
          "UpstreamApiKey50CFA424": ("upstream-api-key", "placeholder")}  # fmt: skip


def _ssm_arn(name: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":ssm:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
             f":parameter{name}"],
        ]
    }  # fmt: skip


def _expected_strings(stage: StageConfig) -> dict[str, str]:
    m = stage.model
    root = f"/llm-platform/{stage.name}/model"
    return {
        f"{root}/id": m.model_id,
        f"{root}/provider": m.provider,
        f"{root}/temperature": str(m.temperature),
        f"{root}/top-p": str(m.top_p),
        f"{root}/max-output-tokens": str(m.max_output_tokens),
        f"{root}/request-timeout-seconds": str(m.request_timeout_seconds),
        f"{root}/system-prompt": m.system_prompt,
        f"{root}/learning-rate": str(m.learning_rate),
        f"{root}/upstream-base-url": m.upstream_base_url,
    }


@pytest.mark.parametrize(("variant", "stage"), [("dev", DEV), ("prod", PROD)])
def test_every_plain_parameter_has_its_name_type_and_value(variant, stage, variants):
    parameters = by_type(variants[variant].raw("config"), "AWS::SSM::Parameter")
    strings = {p["Properties"]["Name"]: p["Properties"] for p in parameters.values()}
    expected = _expected_strings(stage)
    for name, value in expected.items():
        assert strings[name]["Type"] == "String"
        assert strings[name]["Value"] == value
        assert strings[name]["Tier"] == "Standard"
    sources = strings[f"/llm-platform/{stage.name}/data/sources"]
    assert sources["Type"] == "StringList"
    # The dataset URI comes from DataStack's bucket by reference, not a retyped name.
    export = f"llm-platform-{stage.name}-data:ExportsOutputRefDatasetBucket5A07B7EE8C280130"
    assert sources["Value"] == {"Fn::Join": ["", ["s3://", {"Fn::ImportValue": export}, "/datasets/"]]}
    assert set(strings) == {*expected, f"/llm-platform/{stage.name}/data/sources"}
    assert expected[f"/llm-platform/{stage.name}/model/temperature"] == "0.2"
    assert expected[f"/llm-platform/{stage.name}/model/learning-rate"] == "0.01"


def test_stages_never_share_a_parameter_name(dev, prod):
    def names(synth: Synth) -> set[str]:
        template = synth.raw("config")
        plain = {p["Properties"]["Name"] for p in by_type(template, "AWS::SSM::Parameter").values()}
        secure = {p["Properties"]["ParameterName"]
                  for p in by_type(template, "Custom::SecureStringParameter").values()}  # fmt: skip
        return plain | secure

    assert len(names(dev)) == 12
    assert not names(dev) & names(prod)
    assert all(n.startswith("/llm-platform/dev/") for n in names(dev))


@pytest.mark.parametrize(("variant", "retain"), [("dev", False), ("prod", True)])
def test_secure_strings_are_custom_resources_without_any_value(variant, retain, variants):
    template = variants[variant].raw("config")
    resources = by_type(template, "Custom::SecureStringParameter")
    assert set(resources) == set(SECURE)
    for logical_id, (leaf, kind) in SECURE.items():
        resource = resources[logical_id]
        assert resource["Properties"] == {
            "ServiceToken": {"Fn::GetAtt": [PROVIDER_FUNCTION, "Arn"]},
            "ParameterName": f"/llm-platform/{variant}/secrets/{leaf}",
            "KeyId": KEY_ARN,
            "ValueKind": kind,
            "Description": resource["Properties"]["Description"],
            "RetainOnDelete": retain,
        }
        assert resource["DeletionPolicy"] == ("Retain" if retain else "Delete")


@pytest.mark.parametrize(("variant", "policy", "days"), [("dev", "Delete", 7), ("prod", "Retain", 30)])
def test_config_key_rotates_and_follows_the_stage(variant, policy, days, variants):
    key = variants[variant].raw("config")["Resources"][KEY]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["PendingWindowInDays"] == days
    assert key["DeletionPolicy"] == policy


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_provider_policy_is_exactly_the_secure_parameters_and_the_key_via_ssm(variant, variants):
    template = variants[variant].raw("config")
    statements = template["Resources"][PROVIDER_POLICY]["Properties"]["PolicyDocument"]["Statement"]
    arns = [_ssm_arn(f"/llm-platform/{variant}/secrets/database-password"),
            _ssm_arn(f"/llm-platform/{variant}/secrets/upstream-api-key")]  # fmt: skip
    assert statements == [
        {
            "Sid": "WriteOwnLogs",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [PROVIDER_LOGS, "Arn"]},
        },
        {
            "Sid": "XRayTracing",
            "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
            "Effect": "Allow",
            "Resource": "*",
        },
        {
            "Sid": "ManageSecureParameters",
            "Action": ["ssm:DeleteParameter", "ssm:GetParameter", "ssm:PutParameter"],
            "Effect": "Allow",
            "Resource": arns,
        },
        {
            "Action": ["kms:Decrypt", "kms:Encrypt"],
            "Effect": "Allow",
            "Resource": KEY_ARN,
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": {"Fn::Join": ["", ["ssm.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]},
                    "kms:EncryptionContext:PARAMETER_ARN": arns,
                }
            },
        },
    ]
    role_id = template["Resources"][PROVIDER_POLICY]["Properties"]["Roles"][0]["Ref"]
    role = template["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    assert by_type(template, "AWS::IAM::Policy") == {}


@pytest.mark.parametrize(("variant", "days"), [("dev", 14), ("prod", 365)])
def test_provider_function_runtime_and_limits(variant, days, variants):
    template = Template.from_json(variants[variant].raw("config"))
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Handler": "secure_parameter.handler.lambda_handler",
            "Timeout": 60,
            "ReservedConcurrentExecutions": 2,
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": {"LogGroup": {"Ref": PROVIDER_LOGS}},
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": days, "KmsKeyId": KEY_ARN})


def test_provider_asset_holds_only_its_own_package(dev):
    template = dev.raw("config")
    asset_hash = template["Resources"][PROVIDER_FUNCTION]["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    files = sorted(p.relative_to(dev.outdir / f"asset.{asset_hash}").as_posix()
                   for p in (dev.outdir / f"asset.{asset_hash}").rglob("*") if p.is_file())  # fmt: skip
    assert files == [
        "secure_parameter/__init__.py",
        "secure_parameter/cfn_response.py",
        "secure_parameter/handler.py",
        "secure_parameter/logic.py",
    ]


# --- grants -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reader() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What a consumer's role receives from ConfigStack's grant_read methods."""
    app = cdk.App(context=CDK_JSON_CONTEXT, builtin_cloud_formation_validation=False)
    data = DataStack(app, "data", stage=DEV)
    config = ConfigStack(app, "config", stage=DEV, data=data)
    role = iam.Role(config, "Reader", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    config.model.grant_read(role)
    config.upstream_api_key.grant_read(role)
    template = dict(Template.from_stack(config).to_json())
    (policy,) = by_type(template, "AWS::IAM::Policy").values()
    return template, policy["Properties"]["PolicyDocument"]["Statement"]


def test_grant_read_of_plain_parameters_is_exact(reader):
    template, reader_policy = reader
    model = "/llm-platform/dev/model"
    model_ids = {k for k, v in by_type(template, "AWS::SSM::Parameter").items()
                 if v["Properties"]["Name"].startswith(model + "/")}  # fmt: skip
    assert len(model_ids) == 9
    get = next(s for s in reader_policy if s["Action"] == ["ssm:GetParameter", "ssm:GetParameters"])
    # Each resource is "arn:...:parameter" + the parameter's own name (a Ref): exactly the model parameters.
    referenced = {part["Ref"] for arn in get["Resource"] for part in arn["Fn::Join"][1] if isinstance(part, dict)
                  and "Ref" in part and not part["Ref"].startswith("AWS::")}  # fmt: skip
    assert referenced == model_ids
    assert len(get["Resource"]) == 9
    by_path = next(s for s in reader_policy if s["Action"] == "ssm:GetParametersByPath")
    assert by_path["Resource"] == _ssm_arn(model)
    assert not any("kms:" in json.dumps(s["Action"]) and "model" in json.dumps(s) for s in reader_policy)


def test_grant_read_of_a_secure_parameter_is_exact(reader):
    _, reader_policy = reader
    arn = _ssm_arn("/llm-platform/dev/secrets/upstream-api-key")
    assert {"Action": "ssm:GetParameter", "Effect": "Allow", "Resource": arn} in reader_policy
    assert {
        "Action": "kms:Decrypt",
        "Effect": "Allow",
        "Resource": KEY_ARN,
        "Condition": {
            "StringEquals": {
                "kms:ViaService": {"Fn::Join": ["", ["ssm.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]},
                "kms:EncryptionContext:PARAMETER_ARN": [arn],
            }
        },
    } in reader_policy
    # Nothing grants the database password.
    assert "database-password" not in json.dumps(reader_policy)


# --- no secret material in the cloud assembly -------------------------------------------------------

# What the provider generates: 43 URL-safe base64 characters (256 bits), or the placeholder prefix + 32 hex.
GENERATED = re.compile(rb"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
PLACEHOLDER = re.compile(re.escape(PLACEHOLDER_PREFIX.encode()) + rb"[0-9a-f]{32}")


def _looks_random(token: bytes) -> bool:
    text = token.decode()
    # Asset hashes are hex; words and identifiers lack the mix of cases, digits and symbols of random data.
    return (
        not re.fullmatch(r"[0-9a-f]+", text)
        and sum(c.isdigit() for c in text) >= 3
        and any(c.isupper() for c in text)
        and any(c.islower() for c in text)
    )


def test_cloud_assembly_holds_no_generated_or_placeholder_secret(variants):
    hits = []
    for synth in variants.values():
        for path in Path(synth.outdir).rglob("*"):
            # Third-party code in the Powertools layer cannot hold values made at deploy time.
            if not path.is_file() or "/python/" in path.as_posix():
                continue
            content = path.read_bytes()
            hits += [f"{path.name}: placeholder" for _ in PLACEHOLDER.finditer(content)]
            hits += [
                f"{path.name}: {m.group().decode()}" for m in GENERATED.finditer(content) if _looks_random(m.group())
            ]
    assert hits == []


def test_scan_would_catch_a_leaked_value():
    generated = "q7Vd2XkP9sLm4Rt8Yw1Zb6Nc3Hf5Jg0Ua-Ee_Ii2Oo9"  # the shape of secrets.token_urlsafe(32)
    placeholder = PLACEHOLDER_PREFIX + "0123456789abcdef0123456789abcdef"
    blob = json.dumps({"Properties": {"Value": generated, "Other": placeholder}}).encode()
    assert [m.group().decode() for m in GENERATED.finditer(blob) if _looks_random(m.group())] == [generated]
    assert PLACEHOLDER.search(blob)
