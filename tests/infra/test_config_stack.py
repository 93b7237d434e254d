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

from lambda_src.contracts import guardrail as guardrail_contract
from lambda_src.contracts import parameters
from lambda_src.contracts.naming import APP_NAME
from lambda_src.contracts.parameters import MODEL_PARAMETERS, PLACEHOLDER_PREFIX
from lambda_src.contracts.secure_string import RESOURCE_TYPE
from stacks.config_stack import ConfigStack
from stacks.data_stack import DataStack
from stacks.stages import DEV, PROD, StageConfig
from tests.infra.conftest import CDK_JSON_CONTEXT, Synth, arn_of, ref
from tests.infra.templates import by_type, logical_id_at

PROVIDER = "SecureParameterProvider/Handler"
# Construct path -> (parameter, value kind).
SECURE = {"DatabasePassword/Resource": (parameters.DATABASE_PASSWORD, "generated"),
          "UpstreamApiKey/Resource": (parameters.UPSTREAM_API_KEY, "placeholder")}  # fmt: skip


def _ssm_arn(name: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":ssm:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
             f":parameter{name}"],
        ]
    }  # fmt: skip


def _expected_strings(stage: StageConfig) -> dict[str, str]:
    """Every model parameter the contract names, with the value the stage's ModelConfig holds."""
    root = f"/llm-platform/{stage.name}/model"
    model = stage.model
    json_valued = {
        "fallbacks": [{"model_id": f.model_id, "provider": f.provider, "upstream_base_url": f.upstream_base_url}
                      for f in model.fallbacks],
        "prices": {p.model_id: {"input": p.input_usd_per_million, "output": p.output_usd_per_million}
                   for p in model.prices},
    }  # fmt: skip
    return {f"{root}/{p.leaf}": json.dumps(json_valued[p.field], sort_keys=True) if p.field in json_valued
            else str(getattr(model, p.field)) for p in MODEL_PARAMETERS}  # fmt: skip


def _guardrail_strings(stage: StageConfig, template: dict[str, Any]) -> dict[str, Any]:
    """The guardrail's leaves: its id and its numbered version by reference, the stream mode from the stage."""
    root = f"/llm-platform/{stage.name}/model"
    guardrail = next(iter(by_type(template, "AWS::Bedrock::Guardrail")))
    version = next(iter(by_type(template, "AWS::Bedrock::GuardrailVersion")))
    return {f"{root}/{guardrail_contract.ID_LEAF}": {"Fn::GetAtt": [guardrail, "GuardrailId"]},
            f"{root}/{guardrail_contract.VERSION_LEAF}": {"Fn::GetAtt": [version, "Version"]},
            f"{root}/{guardrail_contract.STREAM_PROCESSING_LEAF}": stage.guardrails.stream_processing}  # fmt: skip


@pytest.mark.parametrize(("variant", "stage"), [("dev", DEV), ("prod", PROD)])
def test_every_plain_parameter_has_its_name_type_and_value(variant, stage, variants):
    parameters = by_type(variants[variant].raw("config"), "AWS::SSM::Parameter")
    strings = {p["Properties"]["Name"]: p["Properties"] for p in parameters.values()}
    expected = _expected_strings(stage)
    for name, value in expected.items():
        assert strings[name]["Type"] == "String"
        found = strings[name]["Value"]
        assert (
            json.dumps(json.loads(found), sort_keys=True) if name.endswith(("/fallbacks", "/prices")) else found
        ) == value
        assert strings[name]["Tier"] == "Standard"
    sources = strings[f"/llm-platform/{stage.name}/data/sources"]
    assert sources["Type"] == "StringList"
    # The dataset URI comes from DataStack's bucket by reference, not a retyped name.
    (import_value,) = [part for part in sources["Value"]["Fn::Join"][1] if isinstance(part, dict)]
    bucket = variants[variant].logical_id("data", "Dataset/Bucket")
    assert import_value["Fn::ImportValue"].startswith(f"llm-platform-{stage.name}-data:ExportsOutputRef{bucket}")
    assert sources["Value"]["Fn::Join"][1][::2] == ["s3://", "/datasets/"]
    guardrail = _guardrail_strings(stage, variants[variant].raw("config"))
    assert {name: strings[name]["Value"] for name in guardrail} == guardrail
    assert set(strings) == {*expected, *guardrail, f"/llm-platform/{stage.name}/data/sources"}


def test_stages_never_share_a_parameter_name(dev, prod):
    def names(synth: Synth) -> set[str]:
        template = synth.raw("config")
        plain = {p["Properties"]["Name"] for p in by_type(template, "AWS::SSM::Parameter").values()}
        secure = {p["Properties"]["ParameterName"]
                  for p in by_type(template, "Custom::SecureStringParameter").values()}  # fmt: skip
        return plain | secure

    # Every model parameter, the guardrail's, the data sources and the two secrets.
    assert len(names(dev)) == len(MODEL_PARAMETERS) + len(guardrail_contract.LEAVES) + 1 + len(SECURE)
    assert not names(dev) & names(prod)
    assert all(n.startswith("/llm-platform/dev/") for n in names(dev))


@pytest.mark.parametrize(("variant", "retain"), [("dev", False), ("prod", True)])
def test_secure_strings_are_custom_resources_without_any_value(variant, retain, variants):
    synth = variants[variant]
    assert len(by_type(synth.raw("config"), RESOURCE_TYPE)) == len(SECURE)
    for path, (name, kind) in SECURE.items():
        resource = synth.resource("config", path)
        assert resource["Type"] == RESOURCE_TYPE
        properties = dict(resource["Properties"])
        assert properties.pop("Description")
        assert properties == {
            "ServiceToken": arn_of(synth, "config", f"{PROVIDER}/Function"),
            "ParameterName": f"/llm-platform/{variant}/{name}",
            "KeyId": arn_of(synth, "config", "ConfigKey"),
            "ValueKind": kind,
            "RetainOnDelete": retain,
        }
        assert resource["DeletionPolicy"] == ("Retain" if retain else "Delete")


