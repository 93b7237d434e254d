"""The emulator's patches (tools/local/emulator/, one module per service) against moto in-process: a template
with the resource shapes these stacks use deploys through moto's CloudFormation, and each resource is read
back through its service's API as AWS would answer."""

from __future__ import annotations

import io
import json
import re
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from moto import mock_aws, settings
from moto.apigateway.models import Method
from moto.awslambda import models as lambda_models
from moto.bedrock.responses import BedrockResponse
from moto.bedrockruntime.responses import BedrockRuntimeResponse
from moto.cloudformation import parsing as cfn_parsing
from moto.cloudformation.models import cloudformation_backends
from moto.cognitoidp import models as cognito_models
from moto.core.config import default_user_config
from moto.dynamodb.models import DynamoDBBackend
from moto.kms import models as kms_models
from moto.s3vectors import urls as s3vectors_urls
from moto.s3vectors.responses import S3VectorsResponse
from moto.ssm import models as ssm_models
from moto.stepfunctions import models as sfn_models
from moto.stepfunctions import responses as sfn_responses  # noqa: F401 - see the state machine test

from tests import background
from tools.local.emulator import bedrock as emulated_bedrock
from tools.local.emulator import dynamodb as emulated_dynamodb
from tools.local.emulator import install_patches
from tools.local.emulator.cloudformation import register_model
from tools.local.processes import ROOT

REGION = "us-east-1"
EMULATOR_PYTHON = ROOT / ".venv-local" / "bin" / "python"  # as tools.local.launcher starts the emulator
TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Key": {
            "Type": "AWS::KMS::Key",
            "Properties": {
                "KeyPolicy": {"Version": "2012-10-17", "Statement": []},
                "Tags": [{"Key": "stage", "Value": "dev"}],
            },
        },
        "Parameter": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": "/app/dev/model/id", "Type": "String", "Value": "m", "Tags": {"stage": "dev"}},
        },
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Stream": {
            "Type": "AWS::KinesisFirehose::DeliveryStream",
            "Properties": {
                "DeliveryStreamType": "DirectPut",
                "ExtendedS3DestinationConfiguration": {
                    "BucketARN": {"Fn::GetAtt": ["Bucket", "Arn"]},
                    "RoleARN": "arn:aws:iam::123456789012:role/delivery",
                    "Prefix": "data/",
                },
            },
        },
        "Keys": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "KeySchema": [{"AttributeName": "key_hash", "KeyType": "HASH"}],
                "AttributeDefinitions": [
                    {"AttributeName": "key_hash", "AttributeType": "S"},
                    {"AttributeName": "key_id", "AttributeType": "S"},
                ],
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": "by-key-id",
                        "KeySchema": [{"AttributeName": "key_id", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                ],
                "BillingMode": "PAY_PER_REQUEST",
                "SSESpecification": {
                    "KMSMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]},
                    "SSEEnabled": True,
                    "SSEType": "KMS",
                },
            },
        },
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "api"}},
        "Models": {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                "PathPart": "models",
            },
        },
        "Authorizer": {
            "Type": "AWS::ApiGateway::Authorizer",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "Name": "keys",
                "Type": "TOKEN",
                "IdentitySource": "method.request.header.Authorization",
                "AuthorizerUri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
                "arn:aws:lambda:us-east-1:123456789012:function:auth/invocations",
            },
        },
        "Get": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ResourceId": {"Ref": "Models"},
                "HttpMethod": "GET",
                "AuthorizationType": "CUSTOM",
                "AuthorizerId": {"Ref": "Authorizer"},
                "Integration": {
                    "Type": "AWS_PROXY",
                    "IntegrationHttpMethod": "POST",
                    "Uri": "arn:aws:apigateway:us-east-1:lambda:path/fn/invocations",
                },
            },
        },
        "Options": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ResourceId": {"Ref": "Models"},
                "HttpMethod": "OPTIONS",
                "AuthorizationType": "NONE",
                "Integration": {"Type": "MOCK"},
            },
        },
        "Deployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "Properties": {"RestApiId": {"Ref": "Api"}},
            "DependsOn": ["Get", "Options"],
        },
        "Stage": {
            "Type": "AWS::ApiGateway::Stage",
            "Properties": {"RestApiId": {"Ref": "Api"}, "StageName": "v1", "DeploymentId": {"Ref": "Deployment"}},
        },
        "Plan": {
            "Type": "AWS::ApiGateway::UsagePlan",
            "DependsOn": ["Stage"],
            "Properties": {
                "UsagePlanName": "standard",
                "ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": "v1"}],
                "Throttle": {"RateLimit": 2, "BurstLimit": 5},
                "Quota": {"Limit": 100, "Period": "DAY"},
            },
        },
    }
}


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch, aws_credentials: None) -> Iterator[None]:
    """moto with the emulator's patches, undone afterwards (they replace class attributes of moto's models)."""
    for target, name in ((kms_models.Key, "create_from_cloudformation_json"),
                         (ssm_models.Parameter, "create_from_cloudformation_json"),
                         (Method, "create_from_cloudformation_json"), (lambda_models.LambdaFunction, "invoke"),
                         (lambda_models.LambdaFunction, "create_from_cloudformation_json"),
                         (settings, "moto_server_host")):  # fmt: skip
        monkeypatch.setattr(target, name, getattr(target, name))
    monkeypatch.setattr(cfn_parsing.ResourceMap, "__getitem__", cfn_parsing.ResourceMap.__getitem__)
    monkeypatch.setattr(S3VectorsResponse, "query_vectors", None, raising=False)
    monkeypatch.setattr(BedrockRuntimeResponse, "apply_guardrail", None, raising=False)
    for name in emulated_bedrock.CONTROL_PLANE:
        monkeypatch.setattr(BedrockResponse, name, None, raising=False)
    monkeypatch.setattr(s3vectors_urls, "url_paths", dict(s3vectors_urls.url_paths))
    monkeypatch.setattr(sfn_models, "stepfunctions_backends", sfn_models.stepfunctions_backends)
    for name in ("initiate_auth", "respond_to_auth_challenge"):
        monkeypatch.setattr(cognito_models.CognitoIdpBackend, name, getattr(cognito_models.CognitoIdpBackend, name))
    for name in emulated_dynamodb.WRITES:
        monkeypatch.setattr(DynamoDBBackend, name, getattr(DynamoDBBackend, name))
    monkeypatch.setitem(default_user_config, "stepfunctions", dict(default_user_config.get("stepfunctions", {})))
    monkeypatch.setenv("MOTO_PORT", "5000")
    install_patches(5000)
    with mock_aws():
        yield


