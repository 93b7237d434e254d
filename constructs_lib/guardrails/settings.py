"""The stage's content safety (CDK-free): the Bedrock Guardrail's policies and messages, which route families apply
it, and how streams are scanned. What the functions read of it (the parameter leaves, stream modes, route families)
is lambda_src/contracts/guardrail.py; Bedrock's vocabulary and limits, checked at synth only, are here."""

from __future__ import annotations

import re
from dataclasses import dataclass

from constructs_lib.foundation.settings import Check, Settings
from lambda_src.contracts import guardrail as g

# What a stage's guardrail may configure (Bedrock's CreateGuardrail; checked at synth only, so the functions never
# load it). Strength of a content filter per direction.
FILTER_TYPES = ("SEXUAL", "VIOLENCE", "HATE", "INSULTS", "MISCONDUCT", "PROMPT_ATTACK")
STRENGTHS = ("NONE", "LOW", "MEDIUM", "HIGH")
PROMPT_ATTACK = "PROMPT_ATTACK"
PII_ACTIONS = ("BLOCK", "ANONYMIZE")
MASK = "ANONYMIZE"
PII_TYPES = (
    "ADDRESS", "AGE", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "CA_HEALTH_NUMBER", "CA_SOCIAL_INSURANCE_NUMBER",
    "CREDIT_DEBIT_CARD_CVV", "CREDIT_DEBIT_CARD_EXPIRY", "CREDIT_DEBIT_CARD_NUMBER", "DRIVER_ID", "EMAIL",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER", "IP_ADDRESS", "LICENSE_PLATE", "MAC_ADDRESS", "NAME", "PASSWORD", "PHONE",
    "PIN", "SWIFT_CODE", "UK_NATIONAL_HEALTH_SERVICE_NUMBER", "UK_NATIONAL_INSURANCE_NUMBER",
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER", "URL", "USERNAME", "US_BANK_ACCOUNT_NUMBER", "US_BANK_ROUTING_NUMBER",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER", "US_PASSPORT_NUMBER", "US_SOCIAL_SECURITY_NUMBER",
    "VEHICLE_IDENTIFICATION_NUMBER",
)  # fmt: skip
# Bedrock's limits on the messages, words, topics and regexes of a guardrail.
MAX_MESSAGE_CHARS = 500
MAX_WORD_CHARS = 100
MAX_WORDS = 10_000
MAX_TOPICS = 30
MAX_TOPIC_NAME_CHARS = 100
MAX_TOPIC_DEFINITION_CHARS = 200
MAX_TOPIC_EXAMPLES = 5
MAX_TOPIC_EXAMPLE_CHARS = 100
MAX_REGEXES = 10
MAX_REGEX_CHARS = 500

_TOPIC_NAME = re.compile(r"^[0-9A-Za-z_ !?.-]+$")
_REGEX_NAME = re.compile(r"^[0-9A-Za-z_-]{1,100}$")


@dataclass(frozen=True)
class ContentFilter:
    """One of Bedrock's harmful-content categories, with how strictly input and output are filtered."""

    type: str
    input_strength: str = "HIGH"
    output_strength: str = "HIGH"

    def problem(self) -> str | None:
        if self.type not in FILTER_TYPES:
            return f"{self.type!r}: type must be one of {', '.join(FILTER_TYPES)}"
        if self.input_strength not in STRENGTHS or self.output_strength not in STRENGTHS:
            return f"{self.type}: strengths must be one of {', '.join(STRENGTHS)}"
        if self.type == PROMPT_ATTACK and self.output_strength != "NONE":
            return "PROMPT_ATTACK: output_strength must be 'NONE' (prompt attacks are only detected in input)"
        return None


@dataclass(frozen=True)
class PiiEntity:
    """A kind of sensitive information, blocked or masked (ANONYMIZE: replaced by ``{TYPE}``)."""

    type: str
    action: str = "ANONYMIZE"

    def problem(self) -> str | None:
        if self.type not in PII_TYPES:
            return f"{self.type!r}: type must be one of Bedrock's PII types (constructs_lib/guardrails/settings.py)"
        if self.action not in PII_ACTIONS:
            return f"{self.type}: action must be one of {', '.join(PII_ACTIONS)}"
        return None


