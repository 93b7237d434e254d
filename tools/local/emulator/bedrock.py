"""Bedrock Guardrails: `AWS::Bedrock::Guardrail` and `AWS::Bedrock::GuardrailVersion`, which moto's
CloudFormation skips, bedrock-runtime's ApplyGuardrail and the control plane's guardrail calls (CreateGuardrail,
GetGuardrail, UpdateGuardrail, DeleteGuardrail, CreateGuardrailVersion, ListGuardrails), which moto lacks, with a
small local stand-in for the policy evaluation.

A guardrail has a DRAFT, which a CloudFormation update or UpdateGuardrail changes, and numbered versions ("1",
"2", ... per guardrail, never reused), each a copy of the DRAFT when it was made: a version never changes.
CloudFormation: the guardrail's Ref is its ARN and GetAtt gives GuardrailArn, GuardrailId, Version ("DRAFT"),
Status, CreatedAt and UpdatedAt; a GuardrailVersion's Ref is "<guardrail id>|<version>" and GetAtt gives
GuardrailArn, GuardrailId and Version. A changed GuardrailVersion is replaced as in CloudFormation (a new version,
the old one deleted; UpdateReplacePolicy is not read). moto applies a stack update's new resources before its
changed ones, so a GuardrailVersion added by the same update that changes its guardrail copies the DRAFT as it
was before the update (CloudFormation follows the dependency); a version added by a later update, or made with
CreateGuardrailVersion, has the new policy.

ApplyGuardrail evaluates, per text block (blocks qualified as grounding_source or query are context, not
evaluated), honouring each entry's InputAction/OutputAction and InputEnabled/OutputEnabled for the source:

- custom words: case-insensitive, as a whole word or phrase (BLOCK or NONE, detect only);
- the managed PROFANITY list: a small fixed English list here, not AWS's list;
- regexes: Python's `re` (BLOCK, ANONYMIZE as `{<Name>}`, or NONE);
- PII entities found by plain patterns: EMAIL, PHONE (North American numbers and +country numbers),
  US_SOCIAL_SECURITY_NUMBER, CREDIT_DEBIT_CARD_NUMBER (Luhn-checked), IP_ADDRESS (v4 and v6), MAC_ADDRESS,
  URL, AWS_ACCESS_KEY (BLOCK, ANONYMIZE as `{<TYPE>}`, or NONE).

Not evaluated, as they need a model (configured, they are accepted, returned by GetGuardrail and never
detected): content filters (PROMPT_ATTACK included), denied topics, contextual grounding, automated reasoning,
images, and the PII types ADDRESS, AGE, AWS_SECRET_KEY, CA_HEALTH_NUMBER, CA_SOCIAL_INSURANCE_NUMBER,
CREDIT_DEBIT_CARD_CVV, CREDIT_DEBIT_CARD_EXPIRY, DRIVER_ID, INTERNATIONAL_BANK_ACCOUNT_NUMBER, LICENSE_PLATE,
NAME, PASSWORD, PIN, SWIFT_CODE, UK_NATIONAL_HEALTH_SERVICE_NUMBER, UK_NATIONAL_INSURANCE_NUMBER,
UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER, USERNAME, US_BANK_ACCOUNT_NUMBER, US_BANK_ROUTING_NUMBER,
US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER, US_PASSPORT_NUMBER, VEHICLE_IDENTIFICATION_NUMBER. The emulator logs a
warning naming them when a guardrail configures any. outputScope FULL answers as INTERVENTIONS.

The answer has AWS's shape: anything blocked gives GUARDRAIL_INTERVENED ("Guardrail blocked.") with the
guardrail's blocked message for the source as the only output; masking alone gives GUARDRAIL_INTERVENED
("Guardrail masked.") with each evaluated block's masked text; otherwise NONE ("No action.") with no outputs.
Usage counts a text unit (up to 1,000 characters) per configured policy, as AWS bills them.

Routing: the SDK signs bedrock-runtime and bedrock calls alike with the name `bedrock`, and moto's server picks
the first Bedrock API whose botocore model has the request's method and path (POST /guardrail/{id}/version/{v}
/apply is bedrock-runtime's ApplyGuardrail, /guardrails... the control plane's), so the calls reach
BedrockRuntimeResponse and BedrockResponse, which get these operations as methods. The guardrails live beside
moto's Bedrock backend of the account and region, so moto's reset clears them.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import logging
import math
import re
import secrets
import string
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from moto.bedrock.models import bedrock_backends
from moto.bedrock.responses import BedrockResponse
from moto.bedrockruntime.responses import BedrockRuntimeResponse
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, get_partition

from tools.local.emulator.cloudformation import register_model

LOG = logging.getLogger(__name__)
DRAFT = "DRAFT"
_VERSION = re.compile(r"[1-9][0-9]{0,7}")
_ID_ALPHABET = string.ascii_lowercase + string.digits
_LOCK = threading.RLock()  # CloudFormation creates in one thread while the server answers in others
POLICIES = ("topicPolicyConfig", "contentPolicyConfig", "wordPolicyConfig", "sensitiveInformationPolicyConfig",
            "contextualGroundingPolicyConfig", "automatedReasoningPolicyConfig")  # fmt: skip
# Usage: what each configured policy is billed under.
_UNITS = {"topicPolicyConfig": "topicPolicyUnits", "contentPolicyConfig": "contentPolicyUnits",
          "wordPolicyConfig": "wordPolicyUnits", "sensitiveInformationPolicyConfig": "sensitiveInformationPolicyUnits",
          "contextualGroundingPolicyConfig": "contextualGroundingPolicyUnits",
          "automatedReasoningPolicyConfig": "automatedReasoningPolicyUnits"}  # fmt: skip
_ACTION_TAKEN = {"BLOCK": "BLOCKED", "ANONYMIZE": "ANONYMIZED", "NONE": "NONE"}

# A small stand-in for AWS's managed profanity list (which is AWS's own and much larger).
PROFANITY = ("fuck", "fucking", "fucked", "motherfucker", "shit", "bullshit", "bitch", "bastard", "asshole",
             "dickhead", "cunt", "wanker")  # fmt: skip


class ResourceNotFoundError(ServiceException):  # type: ignore[misc]
    code = "ResourceNotFoundException"


class ValidationError(ServiceException):  # type: ignore[misc]
    code = "ValidationException"


# --- The guardrails -------------------------------------------------------------------------------------------


@dataclass
class Policy:
    """One version of a guardrail (or its DRAFT): the configuration in CreateGuardrail's request shape."""

    name: str
    description: str | None
    blocked_input: str
    blocked_outputs: str
    config: dict[str, Any]  # the *PolicyConfig members present
    kms_key_arn: str | None
    created_at: datetime
    updated_at: datetime


