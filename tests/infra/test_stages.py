"""Stage selection and stage config validation: bad input fails synth with one sentence naming the key."""

from __future__ import annotations

import dataclasses
import re

import aws_cdk as cdk
import pytest

import app as app_module
from constructs_lib.config.settings import FallbackModel, ModelPrice
from constructs_lib.foundation.logs import RETENTION_BY_DAYS
from constructs_lib.foundation.settings import VALID_LOG_RETENTION_DAYS, ConfigError
from constructs_lib.inference.settings import UsagePlanConfig
from lambda_src.contracts.spend import Limits
from stacks.context import Deployment, resolve_deployment
from stacks.stages import DEV, PROD, STAGES
from tests.infra import cli_runs
from tests.infra.conftest import CDK_JSON_CONTEXT


def test_default_stage_is_dev_and_env_agnostic():
    deployment = resolve_deployment({})
    assert deployment.stage is DEV
    assert deployment.account is None and deployment.region is None


def test_prod_is_selected_by_context():
    assert resolve_deployment({"stage": "prod"}).stage is PROD


@pytest.mark.parametrize("value", ["qa", "PROD", "", 3, " dev"])
def test_unknown_stage_names_the_key_and_valid_values(value):
    if value == "":
        assert resolve_deployment({"stage": value}).stage is DEV  # empty means "not given"
        return
    with pytest.raises(ConfigError) as error:
        resolve_deployment({"stage": value})
    assert str(error.value) == f"Context key 'stage' must be one of dev, prod (got {value!r})."


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("account", "12345", "Context key 'account' must be a 12-digit AWS account id (got '12345')."),
        ("account", "abcdefghijkl", "Context key 'account' must be a 12-digit AWS account id (got 'abcdefghijkl')."),
        ("region", "Europe", "Context key 'region' must be an AWS region name such as 'eu-west-1' (got 'Europe')."),
        ("region", True, "Context key 'region' must be an AWS region name such as 'eu-west-1' (got True)."),
    ],
)
def test_malformed_account_or_region(key, value, expected):
    with pytest.raises(ConfigError) as error:
        resolve_deployment({"stage": "dev", key: value})
    assert str(error.value) == expected


def test_numeric_account_from_cdk_json_is_accepted():
    deployment = resolve_deployment({"account": 123456789012, "region": "us-gov-west-1"})
    assert (deployment.account, deployment.region) == ("123456789012", "us-gov-west-1")


def test_stage_settings_that_must_differ():
    assert PROD.retain_data and PROD.termination_protection and not PROD.auto_delete_objects
    assert not DEV.retain_data and not DEV.termination_protection and DEV.auto_delete_objects
    assert set(STAGES) == {"dev", "prod"}


def test_stage_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEV.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"log_retention_days": 10}, "Stage 'dev': log_retention_days must be one of CloudWatch Logs' retention"),
        ({"noncurrent_version_expiration_days": 0}, "Stage 'dev': noncurrent_version_expiration_days must be a whole"),
        ({"abort_incomplete_multipart_upload_days": True}, "Stage 'dev': abort_incomplete_multipart_upload_days must"),
        ({"intelligent_tiering_transition_days": -1}, "Stage 'dev': intelligent_tiering_transition_days must be a"),
        ({"kms_pending_window_days": 31}, "Stage 'dev': kms_pending_window_days must be a whole number of days from 7"),
        ({"retain_data": True}, "Stage 'dev': auto_delete_objects must be False when retain_data is True"),
        ({"name": "Dev Stage"}, "Stage 'Dev Stage': name must be 2-12 lowercase letters or digits"),
        ({"model": "bedrock"}, "Stage 'dev': model must be a ModelConfig (got 'bedrock')."),
    ],
)
def test_bad_stage_values_fail_with_a_sentence_naming_stage_and_field(changes, message):
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(DEV, **changes)
    text = str(error.value)
    assert text.startswith(message)
    assert text.endswith(").") and text.count("\n") == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prefix": "/abs/"}, "Stage 'dev': dataset.prefix must be a relative S3 key prefix ending in '/'"),
        ({"prefix": "no-slash"}, "Stage 'dev': dataset.prefix must be a relative S3 key prefix"),
        ({"prefix": "a/../b/"}, "Stage 'dev': dataset.prefix must be a relative S3 key prefix"),
        ({"prefix": "data*/"}, "Stage 'dev': dataset.prefix must be a relative S3 key prefix"),
        ({"reader_service_principals": ()}, "Stage 'dev': dataset.reader_service_principals must be a non-empty"),
        ({"reader_service_principals": ("*",)}, "Stage 'dev': dataset.reader_service_principals must be a non-empty"),
        ({"reader_service_principals": ["sagemaker.amazonaws.com"]}, "Stage 'dev': dataset.reader_service_principals"),
        ({"source_dir": " "}, "Stage 'dev': dataset.source_dir must be None or the path of a local folder"),
    ],
)
def test_bad_dataset_config_fails_with_a_sentence_naming_stage_key_and_rule(changes, message):
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(DEV, dataset=dataclasses.replace(DEV.dataset, **changes))
    assert str(error.value).startswith(message)
    assert str(error.value).endswith(").") and "\n" not in str(error.value)


