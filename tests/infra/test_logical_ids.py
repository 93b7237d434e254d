"""Stateful logical IDs are a contract: a refactor that changes one would replace data in a deployed stack."""

from __future__ import annotations

import re

import pytest

from tests.infra.conftest import ROOT, Synth

STATEFUL_TYPES = {
    "AWS::S3::Bucket",
    "AWS::KMS::Key",
    "AWS::Logs::LogGroup",
    "AWS::DynamoDB::Table",
    "AWS::Glue::Table",
    "AWS::Glue::Database",
    "Custom::SecureStringParameter",
    "AWS::S3Vectors::VectorBucket",
    "AWS::S3Vectors::Index",
    "AWS::SecretsManager::Secret",
    "AWS::Cognito::UserPool",
}

PINNED = {
    "dev": {
        "DatasetBucket5A07B7EE": "AWS::S3::Bucket",
        "DatasetAccessLogs4E9CB989": "AWS::S3::Bucket",
        "DatasetKeyF70C338B": "AWS::KMS::Key",
    },
    "prod": {
        "DatasetBucket5A07B7EE": "AWS::S3::Bucket",
        "DatasetAccessLogs4E9CB989": "AWS::S3::Bucket",
        "DatasetKeyF70C338B": "AWS::KMS::Key",
    },
    "dev_upload": {
        "DatasetBucket5A07B7EE": "AWS::S3::Bucket",
        "DatasetAccessLogs4E9CB989": "AWS::S3::Bucket",
        "DatasetKeyF70C338B": "AWS::KMS::Key",
        "DatasetUploadLogsA79310A4": "AWS::Logs::LogGroup",
    },
}


@pytest.mark.parametrize("variant", sorted(PINNED))
def test_data_stack_stateful_logical_ids_are_pinned(variant, variants):
    assert _stateful(variants[variant], "data") == PINNED[variant]


CONFIG_PINNED = {
    "ConfigKey331CCF85": "AWS::KMS::Key",
    "DatabasePassword49A8070F": "Custom::SecureStringParameter",
    "UpstreamApiKey50CFA424": "Custom::SecureStringParameter",
    "SecureParameterProviderHandlerLogs1B2DD06B": "AWS::Logs::LogGroup",
}


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_config_stack_stateful_logical_ids_are_pinned(variant, variants):
    """A new logical id for a SecureString would create a new parameter and delete (dev) the operator's value."""
    assert _stateful(variants[variant], "config") == CONFIG_PINNED


API_PINNED = {
    "ApiKeyF9DDEE66": "AWS::KMS::Key",
    "KeysTableF42AC009": "AWS::DynamoDB::Table",
    "UsageTableADB4B05A": "AWS::DynamoDB::Table",
    "AuthorizerLogsF64AA3CA": "AWS::Logs::LogGroup",
    "InferenceLogsC1F7CC05": "AWS::Logs::LogGroup",
    "RetrievalLogs9C61C794": "AWS::Logs::LogGroup",
    "ChatLogs5E9385DA": "AWS::Logs::LogGroup",
    "ApiAccessLogs50B185DB": "AWS::Logs::LogGroup",
    "WebConfigUploadLogsD699FB84": "AWS::Logs::LogGroup",
}


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_api_stack_stateful_logical_ids_are_pinned(variant, variants):
    """A new id for the key table would drop every issued API key."""
    expected = dict(API_PINNED)
    if variant == "prod":
        expected["FirewallLogs7FB06776"] = "AWS::Logs::LogGroup"
    assert _stateful(variants[variant], "api") == expected


def _stateful(synth: Synth, component: str) -> dict[str, str]:
    resources = synth.raw(component)["Resources"]
    return {k: v["Type"] for k, v in resources.items() if v["Type"] in STATEFUL_TYPES}