@dataclass(frozen=True)
class RegexFilter:
    """Sensitive information of the organisation's own (an employee number, a project code name)."""

    name: str
    pattern: str
    action: str = "BLOCK"
    description: str = ""

    def problem(self) -> str | None:
        if not (isinstance(self.name, str) and _REGEX_NAME.match(self.name)):
            return f"{self.name!r}: name must be 1-100 letters, digits, _ or -"
        if not (isinstance(self.pattern, str) and 0 < len(self.pattern) <= MAX_REGEX_CHARS):
            return f"{self.name}: pattern must be 1-{MAX_REGEX_CHARS} characters"
        try:
            re.compile(self.pattern)
        except re.error as error:
            return f"{self.name}: pattern is not a valid regular expression ({error})"
        if self.action not in PII_ACTIONS:
            return f"{self.name}: action must be one of {', '.join(PII_ACTIONS)}"
        return None


@dataclass(frozen=True)
class DeniedTopic:
    """A subject the assistant must not discuss, described in plain words with example questions."""

    name: str
    definition: str
    examples: tuple[str, ...] = ()

    def problem(self) -> str | None:
        if not (isinstance(self.name, str) and _TOPIC_NAME.match(self.name)
                and len(self.name) <= MAX_TOPIC_NAME_CHARS):  # fmt: skip
            return f"{self.name!r}: name must be 1-{MAX_TOPIC_NAME_CHARS} letters, digits, spaces or _!?.-"
        if not (isinstance(self.definition, str) and 0 < len(self.definition) <= MAX_TOPIC_DEFINITION_CHARS):
            return f"{self.name}: definition must be 1-{MAX_TOPIC_DEFINITION_CHARS} characters"
        if not (isinstance(self.examples, tuple) and len(self.examples) <= MAX_TOPIC_EXAMPLES and all(
                isinstance(e, str) and 0 < len(e) <= MAX_TOPIC_EXAMPLE_CHARS for e in self.examples)):  # fmt: skip
            return f"{self.name}: examples must be at most {MAX_TOPIC_EXAMPLES} texts of 1-100 characters"
        return None


DEFAULT_CONTENT_FILTERS = (
    ContentFilter("SEXUAL"),
    ContentFilter("VIOLENCE", "MEDIUM", "MEDIUM"),
    ContentFilter("HATE"),
    ContentFilter("INSULTS", "MEDIUM", "MEDIUM"),
    ContentFilter("MISCONDUCT", "MEDIUM", "MEDIUM"),
    ContentFilter("PROMPT_ATTACK", "HIGH", "NONE"),
)
# Credentials never reach the model or leave it; card and social security numbers are masked.
DEFAULT_PII = (
    PiiEntity("AWS_ACCESS_KEY", "BLOCK"),
    PiiEntity("AWS_SECRET_KEY", "BLOCK"),
    PiiEntity("PASSWORD", "BLOCK"),
    PiiEntity("CREDIT_DEBIT_CARD_NUMBER", "ANONYMIZE"),
    PiiEntity("US_SOCIAL_SECURITY_NUMBER", "ANONYMIZE"),
)


