"""The chat capability's contract: the history table's item layout, the ids and limits users meet, and the
events of a streamed answer.

ChatStack builds the table from these names, the chat function reads and writes them, `python -m tools.users`
and the tests read them. One table holds every user's conversations and messages, each under the partition
of its user (the `sub` of the verified token): a query can only ever reach the caller's own items.
"""

from __future__ import annotations

import re
import secrets
import time

PARTITION_KEY = "pk"
SORT_KEY = "sk"
# DynamoDB's time to live: each item is deleted some time after this epoch second.
EXPIRES_AT = "expires_at"

# Conversation item: sk = conv#<id>. Message item: sk = msg#<id>#<sequence>, in the conversation's order.
CONVERSATION_PREFIX = "conv#"
MESSAGE_PREFIX = "msg#"
TITLE = "title"
TITLE_SET_BY_USER = "title_set_by_user"
CREATED_AT = "created_at"
UPDATED_AT = "updated_at"
# The messages stored in the conversation (each question and each answer counts one).
MESSAGE_COUNT = "message_count"
# The sequence number the next question takes (its answer takes the one after). It only ever grows: two questions
# at once never take the same place, and the places of a question that failed before it was stored stay unused.
NEXT_SEQUENCE = "next_sequence"
# The stored messages plus two for each question being answered: the limit on messages per conversation is
# checked against it, so questions at once cannot pass the limit together, and a failed question gives its two back.
MESSAGES_HELD = "messages_held"
ROLE = "role"
CONTENT = "content"
CITATIONS = "citations"
USAGE = "usage"
# An answer whose stream ended before the model finished (the caller went away, an error, the time budget).
PARTIAL = "partial"
FINISH_REASON = "finish_reason"

USER = "user"
ASSISTANT = "assistant"

# Where `python -m tools.users` and the local platform find the stage's user pool and its browser client.
USER_POOL_PARAMETER = "chat/user-pool-id"
CLIENT_PARAMETER = "chat/web-client-id"

# A conversation id: its creation time (milliseconds, 12 hex digits) then 64 random bits, so sort keys order
# conversations by creation and the newest come first in a descending query.
_CONVERSATION_ID = re.compile(r"^c_[0-9a-f]{28}$")
CONVERSATION_ID_PARAMETER = "conversation_id"

MAX_MESSAGE_CHARS = 8_000
MAX_TITLE_CHARS = 120
# Messages (questions and answers) a conversation may hold; a question past it is refused.
MAX_MESSAGES_PER_CONVERSATION = 200
# GET /conversations: page size (``limit``) and its default.
MAX_PAGE_SIZE = 50
DEFAULT_PAGE_SIZE = 20

# A streamed answer (text/event-stream): `start` (the conversation, the message id, the numbered citations),
# `delta` pieces of text, then `end` (finish reason, usage, partial) or `error` (the API's error shape).
EVENT_START = "start"
EVENT_DELTA = "delta"
EVENT_END = "end"
EVENT_ERROR = "error"


def user_partition(user_id: str) -> str:
    return f"user#{user_id}"


def conversation_key(conversation_id: str) -> str:
    return CONVERSATION_PREFIX + conversation_id


def message_key(conversation_id: str, sequence: int) -> str:
    return f"{MESSAGE_PREFIX}{conversation_id}#{sequence:05d}"


def messages_prefix(conversation_id: str) -> str:
    return f"{MESSAGE_PREFIX}{conversation_id}#"


def new_conversation_id(now: float | None = None) -> str:
    millis = int((time.time() if now is None else now) * 1000)
    return f"c_{millis:012x}{secrets.token_hex(8)}"


def is_conversation_id(value: object) -> bool:
    return isinstance(value, str) and bool(_CONVERSATION_ID.match(value))


def user_session(user_id: str, conversation_id: str) -> str:
    """A conversation as the audit log records it: inside its user's namespace, which no API key id can take
    (key ids are ``key_<hex>``), so two users' conversations, or a user's and a key's sessions, never mix."""
    return f"user:{user_id}:{conversation_id}"