@dataclass
class Guardrail:
    id: str
    arn: str
    draft: Policy
    tags: list[dict[str, str]]
    versions: dict[str, Policy] = field(default_factory=dict)
    last_version: int = 0

    def policy(self, version: str) -> Policy:
        if version == DRAFT:
            return self.draft
        if not _VERSION.fullmatch(version):
            raise ValidationError(f"Guardrail version must be DRAFT or a number (got {version!r}).")
        if version not in self.versions:
            raise ResourceNotFoundError(f"Guardrail {self.id} has no version {version}.")
        return self.versions[version]


def guardrails(account: str, region: str) -> dict[str, Guardrail]:
    """The guardrails of an account and region, by id (kept on moto's Bedrock backend, so a reset clears them)."""
    backend = bedrock_backends[account][region]
    found: dict[str, Guardrail] = vars(backend).setdefault("emulated_guardrails", {})
    return found


def find(account: str, region: str, identifier: str | None) -> Guardrail:
    """A guardrail by its id or ARN."""
    identifier = identifier or ""
    if identifier.startswith("arn:"):
        for guardrail in guardrails(account, region).values():
            if guardrail.arn == identifier:
                return guardrail
    elif identifier in guardrails(account, region):
        return guardrails(account, region)[identifier]
    raise ResourceNotFoundError(f"Guardrail {identifier!r} was not found.")