AUDIT_PINNED = {
    "AuditDataKeyCE29E278": "AWS::KMS::Key",
    "AuditDataBucket264F43E0": "AWS::S3::Bucket",
    "AuditDataAccessLogs14C8F0DD": "AWS::S3::Bucket",
    "QueryResultsKey7F20CA6B": "AWS::KMS::Key",
    "QueryResultsBucket8914DAAE": "AWS::S3::Bucket",
    "QueryResultsAccessLogsD2F6DE6E": "AWS::S3::Bucket",
    "AuditLogDeliveryLogs3232F919": "AWS::Logs::LogGroup",
    "AuditLogTableC1B46C45": "AWS::Glue::Table",
    "AuditLogDatabase5099C571": "AWS::Glue::Database",
}


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_audit_stack_stateful_logical_ids_are_pinned(variant, variants):
    """A new id for the audit bucket would strand years of locked records and start an empty log."""
    assert _stateful(variants[variant], "audit") == AUDIT_PINNED


KNOWLEDGE_PINNED = {
    "KnowledgeKey5F2981D8": "AWS::KMS::Key",
    "VectorsBucket00CBA803": "AWS::S3Vectors::VectorBucket",
    "VectorsIndexAD5FBC2C": "AWS::S3Vectors::Index",
    "ManifestTable405893D9": "AWS::DynamoDB::Table",
    "WorkAccessLogsB0D497DE": "AWS::S3::Bucket",
    "WorkBucket6D724B36": "AWS::S3::Bucket",
    "YoutubeApiKeyBBE06B66": "AWS::SecretsManager::Secret",
    "YoutubeProxyB2E24E09": "AWS::SecretsManager::Secret",
    "DiscoverLogsEC775F15": "AWS::Logs::LogGroup",
    "IngestLogs41B5EF21": "AWS::Logs::LogGroup",
    "ReportLogsAA3E998E": "AWS::Logs::LogGroup",
    "FreshnessLogs4524AD4A": "AWS::Logs::LogGroup",
    "PipelineLogs402221E7": "AWS::Logs::LogGroup",
}


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_knowledge_stack_stateful_logical_ids_are_pinned(variant, variants):
    """A new id for the index would start an empty knowledge base; for a secret, lose the operator's key."""
    assert _stateful(variants[variant], "knowledge") == KNOWLEDGE_PINNED


CHAT_PINNED = {
    "ChatKeyEEED3154": "AWS::KMS::Key",
    "UsersPoolBFC35D3B": "AWS::Cognito::UserPool",
    "HistoryTable4479EEA3": "AWS::DynamoDB::Table",
}


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_chat_stack_stateful_logical_ids_are_pinned(variant, variants):
    """A new id for the user pool would sign every user out for good (new pool, no users); for the table, lose
    every conversation."""
    assert _stateful(variants[variant], "chat") == CHAT_PINNED


WEB_PINNED = {
    "Logs6819BB44": "AWS::S3::Bucket",
    "FilesKeyF4491C5F": "AWS::KMS::Key",
    "FilesBucket7C17EE2E": "AWS::S3::Bucket",
    "UploadLogsC26F6DF4": "AWS::Logs::LogGroup",
}


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_web_stack_stateful_logical_ids_are_pinned(variant, variants):
    """A new id for the site bucket would move the app to a new, empty origin; for the log bucket, lose its logs."""
    assert _stateful(variants[variant], "web") == WEB_PINNED


@pytest.mark.parametrize("variant", ["dev", "prod", "dev_upload"])
def test_the_monitoring_stack_holds_nothing_stateful_to_pin(variant, variants):
    """Alarms, the topic and the dashboard can be replaced without losing data (a replaced topic's email
    subscriptions are confirmed again), so the monitoring stack has no logical id to pin."""
    assert _stateful(variants[variant], "monitoring") == {}


def test_other_tests_find_resources_by_construct_path_not_by_hashed_logical_ids(variants):
    """Only this file names hashed logical ids (the stateful contract); everywhere else a refactor that renames a
    stateless construct must not break a test that is about behaviour."""
    hashed = {
        logical_id
        for synth in variants.values()
        for template in synth.templates.values()
        for logical_id in template["Resources"]
        if re.search(r"[0-9A-F]{8}$", logical_id)
    }
    assert len(hashed) > 20
    offenders = [
        f"{path.relative_to(ROOT)}: {logical_id}"
        for folder in ("tests", "e2e", "bench", "tools")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "test_logical_ids.py"
        for logical_id in hashed
        if logical_id in path.read_text()
    ]
    assert offenders == []