def _resources(cfn: Any) -> dict[str, str]:
    found = cfn.describe_stack_resources(StackName="emulated")["StackResources"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in found if "PhysicalResourceId" in r}


def test_the_stacks_resource_shapes_deploy_and_read_back(patched):
    client = boto3.session.Session(region_name=REGION).client
    cfn = client("cloudformation")
    cfn.create_stack(StackName="emulated", TemplateBody=json.dumps(TEMPLATE))
    assert cfn.describe_stacks(StackName="emulated")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    physical = _resources(cfn)

    # kms, ssm: CloudFormation's tag shapes reached the backends in theirs.
    tags = client("kms").list_resource_tags(KeyId=physical["Key"])["Tags"]
    assert tags == [{"TagKey": "stage", "TagValue": "dev"}]
    ssm_tags = client("ssm").list_tags_for_resource(ResourceType="Parameter", ResourceId="/app/dev/model/id")
    assert ssm_tags["TagList"] == [{"Key": "stage", "Value": "dev"}]

    # firehose: the stream exists with the template's destination.
    stream = client("firehose").describe_delivery_stream(DeliveryStreamName=physical["Stream"])
    destination = stream["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert destination["Prefix"] == "data/"

    # dynamodb: the key table's index on key_id answers queries (how `tools.keys revoke` finds a key).
    dynamodb = client("dynamodb")
    dynamodb.put_item(TableName=physical["Keys"], Item={"key_hash": {"S": "h"}, "key_id": {"S": "key_1"},
                                                        "owner": {"S": "o"}})  # fmt: skip
    found = dynamodb.query(TableName=physical["Keys"], IndexName="by-key-id", KeyConditionExpression="key_id = :id",
                           ExpressionAttributeValues={":id": {"S": "key_1"}})["Items"]  # fmt: skip
    assert found == [{"key_hash": {"S": "h"}, "key_id": {"S": "key_1"}}]

    # apigateway: the authorizer, the method keeps it, MOCK preflight, the stage and the usage plan.
    apigw = client("apigateway")
    api_id = physical["Api"]
    (authorizer,) = apigw.get_authorizers(restApiId=api_id)["items"]
    assert authorizer["type"] == "TOKEN" and authorizer["authorizerUri"].endswith("function:auth/invocations")
    method = apigw.get_method(restApiId=api_id, resourceId=physical["Models"], httpMethod="GET")
    assert method["authorizerId"] == authorizer["id"]
    assert method["methodIntegration"]["type"] == "AWS_PROXY"
    preflight = apigw.get_method(restApiId=api_id, resourceId=physical["Models"], httpMethod="OPTIONS")
    assert preflight["methodIntegration"]["type"] == "MOCK"
    assert apigw.get_stage(restApiId=api_id, stageName="v1")["stageName"] == "v1"
    (plan,) = apigw.get_usage_plans()["items"]
    assert plan["name"] == "standard" and plan["apiStages"] == [{"apiId": api_id, "stage": "v1"}]
    assert plan["throttle"] == {"burstLimit": 5, "rateLimit": 2.0}


def test_custom_resources_answer_on_loopback(patched):
    assert settings.moto_server_host() == "http://127.0.0.1"


def test_python_functions_run_on_the_host_with_their_environment(patched):
    client = boto3.session.Session(region_name=REGION).client
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "import os\nCALLS = []\ndef handle(event, context):\n    CALLS.append(1)\n"
                                   "    return {'echo': event['x'], 'stage': os.environ['STAGE'],\n"
                                   "            'calls': len(CALLS)}\n")  # fmt: skip
    role = client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client("lambda").create_function(
        FunctionName="fn", Runtime="python3.14", Role=role, Handler="app.handle", Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {"STAGE": "dev"}},
    )  # fmt: skip
    answer = client("lambda").invoke(FunctionName="fn", Payload=json.dumps({"x": 7}))
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"echo": 7, "stage": "dev", "calls": 1}
    # The environment stays warm between invocations, as in Lambda; a changed configuration starts a new one.
    again = client("lambda").invoke(FunctionName="fn", Payload=json.dumps({"x": 8}))
    assert json.loads(again["Payload"].read()) == {"echo": 8, "stage": "dev", "calls": 2}
    client("lambda").update_function_configuration(FunctionName="fn", Environment={"Variables": {"STAGE": "prod"}})
    changed = client("lambda").invoke(FunctionName="fn", Payload=json.dumps({"x": 9}))
    assert json.loads(changed["Payload"].read()) == {"echo": 9, "stage": "prod", "calls": 1}


def _zip(files: dict[str, str]) -> bytes:
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return code.getvalue()


def test_a_function_deployed_by_cloudformation_runs_with_its_layers(patched):
    """moto's CloudFormation drops a function's Layers; the emulator keeps them, so a function that imports a
    package of its layer (Powertools, the knowledge readers) runs as in Lambda."""
    client = boto3.session.Session(region_name=REGION).client
    s3 = client("s3")
    s3.create_bucket(Bucket="assets")
    s3.put_object(Bucket="assets", Key="layer.zip", Body=_zip({"python/helper.py": "GREETING = 'from the layer'\n"}))
    s3.put_object(Bucket="assets", Key="code.zip", Body=_zip({"app.py": "import helper\ndef handle(event, context):"
                                                                        "\n    return helper.GREETING\n"}))  # fmt: skip
    role = client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    template = {"Resources": {
        "Layer": {"Type": "AWS::Lambda::LayerVersion", "Properties": {
            "Content": {"S3Bucket": "assets", "S3Key": "layer.zip"}, "CompatibleRuntimes": ["python3.14"]}},
        "Function": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "python3.14", "Handler": "app.handle", "Role": role, "Layers": [{"Ref": "Layer"}],
            "Code": {"S3Bucket": "assets", "S3Key": "code.zip"}}},
    }}  # fmt: skip
    cfn = client("cloudformation")
    cfn.create_stack(StackName="layered", TemplateBody=json.dumps(template))
    name = cfn.describe_stack_resource(StackName="layered", LogicalResourceId="Function")["StackResourceDetail"][
        "PhysicalResourceId"
    ]
    configuration = client("lambda").get_function(FunctionName=name)["Configuration"]
    assert len(configuration["Layers"]) == 1
    answer = client("lambda").invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == "from the layer"