def _policy(request: dict[str, Any], created_at: datetime) -> Policy:
    """A Policy from CreateGuardrail's (or UpdateGuardrail's) request, its patterns checked."""
    for name in ("name", "blockedInputMessaging", "blockedOutputsMessaging"):
        if not request.get(name):
            raise ValidationError(f"A guardrail needs {name}.")
    config = {name: copy.deepcopy(request[name]) for name in POLICIES if request.get(name)}
    for regex in config.get("sensitiveInformationPolicyConfig", {}).get("regexesConfig", []):
        try:
            re.compile(regex["pattern"])
        except re.error as error:
            raise ValidationError(f"Regex {regex.get('name')!r}: {error}") from error
    now = datetime.now(UTC)
    return Policy(name=request["name"], description=request.get("description"),
                  blocked_input=request["blockedInputMessaging"], blocked_outputs=request["blockedOutputsMessaging"],
                  config=config, kms_key_arn=request.get("kmsKeyId"), created_at=created_at,
                  updated_at=now)  # fmt: skip


def create_guardrail(account: str, region: str, request: dict[str, Any]) -> Guardrail:
    policy = _policy(request, datetime.now(UTC))
    with _LOCK:
        found = guardrails(account, region)
        guardrail_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
        while guardrail_id in found:
            guardrail_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
        arn = f"arn:{get_partition(region)}:bedrock:{region}:{account}:guardrail/{guardrail_id}"
        guardrail = Guardrail(id=guardrail_id, arn=arn, draft=policy, tags=list(request.get("tags") or []))
        found[guardrail_id] = guardrail
    _warn_unevaluated(guardrail)
    return guardrail


def update_guardrail(guardrail: Guardrail, request: dict[str, Any]) -> None:
    """Replace the DRAFT's configuration; the versions keep theirs."""
    policy = _policy(request, guardrail.draft.created_at)
    with _LOCK:
        guardrail.draft = policy
    _warn_unevaluated(guardrail)


def create_version(guardrail: Guardrail, description: str | None) -> str:
    """A new numbered version: a copy of the DRAFT as it is now."""
    with _LOCK:
        guardrail.last_version += 1
        version = str(guardrail.last_version)
        snapshot = copy.deepcopy(guardrail.draft)
        snapshot.description = description or snapshot.description
        snapshot.created_at = snapshot.updated_at = datetime.now(UTC)
        guardrail.versions[version] = snapshot
    return version


def delete(account: str, region: str, identifier: str, version: str | None = None) -> None:
    """Delete a guardrail with all its versions, or only one version."""
    guardrail = find(account, region, identifier)
    with _LOCK:
        if version is None:
            guardrails(account, region).pop(guardrail.id, None)
        elif guardrail.versions.pop(version, None) is None:
            raise ResourceNotFoundError(f"Guardrail {guardrail.id} has no version {version}.")


def _warn_unevaluated(guardrail: Guardrail) -> None:
    config = guardrail.draft.config
    unevaluated = [name for name in ("contentPolicyConfig", "topicPolicyConfig", "contextualGroundingPolicyConfig",
                                     "automatedReasoningPolicyConfig") if name in config]  # fmt: skip
    pii = config.get("sensitiveInformationPolicyConfig", {}).get("piiEntitiesConfig", [])
    unevaluated += [entity["type"] for entity in pii if entity.get("type") not in PII_PATTERNS]
    if unevaluated:
        LOG.warning("Guardrail %s (%s): not evaluated locally (they need a model): %s", guardrail.id,
                    guardrail.draft.name, ", ".join(unevaluated))  # fmt: skip


