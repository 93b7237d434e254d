"""The chat function's operations, dispatched on the route table (lambda_src/shared/dispatch.py does the rest:
the caller, body checks, error shape, the audit record of an answer).

Every operation works on the caller's own conversations: the user is the ``sub`` of the token API Gateway's
Cognito authorizer verified, never a value of the request, and the history adapter only reads and writes that
user's partition. Another user's conversation, a malformed id and a deleted conversation all answer the same
404, so a caller cannot learn whether a conversation exists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lambda_src.chat import grounding
from lambda_src.chat.history import Conversation, ConversationFullError, History, Message
from lambda_src.contracts import chat as c
from lambda_src.shared.audit_writer import AuditWriter
from lambda_src.shared.config_source import LeavesSource, ModelTarget, SettingsSource
from lambda_src.shared.dispatch import Dispatcher, Outcome, mapping, text
from lambda_src.shared.embeddings import Embedder, EmbeddingSettings
from lambda_src.shared.errors import ApiError, invalid_request, not_found
from lambda_src.shared.logs import frames
from lambda_src.shared.models import CompletionRequest, ModelClient
from lambda_src.shared.models import Message as ModelMessage
from lambda_src.shared.retrieval import search
from lambda_src.shared.spend import ModelCallHooks
from lambda_src.shared.vectors import VectorIndex

if TYPE_CHECKING:
    from lambda_src.shared.runtime.response import StreamingResponse

FUNCTION = "chat"
LOGGER = logging.getLogger(__name__)


def conversation_not_found() -> ApiError:
    return not_found("No such conversation.", "conversation_not_found")


class ChatApi(Dispatcher):
    def __init__(self, history: History, *, model: SettingsSource,
                 model_for: Callable[[ModelTarget], ModelClient], embedding: LeavesSource,
                 embedder_for: Callable[[EmbeddingSettings, int], Embedder], index: VectorIndex,
                 dimension: int, max_body_bytes: int, cors_origins: tuple[str, ...] = (),
                 audit: AuditWriter | None = None, stream_seconds: int = 0, top_k: int = 5,
                 history_messages: int = 6, clock: Callable[[], float] = time.time,
                 spend: ModelCallHooks | None = None, guardrail: bool = False) -> None:  # fmt: skip
        """``spend``: each user's budget, a SpendControl (None: unmetered, unit tests only). ``guardrail``: apply
        the stage's guardrail to the answers."""
        super().__init__(FUNCTION, {
            "list_conversations": self._list, "create_conversation": self._create, "get_conversation": self._get,
            "rename_conversation": self._rename, "delete_conversation": self._delete, "post_message": self._post,
        }, max_body_bytes=max_body_bytes, cors_origins=cors_origins, audit=audit,
            stream_seconds=stream_seconds, guardrail=guardrail)  # fmt: skip
        self.history = history
        self.model = model
        self.model_for = model_for
        self.embedding = embedding
        self.embedder_for = embedder_for
        self.index = index
        self.dimension = dimension
        self.top_k = top_k
        self.history_messages = history_messages
        self.clock = clock
        self.hooks: ModelCallHooks = spend or ModelCallHooks()

    # --- conversations -------------------------------------------------------------------------------

    def _list(self, event: dict[str, Any], _body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        query = mapping(event.get("queryStringParameters"))
        limit = _limit(query.get("limit"))
        cursor = query.get("cursor")
        if cursor is not None and not c.is_conversation_id(cursor):
            raise invalid_request("'cursor' must be the next_cursor of a previous page.", "invalid_cursor")
        found, after = self.history.page(outcome.caller.user_id, limit, cursor)
        return {"object": "list", "data": [conversation.public() for conversation in found], "next_cursor": after}

    def _create(self, _event: dict[str, Any], body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        title = (body.get("title") or "").strip() or None
        return self.history.create(outcome.caller.user_id, title).public()

    def _get(self, event: dict[str, Any], _body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        user, conversation_id = outcome.caller.user_id, _conversation_id(event)
        conversation = self.history.get(user, conversation_id)
        if conversation is None:
            raise conversation_not_found()
        messages = self.history.messages(user, conversation_id)
        return {**conversation.public(), "messages": [message.public() for message in messages]}

    def _rename(self, event: dict[str, Any], body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        title = body["title"].strip()
        if not title:
            raise invalid_request("'title' must not be blank.")
        renamed = self.history.rename(outcome.caller.user_id, _conversation_id(event), title)
        if renamed is None:
            raise conversation_not_found()
        return renamed.public()

    def _delete(self, event: dict[str, Any], _body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        conversation_id = _conversation_id(event)
        if not self.history.delete(outcome.caller.user_id, conversation_id):
            raise conversation_not_found()
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    # --- a question, answered as a stream ------------------------------------------------------------

    def _post(self, event: dict[str, Any], body: dict[str, Any], outcome: Outcome) -> StreamingResponse:
        question = body["content"].strip()
        if not question:
            raise invalid_request("'content' must not be blank.")
        user, conversation_id = outcome.caller.user_id, _conversation_id(event)
        outcome.input_text = question
        outcome.session_id = c.user_session(user, conversation_id)
        try:
            reserved = self.history.reserve(user, conversation_id)
        except ConversationFullError:
            message = f"The conversation holds {c.MAX_MESSAGES_PER_CONVERSATION} messages, its limit; start a new one."
            raise ApiError(409, message, "invalid_request_error", "conversation_full") from None
        if reserved is None:
            raise conversation_not_found()
        conversation, sequence = reserved
        try:
            return self._answer(event, outcome, conversation, sequence, question)
        except BaseException:  # nothing of the question is stored: its places go back to the conversation's limit
            self._release(user, conversation_id, outcome)
            raise

    def _answer(self, event: dict[str, Any], outcome: Outcome, conversation: Conversation, sequence: int,
                question: str) -> StreamingResponse:  # fmt: skip
        """The sources searched and the model's stream opened: everything that can still fail before the first
        byte. Once the stream is returned, its body stores the question and answer however it ends."""
        earlier = _context(self.history.messages(outcome.caller.user_id, conversation.id), self.history_messages)
        settings = self.model.settings()
        outcome.model_id, outcome.provider = settings.model_id, settings.provider
        embedding = EmbeddingSettings.parse(self.embedding.leaves())
        query = grounding.search_query(question, earlier)
        found = grounding.sources(search(self.embedder_for(embedding, self.dimension), self.index, query,
                                         self.top_k).chunks)  # fmt: skip
        request = CompletionRequest(
            model_id=settings.model_id,
            system=(settings.system_prompt, grounding.GROUNDING_RULES),
            messages=(*earlier, ModelMessage("user", grounding.user_turn(question, found))),
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_output_tokens,
            stop=(),
            timeout_seconds=settings.request_timeout_seconds,
            guardrail=self.guardrail_of(settings),
        )
        # Streamed by a module of its own, loaded with the first question (listing conversations never needs it).
        from lambda_src.chat.answer import Answering, Question  # noqa: PLC0415

        return Answering(self, event, outcome).open(
            request, settings, Question(conversation, sequence, question, found)
        )

    def _release(self, user: str, conversation_id: str, outcome: Outcome) -> None:
        """Give a failed question's places back; failing to must not replace the question's own error."""
        try:
            self.history.release(user, conversation_id)
        except Exception as error:
            LOGGER.error("a failed question's places could not be given back", extra={
                "error_type": type(error).__name__, "frames": frames(error), "api_request_id": outcome.request_id,
            })  # fmt: skip


def _conversation_id(event: dict[str, Any]) -> str:
    """The path's conversation id; one that cannot exist is the same 404 as another user's."""
    value = text(mapping(event.get("pathParameters")).get(c.CONVERSATION_ID_PARAMETER))
    if not c.is_conversation_id(value):
        raise conversation_not_found()
    return value


def _limit(raw: Any) -> int:
    if raw is None:
        return c.DEFAULT_PAGE_SIZE
    if not isinstance(raw, str) or not raw.isdigit() or not 1 <= int(raw) <= c.MAX_PAGE_SIZE:
        raise invalid_request(f"'limit' must be a whole number from 1 to {c.MAX_PAGE_SIZE}.", "value_out_of_range")
    return int(raw)


def _context(messages: list[Message], count: int) -> list[ModelMessage]:
    """The last ``count`` messages the model can take as context: whole question-answer pairs whose answer has
    text (an answer cut off before its first piece has none), starting with a question."""
    pairs: list[tuple[Message, Message]] = []
    by_sequence = {message.sequence: message for message in messages}
    for message in messages:
        answer = by_sequence.get(message.sequence + 1)
        if message.role == c.USER and answer is not None and answer.role == c.ASSISTANT and answer.content.strip():
            pairs.append((message, answer))
    kept = pairs[-(count // 2) :] if count >= 2 else []
    return [ModelMessage(m.role, m.content) for pair in kept for m in pair]