def test_missing_dataset_folder_fails_synth_naming_the_field(tmp_path):
    stage = dataclasses.replace(DEV, dataset=dataclasses.replace(DEV.dataset, source_dir=str(tmp_path / "nope")))
    with pytest.raises(ConfigError, match=r"^Stage 'dev': dataset.source_dir must name an existing folder"):
        app_module.build_stacks(cdk.App(context=CDK_JSON_CONTEXT), Deployment(stage=stage))


def test_stage_retention_values_match_the_cdk_enum_mapping():
    assert tuple(sorted(RETENTION_BY_DAYS)) == VALID_LOG_RETENTION_DAYS


def test_main_prints_one_sentence_and_exits_1_on_bad_context(capsys, tmp_path):
    assert app_module.main(context={**CDK_JSON_CONTEXT, "stage": "staging"}, outdir=str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert err == "Error: Context key 'stage' must be one of dev, prod (got 'staging').\n"


@pytest.mark.cli("synth-bad-stage")
def test_cdk_cli_reports_a_bad_stage_without_a_traceback():
    result = cli_runs.result("synth-bad-stage")
    assert result.returncode != 0
    assert "Error: Context key 'stage' must be one of dev, prod (got 'qa')." in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"temperature": 1.5}, "Stage 'dev': model.temperature must be between 0 and 1 (got 1.5)."),
        ({"temperature": -0.1}, "Stage 'dev': model.temperature must be between 0 and 1 (got -0.1)."),
        ({"temperature": float("nan")}, "Stage 'dev': model.temperature must be between 0 and 1 (got nan)."),
        ({"temperature": "0.5"}, "Stage 'dev': model.temperature must be between 0 and 1 (got '0.5')."),
        ({"top_p": 0}, "Stage 'dev': model.top_p must be greater than 0 and at most 1 (got 0)."),
        ({"top_p": 1.01}, "Stage 'dev': model.top_p must be greater than 0 and at most 1 (got 1.01)."),
        (
            {"max_output_tokens": 0},
            "Stage 'dev': model.max_output_tokens must be a whole number from 1 to 65536 (got 0).",
        ),
        ({"max_output_tokens": 10**6}, "Stage 'dev': model.max_output_tokens must be a whole number from 1 to 65536"),
        ({"max_output_tokens": 100.0}, "Stage 'dev': model.max_output_tokens must be a whole number"),
        (
            {"request_timeout_seconds": 29},
            "Stage 'dev': model.request_timeout_seconds must be a whole number of seconds",
        ),
        ({"provider": "azure"}, "Stage 'dev': model.provider must be one of bedrock, openai-compatible (got 'azure')."),
        ({"model_id": "gpt-4o"}, "Stage 'dev': model.model_id must be a Bedrock model id, inference-profile id or ARN"),
        ({"model_id": "anthropic claude"}, "Stage 'dev': model.model_id must be a Bedrock model id"),
        ({"model_id": ""}, "Stage 'dev': model.model_id must be a Bedrock model id"),
        ({"system_prompt": "  "}, "Stage 'dev': model.system_prompt must be non-empty text of at most 4000 characters"),
        ({"system_prompt": "x" * 4001}, "Stage 'dev': model.system_prompt must be non-empty text"),
        ({"learning_rate": 0}, "Stage 'dev': model.learning_rate must be greater than 0 and at most 1 (got 0)."),
        (
            {"upstream_base_url": "http://example.com/v1"},
            "Stage 'dev': model.upstream_base_url must be an https:// URL",
        ),
        (
            {"provider": "openai-compatible", "model_id": "has space"},
            "Stage 'dev': model.model_id must be the upstream",
        ),
        (
            {"model_id": "amazon.titan-text-premier-v1:0"},
            "Stage 'dev': model.prices must price every model the API may call: amazon.titan-text-premier-v1:0 has no",
        ),
        (
            {"fallbacks": (FallbackModel("meta.llama3-8b-instruct-v1:0"),)},
            "Stage 'dev': model.prices must price every model the API may call: meta.llama3-8b-instruct-v1:0 has no",
        ),
        (
            {"prices": (ModelPrice(DEV.model.model_id, -1, 1, "https://example.com/p", "2026-12-07"),)},
            "Stage 'dev': model.prices entry 'anthropic.claude-3-haiku-20240307-v1:0': 'input' must be from 0 to 10000",
        ),
        (
            {"prices": (ModelPrice(DEV.model.model_id, 1, 1, "example.com", "2026-12-07"),)},
            "Stage 'dev': model.prices entry 'anthropic.claude-3-haiku-20240307-v1:0': source must be the https://",
        ),
        (
            {"prices": (ModelPrice(DEV.model.model_id, 1, 1, "https://example.com/p", "last week"),)},
            "Stage 'dev': model.prices entry 'anthropic.claude-3-haiku-20240307-v1:0': as_of must be the date",
        ),
        ({"prices": (*DEV.model.prices, DEV.model.prices[0])}, "Stage 'dev': model.prices must price each model once"),
        ({"fallbacks": (FallbackModel(DEV.model.model_id),)}, "Stage 'dev': model.fallbacks must not repeat a model"),
        (
            {"fallbacks": (FallbackModel("m", "openai-compatible", "http://example.com/v1"),)},
            "Stage 'dev': model.fallbacks entry 'm': upstream_base_url must be an https:// URL",
        ),
        (
            {"fallbacks": tuple(FallbackModel(f"amazon.nova-{i}-v1:0") for i in range(5))},
            "Stage 'dev': model.fallbacks must list at most 4 models",
        ),
        ({"fallbacks": ("amazon.nova-lite-v1:0",)}, "Stage 'dev': model.fallbacks must be a tuple of FallbackModel"),
    ],
)
def test_bad_model_config_fails_with_a_sentence_naming_stage_key_and_rule(changes, message):
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(DEV, model=dataclasses.replace(DEV.model, **changes))
    assert str(error.value).startswith(message)
    assert str(error.value).endswith(").") and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("provider", "model_id"),
    [
        ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0"),
        ("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0"),
        ("bedrock", "amazon.nova-lite-v1:0"),
        ("bedrock", "meta.llama3-8b-instruct-v1:0"),
        ("bedrock", "anthropic.claude-3-sonnet-20240229-v1:0:200k"),
        (
            "bedrock",
            "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0",
        ),
        ("bedrock", "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"),
        ("openai-compatible", "gpt-4o-mini"),
        ("openai-compatible", "SmolLM2-135M-Instruct"),
        ("openai-compatible", "meta-llama/Llama-3.1-8B-Instruct"),
    ],
)
def test_known_model_id_forms_are_accepted(provider, model_id):
    price = ModelPrice(model_id, 1, 2, "https://example.com/prices", "2026-12-07")
    model = dataclasses.replace(DEV.model, provider=provider, model_id=model_id,
                                upstream_base_url="http://127.0.0.1:8080/v1",
                                prices=(*(p for p in DEV.model.prices if p.model_id != model_id), price))  # fmt: skip
    assert dataclasses.replace(DEV, model=model).model.model_id == model_id


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"usage_plans": ()}, "Stage 'dev': api.usage_plans must be a non-empty tuple of UsagePlanConfig"),
        ({"usage_plans": (UsagePlanConfig("Gold", 1, 1, 1),)}, "Stage 'dev': api.usage_plans must be"),
        ({"usage_plans": (UsagePlanConfig("a1", 1, 1, 1), UsagePlanConfig("a1", 2, 2, 2))}, "api.usage_plans must"),
        ({"usage_plans": (UsagePlanConfig("std", 0, 1, 1),)}, "Stage 'dev': api.usage_plans must be"),
        ({"throttle_rate_limit": 0}, "Stage 'dev': api.throttle_rate_limit must be greater than 0"),
        ({"throttle_burst_limit": 0}, "Stage 'dev': api.throttle_burst_limit must be from 1 to 5000 (got 0)."),
        ({"authorizer_cache_seconds": 3601}, "Stage 'dev': api.authorizer_cache_seconds must be a whole number"),
        ({"config_cache_seconds": -1}, "Stage 'dev': api.config_cache_seconds must be a whole number"),
        ({"cors_allowed_origins": ("*",)}, "Stage 'dev': api.cors_allowed_origins must be a tuple of origins"),
        ({"cors_allowed_origins": ("http://example.com",)}, "Stage 'dev': api.cors_allowed_origins must be"),
        ({"waf_enabled": "yes"}, "Stage 'dev': api.waf_enabled must be True or False (got 'yes')."),
        ({"waf_rate_limit": 5}, "Stage 'dev': api.waf_rate_limit must be a whole number of requests per 5 minutes"),
        ({"reserved_concurrency": 0}, "Stage 'dev': api.reserved_concurrency must be from 1 to 1000 (got 0)."),
        ({"max_body_bytes": 10 * 1024 * 1024}, "Stage 'dev': api.max_body_bytes must be from 1024 bytes to 6 MB"),
        (
            {"usage_plans": (UsagePlanConfig("std", 1, 1, 1, Limits(tokens_per_day=0)),)},
            "Stage 'dev': api.usage_plans plan std: budget tokens_per_day must be a whole number of tokens from 1",
        ),
        (
            {"usage_plans": (UsagePlanConfig("std", 1, 1, 1, Limits(tokens_per_minute=2.5)),)},  # type: ignore[arg-type]
            "api.usage_plans plan std: budget tokens_per_minute must be a whole number of tokens",
        ),
        (
            {"usage_plans": (UsagePlanConfig("std", 1, 1, 1, Limits(cost_per_month_usd=-3)),)},
            "api.usage_plans plan std: budget cost_per_month_usd must be greater than 0 and at most 10000000 USD",
        ),
        (
            {"usage_plans": (UsagePlanConfig("std", 1, 1, 1, {"tokens_per_day": 5}),)},  # type: ignore[arg-type]
            "api.usage_plans plan std: budget must be a Limits",
        ),
    ],
)
def test_bad_api_config_fails_with_a_sentence_naming_stage_key_and_rule(changes, message):
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(DEV, api=dataclasses.replace(DEV.api, **changes))
    assert message in str(error.value)
    assert str(error.value).startswith("Stage 'dev': api.") and "\n" not in str(error.value)