# --- CloudFormation -------------------------------------------------------------------------------------------


def _camel(value: Any) -> Any:
    """CloudFormation's property names (PascalCase) as the API's (camelCase), values untouched."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def _request_from_cloudformation(properties: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = _camel(properties)
    request["kmsKeyId"] = request.pop("kmsKeyArn", None)
    return request


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _guardrail_attributes(guardrail: Guardrail) -> dict[str, str]:
    return {"GuardrailArn": guardrail.arn, "GuardrailId": guardrail.id, "Version": DRAFT, "Status": "READY",
            "CreatedAt": _timestamp(guardrail.draft.created_at),
            "UpdatedAt": _timestamp(guardrail.draft.updated_at)}  # fmt: skip


def _cfn_guardrail(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    guardrail = create_guardrail(account, region, _request_from_cloudformation(properties))
    return guardrail.arn, _guardrail_attributes(guardrail)


def _cfn_update_guardrail(arn: str, properties: dict[str, Any], account: str, region: str,
                          name: str) -> tuple[str, dict[str, str]]:  # fmt: skip
    guardrail = find(account, region, arn)
    update_guardrail(guardrail, _request_from_cloudformation(properties))
    return guardrail.arn, _guardrail_attributes(guardrail)


def _cfn_delete_guardrail(arn: str, account: str, region: str) -> None:
    with contextlib.suppress(ResourceNotFoundError):  # already gone, as CloudFormation tolerates
        delete(account, region, arn)


def _cfn_version(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    guardrail = find(account, region, properties.get("GuardrailIdentifier"))
    version = create_version(guardrail, properties.get("Description"))
    return f"{guardrail.id}|{version}", {"GuardrailArn": guardrail.arn, "GuardrailId": guardrail.id,
                                         "Version": version}  # fmt: skip


def _cfn_replace_version(physical_id: str, properties: dict[str, Any], account: str, region: str,
                         name: str) -> tuple[str, dict[str, str]]:  # fmt: skip
    """Every property of a GuardrailVersion requires a replacement: a new version, then the old one deleted."""
    replacement = _cfn_version(properties, account, region, name)
    _cfn_delete_version(physical_id, account, region)
    return replacement


def _cfn_delete_version(physical_id: str, account: str, region: str) -> None:
    guardrail_id, _, version = physical_id.partition("|")
    with contextlib.suppress(ResourceNotFoundError):  # the guardrail went first, with its versions
        delete(account, region, guardrail_id, version)


# --- The stand-in evaluation ----------------------------------------------------------------------------------


class Detector(NamedTuple):
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] = lambda _match: True


def _luhn(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if position % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


def _ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


# In the order they claim text: a card number is never also a phone number, a URL's host never an IP address.
PII_PATTERNS: dict[str, Detector] = {
    "URL": Detector(re.compile(r"\b(?:https?://|www\.)[^\s<>\"'()]*[^\s<>\"'().,;:!?]")),
    "EMAIL": Detector(re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    "AWS_ACCESS_KEY": Detector(re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")),
    "CREDIT_DEBIT_CARD_NUMBER": Detector(re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)"), _luhn),
    "US_SOCIAL_SECURITY_NUMBER": Detector(
        re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
    ),
    "MAC_ADDRESS": Detector(
        re.compile(r"(?<![\w:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![\w:-])")
    ),
    "IP_ADDRESS": Detector(
        re.compile(r"(?<![\w.:])(?:(?:\d{1,3}\.){3}\d{1,3}|(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})(?!\w|[.:]\w)"),
        _ip,
    ),
    "PHONE": Detector(
        re.compile(
            r"(?<![\w+])(?:(?:\+?1[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}"
            r"|\+\d{1,3}(?:[ .-]?\d{2,4}){2,4})(?!\w)"
        )
    ),
}


class Finding(NamedTuple):
    start: int
    end: int
    replacement: str  # for ANONYMIZE
    action: str  # BLOCK, ANONYMIZE or NONE


def _setting(entry: dict[str, Any], source: str, default: str) -> str | None:
    """The entry's action for this source, or None when it is switched off for it."""
    side = "input" if source == "INPUT" else "output"
    if str(entry.get(f"{side}Enabled", True)).lower() == "false":  # CloudFormation may pass "false"
        return None
    action: str = entry.get(f"{side}Action") or entry.get("action") or default
    return action