KNOWLEDGE_TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Vectors": {"Type": "AWS::S3Vectors::VectorBucket", "Properties": {}},
        "Index": {
            "Type": "AWS::S3Vectors::Index",
            "Properties": {"VectorBucketArn": {"Fn::GetAtt": ["Vectors", "VectorBucketArn"]}, "IndexName": "chunks",
                           "DataType": "float32", "Dimension": 3, "DistanceMetric": "cosine"},
        },
        "Secret": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {"GenerateSecretString": {"SecretStringTemplate": '{"api_key": "UNSET-REPLACE-ME-api_key"}',
                                                    "GenerateStringKey": "placeholder_nonce",
                                                    "ExcludePunctuation": True}},
        },
        "IndexArn": {"Type": "AWS::SSM::Parameter",
                     "Properties": {"Name": "/app/dev/index", "Type": "String",
                                    "Value": {"Fn::GetAtt": ["Index", "IndexArn"]}}},
    }
}  # fmt: skip


def test_vector_indexes_and_secrets_deploy_and_queries_rank_by_cosine_distance_with_filters(patched):
    client = boto3.session.Session(region_name=REGION).client
    cfn = client("cloudformation")
    cfn.create_stack(StackName="emulated", TemplateBody=json.dumps(KNOWLEDGE_TEMPLATE))
    assert cfn.describe_stacks(StackName="emulated")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    physical = _resources(cfn)
    index_arn = client("ssm").get_parameter(Name="/app/dev/index")["Parameter"]["Value"]
    assert index_arn == physical["Index"] and index_arn.endswith("/index/chunks")

    vectors = client("s3vectors")
    vectors.put_vectors(indexArn=index_arn, vectors=[
        {"key": "north", "data": {"float32": [0.0, 1.0, 0.0]}, "metadata": {"source": "s3", "text": "N"}},
        {"key": "east", "data": {"float32": [1.0, 0.0, 0.0]}, "metadata": {"source": "youtube", "text": "E"}},
        {"key": "north-east", "data": {"float32": [0.7, 0.7, 0.0]}, "metadata": {"source": "s3", "text": "NE"}},
    ])  # fmt: skip
    answer = vectors.query_vectors(indexArn=index_arn, queryVector={"float32": [0.1, 1.0, 0.0]}, topK=2,
                                   returnDistance=True, returnMetadata=True)  # fmt: skip
    assert [v["key"] for v in answer["vectors"]] == ["north", "north-east"]
    assert answer["vectors"][0]["distance"] < answer["vectors"][1]["distance"]
    assert answer["vectors"][0]["metadata"] == {"source": "s3", "text": "N"}
    filtered = vectors.query_vectors(indexArn=index_arn, queryVector={"float32": [0.1, 1.0, 0.0]}, topK=3,
                                     filter={"source": {"$eq": "youtube"}})  # fmt: skip
    assert [v["key"] for v in filtered["vectors"]] == ["east"]
    assert "distance" not in filtered["vectors"][0] and "metadata" not in filtered["vectors"][0]

    value = json.loads(client("secretsmanager").get_secret_value(SecretId=physical["Secret"])["SecretString"])
    assert value["api_key"] == "UNSET-REPLACE-ME-api_key"
    assert len(value["placeholder_nonce"]) == 32 and value["placeholder_nonce"].isalnum()


PIPELINE_TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "RoleArn": "arn:aws:iam::123456789012:role/pipeline",
            "DefinitionString": json.dumps({"StartAt": "Double", "States": {
                "Double": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "Next": "Big?"},
                "Big?": {"Type": "Choice", "Default": "Small",
                         "Choices": [{"Variable": "$.doubled", "NumericGreaterThan": 10, "Next": "Big"}]},
                "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.size", "End": True},
                "Small": {"Type": "Pass", "Result": "small", "ResultPath": "$.size", "End": True},
            }})}},
    }
}  # fmt: skip


def test_a_state_machine_deployed_by_cloudformation_really_runs(patched):
    """moto alone creates a CloudFormation state machine in a backend that never runs it (executions stay
    RUNNING); with execution switched on, its API looks in the other backend and cannot find it. Its API module is
    loaded above, before the patches, as in a whole test run, so each half of the module is needed here."""
    client = boto3.session.Session(region_name=REGION).client
    cfn = client("cloudformation")
    cfn.create_stack(StackName="emulated", TemplateBody=json.dumps(PIPELINE_TEMPLATE))
    machine = _resources(cfn)["Machine"]
    sfn = client("stepfunctions")
    outputs = {}
    for n in (21, 2):
        execution = sfn.start_execution(stateMachineArn=machine, name=f"run-{n}", input=json.dumps({"n": n}))[
            "executionArn"
        ]
        deadline = time.monotonic() + 10
        while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "the execution did not end within 10 s"
            time.sleep(0.05)
        assert described["status"] == "SUCCEEDED", described
        outputs[n] = json.loads(described["output"])
    assert outputs == {21: {"doubled": 42, "size": "big"}, 2: {"doubled": 4, "size": "small"}}


