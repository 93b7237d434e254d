"""The stage's Bedrock Guardrail: what its settings may name (checked at synth), where the functions find the version
to apply (Parameter Store, under the model's path), and how an intervention is reported.

The guardrail itself is built from GuardrailConfig (constructs_lib/guardrails); a numbered version of it (never the
DRAFT) is written to ``<root>/model/guardrail-version``, read by the functions with the rest of the model settings,
so publishing a new version and changing that parameter applies it without deploying the API.
"""

from __future__ import annotations

# Leaves under the model settings path (lambda_src/contracts/parameters.py MODEL_PATH); present only on a stage
# whose guardrail is enabled.
ID_LEAF = "guardrail-id"
VERSION_LEAF = "guardrail-version"
STREAM_PROCESSING_LEAF = "guardrail-stream-processing"
LEAVES = (ID_LEAF, VERSION_LEAF, STREAM_PROCESSING_LEAF)

# ConverseStream's streamProcessingMode: sync scans each chunk before it is sent (and can mask), async sends first.
STREAM_SYNC = "sync"
STREAM_ASYNC = "async"
STREAM_PROCESSING_MODES = (STREAM_SYNC, STREAM_ASYNC)

# The route families a stage switches the guardrail on for (each function is told by APPLY_GUARDRAIL).
FAMILY_INFERENCE = "inference"  # the OpenAI-compatible routes: /chat/completions and /prompt
FAMILY_CHAT = "chat"  # the chat app's conversations
FAMILIES = (FAMILY_INFERENCE, FAMILY_CHAT)

# An intervention is answered, not refused: 200 with finish_reason content_filter and the configured message. The
# audit record and the request log carry this error type; GuardrailInterventions counts it (contracts/metrics.py).
INTERVENED = "guardrail_intervened"
FINISH_REASON = "content_filter"

# What a stage's guardrail may configure (Bedrock's CreateGuardrail). Strength of a content filter per direction.
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
