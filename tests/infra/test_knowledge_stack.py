"""KnowledgeStack's template: the index, the manifest, the secrets, the pipeline, its schedule and IAM."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from constructs_lib.foundation.settings import ConfigError
from constructs_lib.knowledge.settings import KnowledgeConfig
from lambda_src.contracts import knowledge as k
from lambda_src.contracts import parameters
from stacks.context import resolve_deployment
from stacks.stages import DEV, LOCAL_BLOCKED_PHRASE, LOCAL_EMBEDDING_MODEL, LOCAL_MASKED_ID
from tests.infra.conftest import Synth
from tests.infra.templates import by_type


def actions_of(statement: dict[str, Any]) -> set[str]:
    found = statement["Action"]
    return {found} if isinstance(found, str) else set(found)


def test_the_index_is_versioned_cosine_of_the_stage_dimension_with_text_not_filterable(dev):
    index = dev.properties("knowledge", "Vectors/Index")
    assert index["IndexName"] == k.index_name(1, DEV.knowledge.dimension) == "chunks-v1-d1024-cosine"
    assert (index["Dimension"], index["DistanceMetric"], index["DataType"]) == (1024, "cosine", "float32")
    assert index["MetadataConfiguration"] == {"NonFilterableMetadataKeys": ["text", "uri", "title"]}
    bucket = dev.properties("knowledge", "Vectors/Bucket")
    key = dev.logical_id("knowledge", "KnowledgeKey")
    for encryption in (index["EncryptionConfiguration"], bucket["EncryptionConfiguration"]):
        assert encryption == {"SseType": "aws:kms", "KmsKeyArn": {"Fn::GetAtt": [key, "Arn"]}}


def test_the_manifest_has_a_key_pitr_and_the_contract_layout(dev, prod):
    for synth, protected in ((dev, False), (prod, True)):
        table = synth.properties("knowledge", "Manifest/Table")
        assert [a["AttributeName"] for a in table["KeySchema"]] == [k.PARTITION_KEY, k.SORT_KEY]
        assert table["SSESpecification"]["SSEEnabled"] is True
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table.get("DeletionProtectionEnabled", False) is protected


def test_secrets_hold_a_generated_placeholder_never_a_value_in_the_template(dev):
    for path, field in (("YoutubeApiKey", "api_key"), ("YoutubeProxy", "https_url")):
        secret = dev.properties("knowledge", path)
        assert "SecretString" not in secret
        generated = secret["GenerateSecretString"]
        assert json.loads(generated["SecretStringTemplate"]) == {field: f"UNSET-REPLACE-ME-{field}"}
        assert secret["KmsKeyId"] == {"Fn::GetAtt": [dev.logical_id("knowledge", "KnowledgeKey"), "Arn"]}


def test_the_schedule_is_weekly_in_the_stage_time_zone_with_retries_and_a_dead_letter_queue(dev):
    schedule = dev.properties("knowledge", "Pipeline/Weekly")
    assert schedule["ScheduleExpression"] == "cron(0 3 ? * MON *)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == {"Ref": dev.logical_id("knowledge", "Pipeline/StateMachine")}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 3
    queue = dev.logical_id("knowledge", "Pipeline/ScheduleDeadLetters")
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
    assert dev.properties("knowledge", "Pipeline/ScheduleDeadLetters")["KmsMasterKeyId"]


def test_the_freshness_check_runs_on_a_schedule_of_its_own_that_may_invoke_only_it(dev, prod):
    """Every FRESHNESS_CHECK_HOURS (the late-pipeline alarm's period), the function itself and no version of it
    (CDK's LambdaInvoke target would also allow `ARN:*`), failed starts into the schedules' dead-letter queue."""
    schedules = by_type(dev.raw("knowledge"), "AWS::Scheduler::Schedule")
    assert len(schedules) == 2
    schedule = dev.properties("knowledge", "Pipeline/Freshness")
    assert schedule["ScheduleExpression"] == f"rate({k.FRESHNESS_CHECK_HOURS} hours)"
    assert schedule["State"] == "ENABLED"
    function = dev.logical_id("knowledge", "Freshness/Function")
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
    queue = dev.logical_id("knowledge", "Pipeline/ScheduleDeadLetters")
    assert schedule["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
    statements = dev.properties("knowledge", "Pipeline/FreshnessSchedulerPolicy")["PolicyDocument"]["Statement"]
    invoke = [statement for statement in statements if statement["Action"] == "lambda:InvokeFunction"]
    assert invoke == [{"Action": "lambda:InvokeFunction", "Effect": "Allow",
                       "Resource": {"Fn::GetAtt": [function, "Arn"]}}]  # fmt: skip
    handler = dev.properties("knowledge", "Freshness/Function")
    assert handler["Handler"] == "lambda_src.knowledge.handler.freshness"
    assert handler["Environment"]["Variables"]["STAGE"] == "dev"
    assert prod.properties("knowledge", "Freshness/Function")["Environment"]["Variables"]["STAGE"] == "prod"


def test_the_state_machine_logs_everything_encrypted_and_is_traced(dev):
    machine = dev.properties("knowledge", "Pipeline/StateMachine")
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    group = dev.properties("knowledge", "Pipeline/Logs")
    assert group["KmsKeyId"] == {"Fn::GetAtt": [dev.logical_id("knowledge", "KnowledgeKey"), "Arn"]}
    assert machine["EncryptionConfiguration"]["Type"] == "CUSTOMER_MANAGED_KMS_KEY"


def definition(synth: Any) -> dict[str, Any]:
    """The state machine's ASL with the template's references blanked (they are strings in the JSON)."""
    parts = synth.properties("knowledge", "Pipeline/StateMachine")["DefinitionString"]["Fn::Join"][1]
    asl: dict[str, Any] = json.loads("".join(p if isinstance(p, str) else "REF" for p in parts))
    return asl


def test_the_definition_discovers_maps_with_bounded_concurrency_retries_catches_and_reports(dev):
    asl = definition(dev)
    assert asl["StartAt"] == "Discover"
    documents = asl["States"]["Documents"]
    assert documents["Type"] == "Map"
    assert documents["MaxConcurrency"] == DEV.knowledge.max_concurrency
    assert documents["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert documents["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    ingest = documents["ItemProcessor"]["States"]["Ingest"]
    (retry,) = ingest["Retry"]
    assert k.TRANSIENT_ERROR in retry["ErrorEquals"] and "Lambda.TooManyRequestsException" in retry["ErrorEquals"]
    assert (retry["BackoffRate"], retry["MaxAttempts"], retry["JitterStrategy"]) == (2, 5, "FULL")
    assert ingest["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}]
    assert documents["Next"] == "Report" and documents["Catch"][0]["Next"] == "Report"
    assert asl["States"]["Report"]["End"] is True


FUNCTIONS = ("Discover", "Ingest", "Report", "Freshness")


def readable(synth: Synth, component: str, value: Any) -> Any:
    """A policy value with its references written as construct paths: of the knowledge stack as
    ``${Manifest/Table.Arn}``, of another (an import resolved to what it exports) as ``${data:Dataset/Bucket.Arn}``."""
    if isinstance(value, list):
        return [readable(synth, component, item) for item in value]
    if not isinstance(value, dict):
        return value
    if "Fn::ImportValue" in value:
        return readable(synth, *_exported(synth, value["Fn::ImportValue"]))
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(str(readable(synth, component, part)) for part in parts)
    if "Ref" in value or "Fn::GetAtt" in value:
        logical_id, *attribute = value.get("Fn::GetAtt") or [value["Ref"]]
        return "${" + ".".join([_path(synth, component, logical_id), *attribute]) + "}"
    return {key: readable(synth, component, item) for key, item in value.items()}


def _exported(synth: Synth, name: str) -> tuple[str, Any]:
    """The component whose stack exports ``name``, and the value it exports."""
    ((stack, value),) = [(stack, output["Value"]) for stack, template in synth.templates.items()
                         for output in template.get("Outputs", {}).values()
                         if output.get("Export", {}).get("Name") == name]  # fmt: skip
    return stack.rsplit("-", 1)[-1], value


def _path(synth: Synth, component: str, logical_id: str) -> str:
    if logical_id.startswith("AWS::"):
        return logical_id
    stack = synth.stack_name(component)
    path = synth.raw(component)["Resources"][logical_id]["Metadata"]["aws:cdk:path"].removeprefix(f"{stack}/")
    path = path.removesuffix("/Resource").removesuffix("/Default")
    return path if component == "knowledge" else f"{component}:{path}"


def granted(synth: Synth, component: str, logical_id: str) -> list[dict[str, Any]]:
    """A policy's statements, readable, actions sorted, sids dropped (all of them Allow), in a stable order."""
    found = []
    for statement in synth.raw(component)["Resources"][logical_id]["Properties"]["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow", statement
        entry = {"Action": sorted(actions_of(statement)), "Resource": readable(synth, component, statement["Resource"])}
        if "Condition" in statement:
            entry["Condition"] = readable(synth, component, statement["Condition"])
        found.append(entry)
    return sorted(found, key=json.dumps)


def role_policies(synth: Synth, function: str) -> dict[str, list[dict[str, Any]]]:
    """Every policy the function's role has, by construct path: the policies naming the role in their Roles and
    the managed policies the role lists (the dataset stack's, imported). Inline policies would fail this."""
    template = synth.raw("knowledge")
    role = synth.logical_id("knowledge", f"{function}/Role")
    assert "Policies" not in template["Resources"][role]["Properties"]
    found = {
        _path(synth, "knowledge", logical_id): granted(synth, "knowledge", logical_id)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy")
        and {"Ref": role} in resource["Properties"].get("Roles", [])
    }
    for arn in template["Resources"][role]["Properties"].get("ManagedPolicyArns", []):
        name = str(readable(synth, "knowledge", arn))
        if name.startswith("${") and ":" in name:  # a policy of another stack of the app
            component, path = name[2:-1].split(":")
            found[name[2:-1]] = granted(synth, component, synth.logical_id(component, path))
        else:  # an AWS managed policy: listed by its ARN, so the comparison shows it
            found[name] = []
    return found


KEY = "${KnowledgeKey.Arn}"
SECRET_READ = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
VECTOR_WRITE = ["s3vectors:DeleteVectors", "s3vectors:PutVectors"]
DATASET = "${data:Dataset/Bucket.Arn}"
SSM_ARN = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"


def via(service: str, actions: list[str], resource: str = KEY, **context: Any) -> dict[str, Any]:
    """A key statement limited to one service (and to an encryption context)."""
    condition = {"kms:ViaService": f"{service}.${{AWS::Region}}.amazonaws.com", **context}
    return {"Action": actions, "Resource": resource, "Condition": {"StringEquals": condition}}


def runtime(function: str) -> list[dict[str, Any]]:
    """What every function has: its own log group and X-Ray (which has no resource-level permissions)."""
    return [{"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"${{{function}/Logs.Arn}}"},
            {"Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Resource": "*"}]  # fmt: skip


def manifest(actions: list[str]) -> list[dict[str, Any]]:
    return [{"Action": actions, "Resource": "${Manifest/Table.Arn}"},
            via("dynamodb", ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"])]  # fmt: skip


VECTORS = [{"Action": VECTOR_WRITE, "Resource": "${Vectors/Index.IndexArn}"},
           via("s3vectors", ["kms:Decrypt", "kms:GenerateDataKey"])]  # fmt: skip
UPSTREAM_KEY = f"{SSM_ARN}{parameters.parameter_name(DEV.name, parameters.UPSTREAM_API_KEY)}"
# Each function's own managed policy, statement for statement, and the other policies its role has.
EXACT: dict[str, tuple[list[dict[str, Any]], set[str]]] = {
    "Discover": ([
        *runtime("Discover"),
        *manifest(["dynamodb:PutItem", "dynamodb:Query"]),  # read the manifest, open the run
        {"Action": ["s3:PutObject"], "Resource": f"${{Work/Bucket.Arn}}/{k.WORK_PREFIX}*"},
        via("s3", ["kms:GenerateDataKey"], **{"kms:EncryptionContext:aws:s3:arn": "${Work/Bucket.Arn}"}),
        {"Action": SECRET_READ, "Resource": "${YoutubeApiKey}"},
        *VECTORS,  # the vectors of a file that is now skipped
    ], {"data:KnowledgeAccess/ListPolicy"}),
    "Ingest": ([
        *runtime("Ingest"),
        *manifest(["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]),
        *VECTORS,
        {"Action": SECRET_READ, "Resource": "${YoutubeProxy}"},
        {"Action": ["bedrock:InvokeModel"],
         "Resource": f"arn:${{AWS::Partition}}:bedrock:${{AWS::Region}}::foundation-model/{k.TITAN_V2}"},
        {"Action": ["ssm:GetParameter"], "Resource": UPSTREAM_KEY},
        via("ssm", ["kms:Decrypt"], "${config:ConfigKey.Arn}",
            **{"kms:EncryptionContext:PARAMETER_ARN": [UPSTREAM_KEY]}),
        {"Action": ["ssm:GetParameter", "ssm:GetParameters"],
         "Resource": [f"{SSM_ARN}${{Embedding/{leaf}}}" for leaf in ("BaseUrl", "ModelId", "Provider")]},
        {"Action": ["ssm:GetParametersByPath"],
         "Resource": SSM_ARN + parameters.parameter_name(DEV.name, k.EMBEDDING_PATH)},
    ], {"data:KnowledgeAccess/ReadPolicy"}),
    "Report": ([*runtime("Report"), *manifest(["dynamodb:GetItem", "dynamodb:UpdateItem"])], set()),
    # Read the newest runs and when the manifest was created; its key only to decrypt.
    "Freshness": ([*runtime("Freshness"), {"Action": ["dynamodb:DescribeTable", "dynamodb:Query"],
                                           "Resource": "${Manifest/Table.Arn}"},
                   via("dynamodb", ["kms:Decrypt"])], set()),
}  # fmt: skip


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_pipeline_function_has_exactly_its_policy(dev, function):
    """Statement for statement: the manifest actions, the index, the secret, the model, the parameters, the keys
    (each only through its service); one more action or a wider resource fails."""
    expected, others = EXACT[function]
    policies = role_policies(dev, function)
    assert set(policies) == {f"{function}/Policy", *others}
    assert policies[f"{function}/Policy"] == sorted(expected, key=json.dumps)


def test_each_secret_is_readable_by_the_one_function_that_needs_it(dev):
    """No other statement of any stack names a secret or Secrets Manager: the YouTube key is Discover's, the
    proxy Ingest's, exactly GetSecretValue and DescribeSecret; the key decrypts through Secrets Manager for those
    two roles (and CDK's account statement, which defers to these IAM policies)."""
    granting = []
    for stack, template in dev.templates.items():
        component = stack.rsplit("-", 1)[-1]
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] not in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
                continue
            for statement in granted(dev, component, logical_id):
                text = json.dumps(statement)
                if "secretsmanager" in text or "${Youtube" in text:
                    granting.append((_path(dev, component, logical_id), statement))
    assert sorted(granting, key=json.dumps) == [
        ("Discover/Policy", {"Action": SECRET_READ, "Resource": "${YoutubeApiKey}"}),
        ("Ingest/Policy", {"Action": SECRET_READ, "Resource": "${YoutubeProxy}"}),
    ]
    key_policy = dev.properties("knowledge", "KnowledgeKey")["KeyPolicy"]["Statement"]
    through_secrets_manager = [(readable(dev, "knowledge", s["Principal"]), sorted(actions_of(s)))
                               for s in key_policy if "secretsmanager." in json.dumps(s.get("Condition"))]  # fmt: skip
    assert through_secrets_manager == [
        # CDK's statement for a secret's key: the account's principals, through Secrets Manager, as far as their
        # IAM policies let them (the statements above are all there are).
        ({"AWS": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"},
         ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*",
          "kms:ReEncrypt*"]),
        ({"AWS": ["${Discover/Role.Arn}", "${Ingest/Role.Arn}"]}, ["kms:Decrypt"]),
    ]  # fmt: skip


def test_the_functions_reach_the_dataset_bucket_only_under_the_knowledge_prefix(dev):
    """Every S3 statement of the three roles, whichever policy holds it: objects only under the knowledge prefix
    (Ingest reads them), listing only conditioned on it (Discover), and Discover's own work lists; a statement
    on the whole dataset bucket, its every object or '*' would be one more here."""
    prefix = DEV.knowledge.prefix
    reaching = [
        (function, policy, statement)
        for function in FUNCTIONS
        for policy, found in role_policies(dev, function).items()
        for statement in found
        if any(action.split(":")[0] in ("*", "s3") for action in statement["Action"])
        or DATASET in json.dumps(statement["Resource"])
    ]
    assert sorted(reaching, key=json.dumps) == [
        ("Discover", "Discover/Policy",
         {"Action": ["s3:PutObject"], "Resource": f"${{Work/Bucket.Arn}}/{k.WORK_PREFIX}*"}),
        ("Discover", "data:KnowledgeAccess/ListPolicy",
         {"Action": ["s3:ListBucket"], "Resource": DATASET,
          "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}}),
        ("Ingest", "data:KnowledgeAccess/ReadPolicy", {"Action": ["s3:GetObject"], "Resource": f"{DATASET}/{prefix}*"}),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dimension": 384}, "dimension"),
        ({"embedding_model_id": "cohere.embed-english-v3"}, "embedding_model_id"),
        ({"chunk_overlap_tokens": 300}, "chunk_overlap_tokens"),
        ({"schedule_cron": "every monday"}, "schedule_cron"),
        ({"youtube_playlist_ids": ("not a playlist!",)}, "youtube_playlist_ids"),
        ({"prefix": "../escape/"}, "prefix"),
        ({"max_concurrency": 0}, "max_concurrency"),
    ],
)
def test_bad_knowledge_settings_fail_with_a_sentence_naming_the_field(change, field):
    with pytest.raises(ConfigError, match=rf"Stage 'dev': knowledge\.{field} "):
        dataclasses.replace(DEV, knowledge=dataclasses.replace(KnowledgeConfig(), **change))


def test_an_openai_compatible_provider_takes_any_dimension():
    settings = KnowledgeConfig(embedding_provider="openai-compatible", embedding_model_id="e5-small", dimension=384)
    assert settings.problem() is None


def test_the_local_deployment_sizes_the_knowledge_base_for_the_local_embedding_model_and_adds_a_trial_plan():
    """`make local` deploys with -c local=true: a 384-dimension index for all-MiniLM-L6-v2, a trial plan with a tiny
    daily token budget beside the stage's own, a short settings cache, a blocked phrase and a masked pattern in the
    guardrail; nothing else differs."""
    local = resolve_deployment({"stage": "dev", "local": "true"}).stage
    assert (local.knowledge.embedding_provider, local.knowledge.embedding_model_id, local.knowledge.dimension) == (
        "openai-compatible", LOCAL_EMBEDDING_MODEL, 384)  # fmt: skip
    assert k.index_name(local.knowledge.index_version, local.knowledge.dimension) == "chunks-v1-d384-cosine"
    assert [p.name for p in local.api.usage_plans] == [*(p.name for p in DEV.api.usage_plans), "trial"]
    assert local.api.usage_plans[-1].budget.tokens_per_day == 1_200 and local.api.config_cache_seconds == 2
    assert local.guardrails.words == (*DEV.guardrails.words, LOCAL_BLOCKED_PHRASE)
    assert local.guardrails.regexes == (*DEV.guardrails.regexes, LOCAL_MASKED_ID)
    assert dataclasses.replace(local, knowledge=DEV.knowledge, api=DEV.api, guardrails=DEV.guardrails) == DEV
    assert resolve_deployment({"stage": "dev"}).stage == DEV
    with pytest.raises(ConfigError, match="'local' must be true or false"):
        resolve_deployment({"local": "yes"})