def test_a_resource_looked_up_while_it_is_being_created_is_created_once(patched):
    """A custom resource's answer checks the stack's readiness from another thread while the stack is still
    being created: the lookup waits for the creation instead of creating the resource a second time."""
    created: list[str] = []

    def slow(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
        created.append(name)
        time.sleep(0.3)
        return f"thing-{len(created)}", {}

    register_model("Test::Emulator::Slow", "s3vectors", slow)
    cfn = boto3.session.Session(region_name=REGION).client("cloudformation")
    template = {"Resources": {"Slow": {"Type": "Test::Emulator::Slow", "Properties": {}}}}
    creating = threading.Thread(target=cfn.create_stack, kwargs={"StackName": "race",
                                                                 "TemplateBody": json.dumps(template)})  # fmt: skip
    creating.start()
    time.sleep(0.1)  # the creating thread is inside the slow creation now
    (stack,) = [s for s in cloudformation_backends["123456789012"][REGION].stacks.values() if s.name == "race"]
    looked_up = stack.resource_map["Slow"]  # what a custom resource's answer does (verify_readiness)
    creating.join()
    assert len(created) == 1, created
    assert looked_up.physical_resource_id == "thing-1"


USERS_TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Pool": {"Type": "AWS::Cognito::UserPool", "Properties": {
            "UsernameAttributes": ["email"], "MfaConfiguration": "OPTIONAL", "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
            "Policies": {"PasswordPolicy": {"MinimumLength": 14, "RequireSymbols": True}}}},
        "Client": {"Type": "AWS::Cognito::UserPoolClient", "Properties": {
            "UserPoolId": {"Ref": "Pool"}, "GenerateSecret": False,
            "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]}},
        "Domain": {"Type": "AWS::Cognito::UserPoolDomain", "Properties": {
            "UserPoolId": {"Ref": "Pool"}, "Domain": "llm-platform-dev-123456789012"}},
        "PoolArn": {"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": "/app/dev/pool-arn", "Type": "String", "Value": {"Fn::GetAtt": ["Pool", "Arn"]}}},
    }
}  # fmt: skip


def test_user_pools_deploy_and_srp_sign_in_checks_the_password(patched):
    """The server side of Cognito's SRP against a real client (pycognito's AWSSRP): the right password gets
    tokens verifiable through the pool's JWKS, a wrong one is refused (moto alone accepts any)."""
    import jwt  # noqa: PLC0415
    from pycognito.aws_srp import AWSSRP  # noqa: PLC0415

    client = boto3.session.Session(region_name=REGION).client
    cfn = client("cloudformation")
    cfn.create_stack(StackName="emulated", TemplateBody=json.dumps(USERS_TEMPLATE))
    physical = _resources(cfn)
    pool_id, client_id = physical["Pool"], physical["Client"]
    assert client("ssm").get_parameter(Name="/app/dev/pool-arn")["Parameter"]["Value"].endswith(f"userpool/{pool_id}")
    cognito = client("cognito-idp")
    app = cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    assert app["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    password = "Correct-Horse-Battery-9"
    cognito.admin_create_user(UserPoolId=pool_id, Username="alice@example.com", MessageAction="SUPPRESS",
                              UserAttributes=[{"Name": "email", "Value": "alice@example.com"}])  # fmt: skip
    cognito.admin_set_user_password(UserPoolId=pool_id, Username="alice@example.com", Password=password,
                                    Permanent=True)  # fmt: skip

    tokens = AWSSRP(username="alice@example.com", password=password, pool_id=pool_id, client_id=client_id,
                    client=cognito).authenticate_user()["AuthenticationResult"]  # fmt: skip
    claims = jwt.decode(tokens["IdToken"], options={"verify_signature": False})
    assert (claims["token_use"], claims["aud"]) == ("id", client_id)
    assert claims["iss"] == f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}"
    for wrong in ("correct-horse-battery-9", password + "x"):
        with pytest.raises(cognito.exceptions.NotAuthorizedException):
            AWSSRP(username="alice@example.com", password=wrong, pool_id=pool_id, client_id=client_id,
                   client=cognito).authenticate_user()  # fmt: skip


WEB_TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Site": {"Type": "AWS::S3::Bucket"},
        "Routing": {"Type": "AWS::CloudFront::Function", "Properties": {
            "Name": "routing", "AutoPublish": True, "FunctionCode": "function handler(e) { return e.request; }",
            "FunctionConfig": {"Comment": "", "Runtime": "cloudfront-js-2.0"}}},
        "Headers": {"Type": "AWS::CloudFront::ResponseHeadersPolicy", "Properties": {
            "ResponseHeadersPolicyConfig": {"Name": "h"}}},
        "Access": {"Type": "AWS::CloudFront::OriginAccessControl", "Properties": {
            "OriginAccessControlConfig": {"Name": "oac", "OriginAccessControlOriginType": "s3",
                                          "SigningBehavior": "always", "SigningProtocol": "sigv4"}}},
        "Distribution": {"Type": "AWS::CloudFront::Distribution", "Properties": {"DistributionConfig": {
            "Enabled": True,
            "Origins": [{"Id": "s3", "DomainName": {"Fn::GetAtt": ["Site", "RegionalDomainName"]},
                         "OriginAccessControlId": {"Fn::GetAtt": ["Access", "Id"]}}],
            "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "redirect-to-https",
                                     "ResponseHeadersPolicyId": {"Ref": "Headers"},
                                     "FunctionAssociations": [{
                                         "EventType": "viewer-request",
                                         "FunctionARN": {"Fn::GetAtt": ["Routing", "FunctionARN"]}}]},
        }}},
    },
    "Outputs": {"Domain": {"Value": {"Fn::GetAtt": ["Distribution", "DomainName"]}, "Export": {"Name": "site-domain"}},
                "Id": {"Value": {"Ref": "Distribution"}}},
}  # fmt: skip


def test_a_cloudfront_distribution_and_its_parts_deploy_with_the_ids_cloudformation_gives(patched):
    """moto alone fails the whole stack on a distribution's DomainName output."""
    cfn = boto3.session.Session(region_name=REGION).client("cloudformation")
    cfn.create_stack(StackName="emulated", TemplateBody=json.dumps(WEB_TEMPLATE))
    stack = cfn.describe_stacks(StackName="emulated")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert re.fullmatch(r"d[0-9a-f]{14}\.cloudfront\.net", outputs["Domain"])
    assert re.fullmatch(r"E[A-Z0-9]{13}", outputs["Id"])
    assert {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]} == {"site-domain": outputs["Domain"]}