@dataclass(frozen=True)
class GuardrailConfig(Settings):
    """A Bedrock Guardrail for the stage (no cost at idle: Bedrock bills the text it assesses)."""

    enabled: bool = True
    # The route families that apply it: the OpenAI-compatible routes (/chat/completions, /prompt) and the chat app.
    inference_routes: bool = True
    chat_routes: bool = True
    content_filters: tuple[ContentFilter, ...] = DEFAULT_CONTENT_FILTERS
    pii_entities: tuple[PiiEntity, ...] = DEFAULT_PII
    regexes: tuple[RegexFilter, ...] = ()
    denied_topics: tuple[DeniedTopic, ...] = ()
    # Blocked words and phrases (case-insensitive), and AWS's managed profanity list.
    words: tuple[str, ...] = ()
    profanity: bool = True
    # What the caller reads instead of the blocked question's answer, or the blocked answer.
    blocked_input_message: str = "Sorry, I can't help with that request under this organisation's content policy."
    blocked_output_message: str = "Sorry, the answer was withheld under this organisation's content policy."
    # How a streamed answer is scanned: sync holds each chunk until it is assessed (the only mode that can mask),
    # async sends first and stops the stream when a later assessment intervenes (lower latency, no masking).
    stream_processing: str = g.STREAM_SYNC

    def checks(self) -> list[Check]:
        checks: list[Check] = [
            (isinstance(self.enabled, bool), "enabled", "must be True or False"),
            (isinstance(self.inference_routes, bool), "inference_routes", "must be True or False"),
            (isinstance(self.chat_routes, bool), "chat_routes", "must be True or False"),
            (isinstance(self.profanity, bool), "profanity", "must be True or False"),
            (self.stream_processing in g.STREAM_PROCESSING_MODES, "stream_processing",
             f"must be one of {', '.join(g.STREAM_PROCESSING_MODES)}"),
        ]  # fmt: skip
        for name in ("blocked_input_message", "blocked_output_message"):
            value = getattr(self, name)
            checks.append((isinstance(value, str) and len(value.strip()) > 0 and len(value) <= MAX_MESSAGE_CHARS,
                           name, f"must be non-empty text of at most {MAX_MESSAGE_CHARS} characters"))  # fmt: skip
        checks += [self._entries("content_filters", ContentFilter, self.content_filters, len(FILTER_TYPES)),
                   self._entries("pii_entities", PiiEntity, self.pii_entities, len(PII_TYPES)),
                   self._entries("regexes", RegexFilter, self.regexes, MAX_REGEXES),
                   self._entries("denied_topics", DeniedTopic, self.denied_topics, MAX_TOPICS)]  # fmt: skip
        checks.append((isinstance(self.words, tuple) and len(self.words) <= MAX_WORDS and all(
            isinstance(w, str) and len(w.strip()) > 0 and len(w) <= MAX_WORD_CHARS for w in self.words),
            "words", f"must be a tuple of at most {MAX_WORDS:,} words or phrases of 1-{MAX_WORD_CHARS} characters"))  # fmt: skip  # noqa: E501
        if all(ok for ok, _, _ in checks):
            checks.append((not (self.masks() and self.stream_processing == g.STREAM_ASYNC), "stream_processing",
                           "must be 'sync' while a PII type or regex masks (ANONYMIZE): asynchronous scanning "
                           "sends text before it is assessed, so it cannot mask"))  # fmt: skip
            checks.append((not self.enabled or self.has_policy(), "enabled",
                           "needs at least one content filter, PII type, regex, denied topic or word"))  # fmt: skip
        return checks

    @staticmethod
    def _entries(name: str, kind: type, entries: object, most: int) -> Check:
        if not isinstance(entries, tuple) or not all(isinstance(e, kind) for e in entries):
            return False, name, f"must be a tuple of {kind.__name__}"
        if len(entries) > most:
            return False, name, f"must have at most {most} entries"
        problems = [p for e in entries if (p := e.problem())]
        if problems:
            return False, name, f"entry {problems[0]}"
        keys = [getattr(e, "type", None) or getattr(e, "name", None) for e in entries]
        return len(set(keys)) == len(keys), name, "must not name the same type or name twice"

    def masks(self) -> bool:
        return any(e.action == MASK for e in self.pii_entities) or any(r.action == MASK for r in self.regexes)

    def has_policy(self) -> bool:
        return bool(self.content_filters or self.pii_entities or self.regexes or self.denied_topics or self.words
                    or self.profanity)  # fmt: skip

    def families(self) -> tuple[str, ...]:
        """The route families that apply the guardrail (none when it is disabled)."""
        if not self.enabled:
            return ()
        chosen = {g.FAMILY_INFERENCE: self.inference_routes, g.FAMILY_CHAT: self.chat_routes}
        return tuple(family for family in g.FAMILIES if chosen[family])