@pytest.mark.parametrize(("budget", "message"), [
    (Limits(tokens_per_month=10**13), "chat.user_budget tokens_per_month must be a whole number of tokens from 1"),
    (Limits(cost_per_month_usd=float("nan")), "chat.user_budget cost_per_month_usd must be a number or None"),
    ((1, 2, 3, 4), "chat.user_budget must be a Limits"),
])  # fmt: skip
def test_a_bad_chat_user_budget_fails_with_a_sentence(budget, message):
    with pytest.raises(ConfigError, match=re.escape(f"Stage 'dev': {message}")):
        dataclasses.replace(DEV, chat=dataclasses.replace(DEV.chat, user_budget=budget))


def test_api_settings_that_differ_per_stage():
    assert PROD.api.waf_enabled and not DEV.api.waf_enabled
    assert DEV.api.cors_allowed_origins == ("http://localhost:3000",) and PROD.api.cors_allowed_origins == ()
    assert [p.name for p in DEV.api.usage_plans] == ["standard", "premium"]


def test_bedrock_model_ids_for_iam():
    model = dataclasses.replace(DEV.model, additional_model_ids=("amazon.nova-lite-v1:0",))
    assert model.bedrock_model_ids() == ["anthropic.claude-3-haiku-20240307-v1:0", "amazon.nova-lite-v1:0"]
    upstream = dataclasses.replace(DEV.model, provider="openai-compatible", model_id="SmolLM2-135M-Instruct")
    assert upstream.bedrock_model_ids() == []
    with pytest.raises(ConfigError, match=r"model\.additional_model_ids must be a tuple of Bedrock model ids"):
        dataclasses.replace(DEV, model=dataclasses.replace(DEV.model, additional_model_ids=("gpt 4",)))


def test_the_local_web_origin_joins_the_apis_cors_origins_and_a_bad_one_is_refused():
    deployment = resolve_deployment({"stage": "dev", "local_web_origin": "http://127.0.0.1:3100"})
    assert deployment.stage.api.cors_allowed_origins == (*DEV.api.cors_allowed_origins, "http://127.0.0.1:3100")
    assert resolve_deployment({"stage": "dev"}).stage.api.cors_allowed_origins == DEV.api.cors_allowed_origins
    for bad in ("https://evil.example", "http://127.0.0.1", "*"):
        refused = re.escape("'local_web_origin' must be an http://127.0.0.1:<port> origin")
        with pytest.raises(ConfigError, match=refused):
            resolve_deployment({"stage": "dev", "local_web_origin": bad})