@pytest.mark.parametrize(("variant", "policy", "days"), [("dev", "Delete", 7), ("prod", "Retain", 30)])
def test_config_key_rotates_and_follows_the_stage(variant, policy, days, variants):
    key = variants[variant].resource("config", "ConfigKey")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["PendingWindowInDays"] == days
    assert key["DeletionPolicy"] == policy


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_provider_policy_is_exactly_the_secure_parameters_and_the_key_via_ssm(variant, variants):
    synth = variants[variant]
    template = synth.raw("config")
    statements = synth.properties("config", f"{PROVIDER}/Policy")["PolicyDocument"]["Statement"]
    arns = [_ssm_arn(f"/llm-platform/{variant}/secrets/database-password"),
            _ssm_arn(f"/llm-platform/{variant}/secrets/upstream-api-key")]  # fmt: skip
    assert statements == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": arn_of(synth, "config", f"{PROVIDER}/Logs"),
        },
        {
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
            "Resource": arn_of(synth, "config", "ConfigKey"),
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": {"Fn::Join": ["", ["ssm.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]},
                    "kms:EncryptionContext:PARAMETER_ARN": arns,
                }
            },
        },
    ]
    assert synth.properties("config", f"{PROVIDER}/Policy")["Roles"] == [ref(synth, "config", f"{PROVIDER}/Role")]
    role = synth.properties("config", f"{PROVIDER}/Role")
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    assert by_type(template, "AWS::IAM::Policy") == {}


@pytest.mark.parametrize(("variant", "days"), [("dev", 14), ("prod", 365)])
def test_provider_function_runtime_and_limits(variant, days, variants):
    synth = variants[variant]
    template = Template.from_json(synth.raw("config"))
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Handler": "lambda_src.secure_parameter.handler.lambda_handler",
            "Timeout": 60,
            "ReservedConcurrentExecutions": 2,
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": {"LogGroup": ref(synth, "config", f"{PROVIDER}/Logs")},
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": days, "KmsKeyId": arn_of(synth, "config", "ConfigKey")}
    )


def test_provider_asset_holds_its_own_package_and_the_shared_code_only(dev):
    asset_hash = dev.properties("config", f"{PROVIDER}/Function")["Code"]["S3Key"].removesuffix(".zip")
    folder = dev.outdir / f"asset.{asset_hash}"
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {f for f in files if f.startswith("lambda_src/secure_parameter/")} == {
        "lambda_src/secure_parameter/__init__.py",
        "lambda_src/secure_parameter/cfn_response.py",
        "lambda_src/secure_parameter/handler.py",
        "lambda_src/secure_parameter/logic.py",
    }
    assert {f.split("/")[1] for f in files if f.count("/") > 1} == {"secure_parameter", "shared", "contracts"}


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
    template: dict[str, Any] = dict(Template.from_stack(config).to_json())
    (policy,) = by_type(template, "AWS::IAM::Policy").values()
    return template, policy["Properties"]["PolicyDocument"]["Statement"]


def test_grant_read_of_plain_parameters_is_exact(reader):
    template, reader_policy = reader
    model = "/llm-platform/dev/model"
    model_ids = {k for k, v in by_type(template, "AWS::SSM::Parameter").items()
                 if v["Properties"]["Name"].startswith(model + "/")}  # fmt: skip
    assert len(model_ids) == len(MODEL_PARAMETERS) + len(guardrail_contract.LEAVES)
    get = next(s for s in reader_policy if s["Action"] == ["ssm:GetParameter", "ssm:GetParameters"])
    # Each resource is "arn:...:parameter" + the parameter's own name (a Ref): exactly the model parameters.
    referenced = {part["Ref"] for arn in get["Resource"] for part in arn["Fn::Join"][1] if isinstance(part, dict)
                  and "Ref" in part and not part["Ref"].startswith("AWS::")}  # fmt: skip
    assert referenced == model_ids
    assert len(get["Resource"]) == len(MODEL_PARAMETERS) + len(guardrail_contract.LEAVES)
    by_path = next(s for s in reader_policy if s["Action"] == "ssm:GetParametersByPath")
    assert by_path["Resource"] == _ssm_arn(model)
    assert not any("kms:" in json.dumps(s["Action"]) and "model" in json.dumps(s) for s in reader_policy)


def test_grant_read_of_a_secure_parameter_is_exact(reader):
    template, reader_policy = reader
    arn = _ssm_arn("/llm-platform/dev/secrets/upstream-api-key")
    assert {"Action": "ssm:GetParameter", "Effect": "Allow", "Resource": arn} in reader_policy
    assert {
        "Action": "kms:Decrypt",
        "Effect": "Allow",
        "Resource": {"Fn::GetAtt": [logical_id_at(template, "config/ConfigKey"), "Arn"]},
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
    # Asset hashes are hex; words and identifiers lack the mix of cases, digits and symbols of random data;
    # names the platform builds (a log group's "<stack>-<logical id>-" in a key policy) start with its name; CDK's
    # logical ids are the construct path's letters and digits, then an 8-digit uppercase hex hash.
    return (
        not re.fullmatch(r"[0-9a-f]+", text)
        and not re.fullmatch(r"[A-Za-z0-9]+[0-9A-F]{8}", text)
        and not re.fullmatch(rf"{APP_NAME}-[a-z]+-[a-z]+-[A-Za-z0-9]+-", text)
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