def test_the_bucket_deployment_handlers_cli_commands_are_done_with_boto3(patched, tmp_path):
    from tools.local.emulator.s3deployment import AwsCli, as_cloudformation_sends, is_deployment  # noqa: PLC0415

    s3 = boto3.session.Session(region_name=REGION).client("s3")
    for bucket in ("source", "site"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="source", Key="files.zip", Body=b"zip bytes")
    s3.put_object(Bucket="site", Key="assets/old/app.js", Body=b"old")
    s3.put_object(Bucket="site", Key="other/keep.txt", Body=b"keep")
    cli = AwsCli(s3)
    cli("configure", "set", "default.s3.payload_signing_enabled", "true")
    cli("s3", "cp", "s3://source/files.zip", str(tmp_path / "archive"))
    assert (tmp_path / "archive").read_bytes() == b"zip bytes"
    contents = tmp_path / "contents"
    (contents / "new").mkdir(parents=True)
    (contents / "new" / "app.js").write_text("export {};")
    (contents / "new" / "app.css").write_text("body {}")
    (contents / "new" / "notes.tmp").write_text("x")
    cli("s3", "sync", "--delete", "--exclude", "*.tmp", str(contents), "s3://site/assets",
        "--cache-control", "public, max-age=31536000, immutable", "--metadata", '{"build":"new"}',
        "--metadata-directive", "REPLACE")  # fmt: skip
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="site")["Contents"]}
    assert keys == {"assets/new/app.js", "assets/new/app.css", "other/keep.txt"}  # pruned under the prefix only
    script = s3.get_object(Bucket="site", Key="assets/new/app.js")
    assert script["ContentType"] == "text/javascript" and script["CacheControl"].endswith("immutable")
    assert script["Metadata"] == {"build": "new"}
    assert s3.get_object(Bucket="site", Key="assets/new/app.css")["ContentType"] == "text/css"
    cli("s3", "rm", "s3://site/assets/", "--recursive")
    assert {o["Key"] for o in s3.list_objects_v2(Bucket="site")["Contents"]} == {"other/keep.txt"}
    with pytest.raises(RuntimeError, match="does not run `aws s3 mv"):
        cli("s3", "mv", "s3://a/b", "s3://a/c")
    # What CloudFormation sends a custom resource: every scalar as text.
    assert as_cloudformation_sends({"Prune": False, "Memory": 128, "Keys": ["a", True]}) == {
        "Prune": "false", "Memory": "128", "Keys": ["a", "true"]}  # fmt: skip
    assert is_deployment({"ResourceType": "Custom::CDKBucketDeployment", "ResponseURL": "http://127.0.0.1/x"})
    assert not is_deployment({"ResourceType": "Custom::S3AutoDeleteObjects", "ResponseURL": "http://127.0.0.1/x"})