def _phrase(text: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(part) for part in text.split()) + r"(?!\w)", re.IGNORECASE)


def _pii(text: str) -> Iterator[tuple[str, re.Match[str]]]:
    """Every PII entity the patterns find, each stretch of text claimed by one type only."""
    claimed: list[tuple[int, int]] = []
    for kind, detector in PII_PATTERNS.items():
        for match in detector.pattern.finditer(text):
            overlaps = any(match.start() < end and start < match.end() for start, end in claimed)
            if not overlaps and detector.valid(match.group()):
                claimed.append(match.span())
                yield kind, match


class Assessment:
    """What one request's evaluation found, in ApplyGuardrail's assessment shape."""

    def __init__(self) -> None:
        self.custom_words: list[dict[str, Any]] = []
        self.managed_words: list[dict[str, Any]] = []
        self.pii: list[dict[str, Any]] = []
        self.regexes: list[dict[str, Any]] = []

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.custom_words + self.managed_words + self.pii + self.regexes

    def shape(self) -> dict[str, Any]:
        words = {"customWords": self.custom_words, "managedWordLists": self.managed_words}
        sensitive = {"piiEntities": self.pii, "regexes": self.regexes}
        found = {"wordPolicy": words, "sensitiveInformationPolicy": sensitive}
        return {policy: {k: v for k, v in lists.items() if v} for policy, lists in found.items() if any(lists.values())}


def _words(config: dict[str, Any], source: str, text: str, assessment: Assessment) -> None:
    words = config.get("wordPolicyConfig", {})
    for word in words.get("wordsConfig", []):
        action = _setting(word, source, "BLOCK")
        if action and _phrase(word["text"]).search(text):
            assessment.custom_words.append({"match": word["text"], "action": _ACTION_TAKEN[action], "detected": True})
    for managed in words.get("managedWordListsConfig", []):
        action = _setting(managed, source, "BLOCK")
        if not action or managed.get("type") != "PROFANITY":
            continue
        for profanity in PROFANITY:
            assessment.managed_words += [{"match": match.group(), "type": "PROFANITY", "action": _ACTION_TAKEN[action],
                                          "detected": True} for match in _phrase(profanity).finditer(text)]  # fmt: skip


def _sensitive(config: dict[str, Any], source: str, text: str, assessment: Assessment) -> list[Finding]:
    findings: list[Finding] = []
    sensitive = config.get("sensitiveInformationPolicyConfig", {})
    actions = {entity["type"]: _setting(entity, source, "BLOCK") for entity in sensitive.get("piiEntitiesConfig", [])}
    for kind, match in _pii(text):
        if action := actions.get(kind):
            findings.append(Finding(match.start(), match.end(), "{" + kind + "}", action))
            assessment.pii.append({"match": match.group(), "type": kind, "action": _ACTION_TAKEN[action],
                                   "detected": True})  # fmt: skip
    for regex in sensitive.get("regexesConfig", []):
        if action := _setting(regex, source, "BLOCK"):
            for match in re.finditer(regex["pattern"], text):
                findings.append(Finding(match.start(), match.end(), "{" + regex["name"] + "}", action))
                assessment.regexes.append({"name": regex["name"], "match": match.group(), "regex": regex["pattern"],
                                           "action": _ACTION_TAKEN[action], "detected": True})  # fmt: skip
    return findings