def test_dynamodb_conditional_writes_and_transactions_are_atomic_under_concurrency(patched: None) -> None:
    """Twenty threads race for ten units of a counter, through transactions whose cancellations moto undoes by
    restoring a table copy: exactly ten pass, and no cancelled one erases another's write."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])  # fmt: skip
    passed: list[int] = []
    start = threading.Barrier(20)

    def take(i: int) -> None:
        start.wait()
        update = {"TableName": "t", "UpdateExpression": "ADD n :one",
                  "ConditionExpression": "attribute_not_exists(n) OR n <= :room",
                  "ExpressionAttributeValues": {":one": {"N": "1"}, ":room": {"N": "9"}}}  # fmt: skip
        try:
            client.transact_write_items(TransactItems=[
                {"Update": {**update, "Key": {"pk": {"S": "counter"}}}},
                {"Update": {**update, "Key": {"pk": {"S": f"own-{i}"}}}}])  # fmt: skip
            passed.append(i)
        except client.exceptions.TransactionCanceledException:
            pass

    threads = [threading.Thread(target=take, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    items = {i["pk"]["S"]: int(i["n"]["N"]) for i in client.scan(TableName="t")["Items"]}
    assert len(passed) == 10 and items.pop("counter") == 10
    assert sorted(items) == sorted(f"own-{i}" for i in passed)


def _guardrail_template(words: list[str]) -> dict[str, Any]:
    return {
        "Resources": {
            "Guardrail": {"Type": "AWS::Bedrock::Guardrail", "Properties": {
                "Name": "platform-dev", "Description": "the stage's guardrail",
                "BlockedInputMessaging": "Your request was blocked.",
                "BlockedOutputsMessaging": "The answer was withheld.",
                "ContentPolicyConfig": {"FiltersConfig": [
                    {"Type": "HATE", "InputStrength": "HIGH", "OutputStrength": "HIGH"},
                    {"Type": "PROMPT_ATTACK", "InputStrength": "HIGH", "OutputStrength": "NONE"}]},
                "TopicPolicyConfig": {"TopicsConfig": [
                    {"Name": "Investment advice", "Definition": "Advice on what to invest in.",
                     "Examples": ["Which stock should I buy?"], "Type": "DENY"}]},
                "WordPolicyConfig": {"WordsConfig": [{"Text": word} for word in words],
                                     "ManagedWordListsConfig": [{"Type": "PROFANITY"}]},
                "SensitiveInformationPolicyConfig": {
                    "PiiEntitiesConfig": [{"Type": "EMAIL", "Action": "ANONYMIZE"},
                                          {"Type": "US_SOCIAL_SECURITY_NUMBER", "Action": "BLOCK"},
                                          {"Type": "PHONE", "Action": "ANONYMIZE", "InputEnabled": False},
                                          {"Type": "NAME", "Action": "ANONYMIZE"}],
                    "RegexesConfig": [
                        {"Name": "ticket", "Pattern": r"TCK-\d{4}", "Action": "ANONYMIZE"},
                        {"Name": "secret", "Pattern": r"sk-local-\w+", "Action": "BLOCK",
                         "OutputAction": "ANONYMIZE", "Description": "an upstream key"}]},
                "Tags": [{"Key": "stage", "Value": "dev"}]}},
            "Version": {"Type": "AWS::Bedrock::GuardrailVersion", "Properties": {
                "GuardrailIdentifier": {"Fn::GetAtt": ["Guardrail", "GuardrailId"]},
                "Description": "the first version"}},
        },
        "Outputs": {
            "GuardrailRef": {"Value": {"Ref": "Guardrail"}},
            "GuardrailArn": {"Value": {"Fn::GetAtt": ["Guardrail", "GuardrailArn"]}},
            "GuardrailId": {"Value": {"Fn::GetAtt": ["Guardrail", "GuardrailId"]}},
            "DraftVersion": {"Value": {"Fn::GetAtt": ["Guardrail", "Version"]}},
            "VersionRef": {"Value": {"Ref": "Version"}},
            "Version": {"Value": {"Fn::GetAtt": ["Version", "Version"]}},
            "VersionGuardrailArn": {"Value": {"Fn::GetAtt": ["Version", "GuardrailArn"]}},
        },
    }  # fmt: skip


def _outputs(cfn: Any, stack: str) -> dict[str, str]:
    found = cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    return {o["OutputKey"]: o["OutputValue"] for o in found}


def _apply(runtime: Any, guardrail: str, version: str, source: str, *texts: str) -> dict[str, Any]:
    answer: dict[str, Any] = runtime.apply_guardrail(guardrailIdentifier=guardrail, guardrailVersion=version,
                                                     source=source,
                                                     content=[{"text": {"text": text}} for text in texts])  # fmt: skip
    return answer


def test_a_guardrail_deployed_by_cloudformation_is_applied_with_its_words_regexes_and_pii(patched):
    """bedrock-runtime's ApplyGuardrail against a guardrail and version from a template, in AWS's answer shape."""
    session = boto3.session.Session(region_name=REGION)
    cfn = session.client("cloudformation")
    cfn.create_stack(StackName="guarded", TemplateBody=json.dumps(_guardrail_template(["Project Falcon"])))
    assert cfn.describe_stacks(StackName="guarded")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    out = _outputs(cfn, "guarded")
    guardrail_id = out["GuardrailId"]
    arn = f"arn:aws:bedrock:{REGION}:123456789012:guardrail/{guardrail_id}"
    assert re.fullmatch(r"[a-z0-9]{12}", guardrail_id)
    assert out["GuardrailRef"] == out["GuardrailArn"] == out["VersionGuardrailArn"] == arn
    assert out["DraftVersion"] == "DRAFT" and out["Version"] == "1"
    assert out["VersionRef"] == f"{guardrail_id}|1"
    runtime = session.client("bedrock-runtime")

    # A custom word blocks the input, whatever its case and spacing, with the input's message.
    blocked = _apply(runtime, guardrail_id, "1", "INPUT", "Tell me about project  falcon, please.")
    assert blocked["action"] == "GUARDRAIL_INTERVENED" and blocked["actionReason"] == "Guardrail blocked."
    assert blocked["outputs"] == [{"text": "Your request was blocked."}]
    (assessment,) = blocked["assessments"]
    assert assessment["wordPolicy"] == {"customWords": [{"match": "Project Falcon", "action": "BLOCKED",
                                                         "detected": True}]}  # fmt: skip
    assert assessment["invocationMetrics"]["guardrailCoverage"] == {"textCharacters": {"guarded": 38, "total": 38}}
    assert blocked["usage"]["wordPolicyUnits"] == 1 and blocked["usage"]["contextualGroundingPolicyUnits"] == 0
    assert _apply(runtime, guardrail_id, "1", "INPUT", "the falconry club")["action"] == "NONE"  # whole words only
    profane = _apply(runtime, guardrail_id, "1", "OUTPUT", "That is bullshit.")
    assert profane["outputs"] == [{"text": "The answer was withheld."}]
    assert profane["assessments"][0]["wordPolicy"]["managedWordLists"] == [
        {"match": "bullshit", "type": "PROFANITY", "action": "BLOCKED", "detected": True}]  # fmt: skip

    # An email and an ANONYMIZE regex are masked in an answer, as Bedrock masks them.
    masked = _apply(runtime, guardrail_id, "1", "OUTPUT", "Write to ana@example.com about TCK-1234.")
    assert masked["action"] == "GUARDRAIL_INTERVENED" and masked["actionReason"] == "Guardrail masked."
    assert masked["outputs"] == [{"text": "Write to {EMAIL} about {ticket}."}]
    sensitive = masked["assessments"][0]["sensitiveInformationPolicy"]
    assert sensitive["piiEntities"] == [{"match": "ana@example.com", "type": "EMAIL", "action": "ANONYMIZED",
                                         "detected": True}]  # fmt: skip
    assert sensitive["regexes"] == [{"name": "ticket", "match": "TCK-1234", "regex": r"TCK-\d{4}",
                                     "action": "ANONYMIZED", "detected": True}]  # fmt: skip

    # A BLOCK regex and a BLOCK PII entity block; OutputAction and InputEnabled apply per source.
    secret = _apply(runtime, guardrail_id, "1", "INPUT", "my key is sk-local-abc123")
    assert secret["outputs"] == [{"text": "Your request was blocked."}]
    assert secret["assessments"][0]["sensitiveInformationPolicy"]["regexes"][0]["action"] == "BLOCKED"
    leaked = _apply(runtime, guardrail_id, "1", "OUTPUT", "the key is sk-local-abc123")
    assert leaked["outputs"] == [{"text": "the key is {secret}"}]
    assert _apply(runtime, guardrail_id, "1", "INPUT", "SSN 123-45-6789")["outputs"] == [
        {"text": "Your request was blocked."}]  # fmt: skip
    assert _apply(runtime, guardrail_id, "1", "INPUT", "call 555-867-5309")["action"] == "NONE"
    assert _apply(runtime, guardrail_id, "1", "OUTPUT", "call 555-867-5309")["outputs"] == [{"text": "call {PHONE}"}]

    # Clean text passes: NONE and no outputs. Content filters, topics and NAME are not evaluated locally.
    clean = _apply(runtime, guardrail_id, "1", "INPUT", "Which stock should I buy, Jane Doe?")
    assert clean["action"] == "NONE" and clean["actionReason"] == "No action." and clean["outputs"] == []
    assert set(clean["assessments"][0]) == {"invocationMetrics", "appliedGuardrailDetails"}

    # The ARN identifies the guardrail too, and DRAFT is a version; an unknown guardrail or version is not found.
    assert _apply(runtime, arn, "DRAFT", "INPUT", "project falcon")["action"] == "GUARDRAIL_INTERVENED"
    for identifier, version in (("abcdefghijkl", "1"), (guardrail_id, "7"),
                                (arn.replace(guardrail_id, "abcdefghijkl"), "DRAFT")):  # fmt: skip
        with pytest.raises(runtime.exceptions.ResourceNotFoundException):
            _apply(runtime, identifier, version, "INPUT", "hello")
    with pytest.raises(runtime.exceptions.ValidationException):
        _apply(runtime, guardrail_id, "latest", "INPUT", "hello")

    # The control plane sees it as CloudFormation made it; deleting the stack deletes guardrail and versions.
    control = session.client("bedrock")
    got = control.get_guardrail(guardrailIdentifier=arn, guardrailVersion="1")
    assert got["name"] == "platform-dev" and got["description"] == "the first version" and got["status"] == "READY"
    assert got["wordPolicy"]["words"] == [{"text": "Project Falcon"}]
    assert got["sensitiveInformationPolicy"]["regexes"][1]["outputAction"] == "ANONYMIZE"
    assert got["contentPolicy"]["filters"][1]["type"] == "PROMPT_ATTACK"
    cfn.delete_stack(StackName="guarded")
    assert control.list_guardrails()["guardrails"] == []


def test_a_guardrail_version_keeps_its_policy_when_the_draft_changes(patched):
    """A stack update changes the DRAFT only; CreateGuardrailVersion (an operator's `aws bedrock
    create-guardrail-version`) snapshots the DRAFT as it is then."""
    session = boto3.session.Session(region_name=REGION)
    cfn = session.client("cloudformation")
    cfn.create_stack(StackName="guarded", TemplateBody=json.dumps(_guardrail_template(["alpha"])))
    guardrail_id = _outputs(cfn, "guarded")["GuardrailId"]
    cfn.update_stack(StackName="guarded", TemplateBody=json.dumps(_guardrail_template(["beta"])))
    out = _outputs(cfn, "guarded")
    assert out["GuardrailId"] == guardrail_id and out["VersionRef"] == f"{guardrail_id}|1"
    runtime = session.client("bedrock-runtime")

    def blocks(version: str, word: str) -> bool:
        return bool(_apply(runtime, guardrail_id, version, "INPUT", f"say {word}")["action"] == "GUARDRAIL_INTERVENED")

    assert blocks("1", "alpha") and not blocks("1", "beta")
    assert blocks("DRAFT", "beta") and not blocks("DRAFT", "alpha")
    control = session.client("bedrock")
    created = control.create_guardrail_version(guardrailIdentifier=guardrail_id, description="with beta")
    assert created["guardrailId"] == guardrail_id and created["version"] == "2"
    assert blocks("2", "beta") and not blocks("2", "alpha") and blocks("1", "alpha")
    listed = control.list_guardrails(guardrailIdentifier=guardrail_id)["guardrails"]
    assert [(g["version"], g.get("description")) for g in listed] == [
        ("DRAFT", "the stage's guardrail"), ("1", "the first version"), ("2", "with beta")]  # fmt: skip
    control.delete_guardrail(guardrailIdentifier=guardrail_id, guardrailVersion="2")
    with pytest.raises(runtime.exceptions.ResourceNotFoundException):
        blocks("2", "beta")

    # A changed GuardrailVersion is replaced: a new number, the old version gone.
    template = _guardrail_template(["beta"])
    template["Resources"]["Version"]["Properties"]["Description"] = "the second version"
    cfn.update_stack(StackName="guarded", TemplateBody=json.dumps(template))
    assert _outputs(cfn, "guarded")["VersionRef"] == f"{guardrail_id}|3"
    assert blocks("3", "beta")
    with pytest.raises(runtime.exceptions.ResourceNotFoundException):
        blocks("1", "alpha")


def test_the_pii_patterns_find_what_they_name_and_leave_look_alikes():
    found = {
        text: [(kind, match.group()) for kind, match in emulated_bedrock._pii(text)]
        for text in (
            "card 4111 1111 1111 1111 or 4111-1111-1111-1112",  # the second fails the Luhn check
            "from 10.0.0.12 and fe80::1, not 999.1.1.1 or 12:30:45",
            "mac 00:1a:2b:3c:4d:5e, +44 20 7946 0958, (555) 867-5309",
            "see https://example.com/a?b=1. Key AKIAABCDEFGHIJKLMNOP",
            "SSN 078-05-1120 but not 000-12-3456, order 2024-01-15",
        )
    }
    assert list(found.values()) == [
        [("CREDIT_DEBIT_CARD_NUMBER", "4111 1111 1111 1111")],
        [("IP_ADDRESS", "10.0.0.12"), ("IP_ADDRESS", "fe80::1")],
        [("MAC_ADDRESS", "00:1a:2b:3c:4d:5e"), ("PHONE", "+44 20 7946 0958"), ("PHONE", "(555) 867-5309")],
        [("URL", "https://example.com/a?b=1"), ("AWS_ACCESS_KEY", "AKIAABCDEFGHIJKLMNOP")],
        [("US_SOCIAL_SECURITY_NUMBER", "078-05-1120")],
    ]


def test_the_module_names_every_pii_type_it_does_not_evaluate():
    """Every PII type of Bedrock's API is either found by a pattern or named in the docstring as not evaluated."""
    model = botocore.session.get_session().get_service_model("bedrock")
    types = model.shape_for("GuardrailPiiEntityType").enum
    docstring = " ".join((emulated_bedrock.__doc__ or "").split())
    unevaluated = docstring.split("and the PII types ")[1].split(".")[0]
    named = {name.strip() for name in unevaluated.split(",")}
    assert set(types) - set(emulated_bedrock.PII_PATTERNS) == named
    assert set(emulated_bedrock.PII_PATTERNS) <= set(types)


def _routing_check() -> subprocess.CompletedProcess[str]:
    template = json.dumps(_guardrail_template(["Project Falcon"]))
    return subprocess.run([str(EMULATOR_PYTHON), "-m", "tests.emulator_routing"], cwd=ROOT, input=template,
                          capture_output=True, text=True, timeout=background.TIMEOUT_SECONDS, check=False)  # fmt: skip


if EMULATOR_PYTHON.exists():  # started at collection: the emulator's start-up overlaps the in-process tests
    background.start("emulator-routing", _routing_check)


@pytest.mark.background
@pytest.mark.skipif(not EMULATOR_PYTHON.exists(), reason="the emulator venv (.venv-local) is not installed")
def test_the_emulator_server_routes_bedrock_runtime_and_control_plane_calls():
    """Through moto's server, as a local function's boto3 reaches it (AWS_ENDPOINT_URL; bedrock-runtime and
    bedrock both sign as `bedrock`): tests/emulator_routing.py in the emulator's venv."""
    run = background.result("emulator-routing", _routing_check)
    assert run.returncode == 0, run.stderr
    answers = json.loads(run.stdout)
    assert answers["status"] == "CREATE_COMPLETE"
    assert answers["applied"] == {"id": [{"text": "mail {EMAIL}"}], "arn": [{"text": "mail {EMAIL}"}]}
    assert answers["unknown"] == "ResourceNotFoundException 404"
    assert answers["created_version"] == answers["got_version"] == "2"


MONITORING_TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Version": "2012-10-17", "Statement": []}}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "llm-platform-dev-alarms",
                                                             "KmsMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]}}},
        "Policy": {"Type": "AWS::SNS::TopicPolicy", "Properties": {"Topics": [{"Ref": "Topic"}], "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
                                                    "Resource": {"Ref": "Topic"},
                                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}},
        "Mail": {"Type": "AWS::SNS::Subscription", "Properties": {"TopicArn": {"Ref": "Topic"}, "Protocol": "email",
                                                                   "Endpoint": "ops@example.org"}},
        "Errors": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "AlarmName": "llm-platform-dev-inference-errors", "Namespace": "AWS/Lambda", "MetricName": "Errors",
            "Dimensions": [{"Name": "FunctionName", "Value": "inference"}], "Statistic": "Sum", "Period": 300,
            "Threshold": 5, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1, "TreatMissingData": "notBreaching", "AlarmActions": [{"Ref": "Topic"}]}},
        "Runs": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "AlarmName": "llm-platform-dev-pipeline-failed", "Threshold": 1, "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold", "AlarmActions": [{"Ref": "Topic"}],
            "Metrics": [
                {"Id": "failed", "ReturnData": False, "MetricStat": {"Period": 3600, "Stat": "Sum", "Metric": {
                    "Namespace": "AWS/States", "MetricName": "ExecutionsFailed",
                    "Dimensions": [{"Name": "StateMachineArn", "Value": "arn:aws:states:us-east-1:1:stateMachine"}]}}},
                {"Id": "aborted", "ReturnData": False, "MetricStat": {"Period": 3600, "Stat": "Sum", "Metric": {
                    "Namespace": "AWS/States", "MetricName": "ExecutionsAborted"}}},
                {"Id": "expr", "Expression": "FILL(failed, 0) + FILL(aborted, 0)", "Label": "failed runs"}]}},
        "Board": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
            "DashboardName": "llm-platform-dev-overview",
            "DashboardBody": {"Fn::Join": ["", ['{"widgets":[{"type":"alarm","properties":{"alarms":["',
                                                {"Fn::GetAtt": ["Errors", "Arn"]}, '"]}}]}']]}}},
    }
}  # fmt: skip


def test_the_monitoring_stacks_alarms_topic_policy_and_subscriptions_deploy_and_read_back(patched):
    client = boto3.session.Session(region_name=REGION).client
    cfn = client("cloudformation")
    cfn.create_stack(StackName="emulated", TemplateBody=json.dumps(MONITORING_TEMPLATE))
    assert cfn.describe_stacks(StackName="emulated")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    physical = _resources(cfn)
    topic = physical["Topic"]
    # sns: the topic's policy is the template's, its email subscription waits for confirmation, as in AWS.
    attributes = client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    assert json.loads(attributes["Policy"]) == MONITORING_TEMPLATE["Resources"]["Policy"]["Properties"][
        "PolicyDocument"] | {"Statement": [{**MONITORING_TEMPLATE["Resources"]["Policy"]["Properties"][
            "PolicyDocument"]["Statement"][0], "Resource": topic}]}  # fmt: skip
    (subscription,) = client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.org")
    # cloudwatch: both alarms, the one metric and the metric math, notify the topic.
    found = {a["AlarmName"]: a for a in client("cloudwatch").describe_alarms()["MetricAlarms"]}
    assert set(found) == {"llm-platform-dev-inference-errors", "llm-platform-dev-pipeline-failed"}
    errors = found["llm-platform-dev-inference-errors"]
    assert (errors["MetricName"], errors["Threshold"], errors["AlarmActions"]) == ("Errors", 5.0, [topic])
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": "inference"}]
    runs = found["llm-platform-dev-pipeline-failed"]
    assert [q["Id"] for q in runs["Metrics"]] == ["failed", "aborted", "expr"]
    assert runs["Metrics"][2]["Expression"] == "FILL(failed, 0) + FILL(aborted, 0)"
    assert runs["Metrics"][0]["MetricStat"]["Metric"]["MetricName"] == "ExecutionsFailed"
    assert physical["Errors"] == "llm-platform-dev-inference-errors"
    # The dashboard (moto's own model) names the alarm by the ARN the emulated alarm gave it.
    body = json.loads(client("cloudwatch").get_dashboard(DashboardName="llm-platform-dev-overview")["DashboardBody"])
    assert body["widgets"][0]["properties"]["alarms"] == [errors["AlarmArn"]]