def _evaluate_text(config: dict[str, Any], source: str, text: str, assessment: Assessment) -> str:
    """Record what ``text`` matches in ``assessment``; answer the text with the ANONYMIZE matches masked."""
    _words(config, source, text, assessment)
    masked, position = [], 0
    for finding in sorted(f for f in _sensitive(config, source, text, assessment) if f.action == "ANONYMIZE"):
        if finding.start >= position:  # an overlapping later match is inside one already masked
            masked += [text[position : finding.start], finding.replacement]
            position = finding.end
    return "".join([*masked, text[position:]])


def apply_guardrail(guardrail: Guardrail, version: str, source: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    """ApplyGuardrail's answer for ``content`` from ``source`` (INPUT or OUTPUT)."""
    if source not in ("INPUT", "OUTPUT"):
        raise ValidationError(f"source must be INPUT or OUTPUT (got {source!r}).")
    policy = guardrail.policy(version)
    assessment = Assessment()
    outputs, guarded, total, images = [], 0, 0, 0
    for block in content:
        if "text" not in block:
            images += 1
            continue
        text = block["text"].get("text", "")
        total += len(text)
        if {"grounding_source", "query"} & set(block["text"].get("qualifiers") or []):
            continue
        guarded += len(text)
        outputs.append({"text": _evaluate_text(policy.config, source, text, assessment)})
    taken = {entry["action"] for entry in assessment.entries}
    units = math.ceil(guarded / 1000)
    usage = {name: 0 for name in (*_UNITS.values(), "sensitiveInformationPolicyFreeUnits", "contentPolicyImageUnits",
                                  "automatedReasoningPolicies")}  # fmt: skip
    usage.update({_UNITS[name]: units for name in policy.config if name in _UNITS})
    coverage: dict[str, Any] = {"textCharacters": {"guarded": guarded, "total": total}}
    if images:
        coverage["images"] = {"guarded": 0, "total": images}
    details = {"guardrailId": guardrail.id, "guardrailVersion": version, "guardrailArn": guardrail.arn,
               "guardrailOrigin": ["REQUEST"], "guardrailOwnership": "SELF"}  # fmt: skip
    answer: dict[str, Any] = {
        "usage": usage,
        "assessments": [{**assessment.shape(), "appliedGuardrailDetails": details, "invocationMetrics": {
            "guardrailProcessingLatency": 0, "usage": usage, "guardrailCoverage": coverage}}],
        "guardrailCoverage": coverage,
    }  # fmt: skip
    if "BLOCKED" in taken:
        message = policy.blocked_input if source == "INPUT" else policy.blocked_outputs
        return {**answer, "action": "GUARDRAIL_INTERVENED", "actionReason": "Guardrail blocked.",
                "outputs": [{"text": message}]}  # fmt: skip
    if "ANONYMIZED" in taken:
        return {**answer, "action": "GUARDRAIL_INTERVENED", "actionReason": "Guardrail masked.", "outputs": outputs}
    return {**answer, "action": "NONE", "actionReason": "No action.", "outputs": []}


# --- The APIs -------------------------------------------------------------------------------------------------


def _apply_guardrail(self: BedrockRuntimeResponse) -> ActionResult:
    guardrail = find(self.current_account, self.region, self._get_param("guardrailIdentifier"))
    version, source = self._get_param("guardrailVersion"), self._get_param("source")
    return ActionResult(apply_guardrail(guardrail, version, source, self._get_param("content") or []))


def _params(self: BedrockResponse) -> dict[str, Any]:
    """A control-plane request's parameters: query string, JSON body and path (moto parses none of them here)."""
    params: dict[str, Any] = dict(parse_qsl(self.parsed_url.query))
    if self.body:
        params.update(json.loads(self.body))
    params.update(self.uri_match)
    return params


def _shape(policy: Policy) -> dict[str, Any]:
    """GetGuardrail's policy members: fooPolicyConfig {barsConfig} -> fooPolicy {bars}."""
    shaped = {}
    for name, config in policy.config.items():
        shaped[name.removesuffix("Config")] = {key.removesuffix("Config"): value for key, value in config.items()}
    return shaped


def _create_guardrail(self: BedrockResponse) -> ActionResult:
    guardrail = create_guardrail(self.current_account, self.region, _params(self))
    return ActionResult({"guardrailId": guardrail.id, "guardrailArn": guardrail.arn, "version": DRAFT,
                         "createdAt": guardrail.draft.created_at})  # fmt: skip


def _update_guardrail(self: BedrockResponse) -> ActionResult:
    params = _params(self)
    guardrail = find(self.current_account, self.region, params.get("guardrailIdentifier"))
    update_guardrail(guardrail, params)
    return ActionResult({"guardrailId": guardrail.id, "guardrailArn": guardrail.arn, "version": DRAFT,
                         "updatedAt": guardrail.draft.updated_at})  # fmt: skip


def _get_guardrail(self: BedrockResponse) -> ActionResult:
    params = _params(self)
    guardrail = find(self.current_account, self.region, params.get("guardrailIdentifier"))
    version = params.get("guardrailVersion") or DRAFT
    policy = guardrail.policy(version)
    answer = {"name": policy.name, "guardrailId": guardrail.id, "guardrailArn": guardrail.arn, "version": version,
              "status": "READY", "createdAt": policy.created_at, "updatedAt": policy.updated_at,
              "blockedInputMessaging": policy.blocked_input, "blockedOutputsMessaging": policy.blocked_outputs,
              **_shape(policy)}  # fmt: skip
    for key, value in (("description", policy.description), ("kmsKeyArn", policy.kms_key_arn)):
        if value:
            answer[key] = value
    return ActionResult(answer)


def _delete_guardrail(self: BedrockResponse) -> ActionResult:
    params = _params(self)
    delete(self.current_account, self.region, params.get("guardrailIdentifier", ""), params.get("guardrailVersion"))
    return ActionResult({})


def _create_guardrail_version(self: BedrockResponse) -> ActionResult:
    params = _params(self)
    guardrail = find(self.current_account, self.region, params.get("guardrailIdentifier"))
    return ActionResult({"guardrailId": guardrail.id, "version": create_version(guardrail, params.get("description"))})


def _list_guardrails(self: BedrockResponse) -> ActionResult:
    params = _params(self)
    if params.get("guardrailIdentifier"):
        guardrail = find(self.current_account, self.region, params["guardrailIdentifier"])
        listed = [(guardrail, DRAFT, guardrail.draft), *((guardrail, v, p) for v, p in guardrail.versions.items())]
    else:
        listed = [(g, DRAFT, g.draft) for g in guardrails(self.current_account, self.region).values()]
    summaries = []
    for guardrail, version, policy in listed:
        summary = {"id": guardrail.id, "arn": guardrail.arn, "status": "READY", "name": policy.name,
                   "version": version, "createdAt": policy.created_at, "updatedAt": policy.updated_at}  # fmt: skip
        if policy.description:
            summary["description"] = policy.description
        summaries.append(summary)
    return ActionResult({"guardrails": summaries})


CONTROL_PLANE = {"create_guardrail": _create_guardrail, "update_guardrail": _update_guardrail,
                 "get_guardrail": _get_guardrail, "delete_guardrail": _delete_guardrail,
                 "create_guardrail_version": _create_guardrail_version,
                 "list_guardrails": _list_guardrails}  # fmt: skip


def install() -> None:
    register_model("AWS::Bedrock::Guardrail", "bedrock", _cfn_guardrail, _cfn_update_guardrail, _cfn_delete_guardrail)
    register_model("AWS::Bedrock::GuardrailVersion", "bedrock", _cfn_version, _cfn_replace_version,
                   _cfn_delete_version)  # fmt: skip
    BedrockRuntimeResponse.apply_guardrail = _apply_guardrail
    for name, method in CONTROL_PLANE.items():
        setattr(BedrockResponse, name, method)
