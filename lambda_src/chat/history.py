"""The conversations and their messages in DynamoDB (layout: lambda_src/contracts/chat.py). Every call names the
user whose partition it reads or writes: nothing here can reach another user's items, whatever ids it is given.

A question reserves two places (question, answer) when it arrives: the next two sequence numbers, which are never
handed out again, and two of the conversation's messages under its limit, held until the answer is stored. The
question and its answer are written when the answer ends, in one transaction with the conversation's message count
and title, so the count is the messages stored; a question that fails before that gives its two held messages
back (``release``) and leaves a gap in the numbering. Every write renews the time to live of what it writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from lambda_src.contracts import chat as c
from lambda_src.shared.dynamo import condition_failed, plain

DAY_SECONDS = 86_400
# Attempts at a write to a conversation item that a transaction on the same item (another question's answer being
# stored) made DynamoDB refuse; the refusal is immediate and the transaction short.
CONFLICT_ATTEMPTS = 3
CONFLICT_PAUSE_SECONDS = 0.05


class Conversation(NamedTuple):
    id: str
    title: str
    created_at: str
    updated_at: str
    message_count: int
    title_set_by_user: bool

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "object": "conversation", "title": self.title, "created_at": self.created_at,
                "updated_at": self.updated_at, "message_count": self.message_count}  # fmt: skip


class Message(NamedTuple):
    sequence: int
    role: str
    content: str
    created_at: str
    citations: list[dict[str, Any]]
    usage: dict[str, int] | None
    partial: bool
    finish_reason: str

    def public(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": f"m_{self.sequence:05d}", "role": self.role, "content": self.content,
                                  "created_at": self.created_at}  # fmt: skip
        if self.role == c.ASSISTANT:
            answer.update(citations=self.citations, usage=self.usage, partial=self.partial,
                          finish_reason=self.finish_reason)  # fmt: skip
        return answer


class ConversationFullError(Exception):
    """The conversation holds MAX_MESSAGES_PER_CONVERSATION messages already."""


class History:
    def __init__(self, table: Any, *, retention_days: int, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._retention = retention_days * DAY_SECONDS
        self._clock = clock

    def _stamp(self) -> tuple[str, int]:
        now = self._clock()
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), int(now) + self._retention

    def page(self, user: str, limit: int, after: str | None) -> tuple[list[Conversation], str | None]:
        """Newest first; ``after`` is the last id of the previous page (the cursor), None for the first page."""
        arguments: dict[str, Any] = {
            "KeyConditionExpression": Key(c.PARTITION_KEY).eq(c.user_partition(user))
            & Key(c.SORT_KEY).begins_with(c.CONVERSATION_PREFIX),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after is not None:  # the partition is always the caller's, whatever the cursor says
            arguments["ExclusiveStartKey"] = {c.PARTITION_KEY: c.user_partition(user),
                                              c.SORT_KEY: c.conversation_key(after)}  # fmt: skip
        page = self._table.query(**arguments)
        found = [_conversation(item) for item in page.get("Items", [])]
        more = "LastEvaluatedKey" in page and len(found) == limit
        return found, found[-1].id if more and found else None

    def create(self, user: str, title: str | None) -> Conversation:
        now, expires = self._stamp()
        conversation_id = c.new_conversation_id(self._clock())
        item: dict[str, Any] = {
            c.PARTITION_KEY: c.user_partition(user), c.SORT_KEY: c.conversation_key(conversation_id),
            c.TITLE_SET_BY_USER: bool(title), c.CREATED_AT: now, c.UPDATED_AT: now, c.MESSAGE_COUNT: 0,
            c.NEXT_SEQUENCE: 0, c.MESSAGES_HELD: 0, c.EXPIRES_AT: expires}  # fmt: skip
        if title:  # without one, the first question stored gives it (record)
            item[c.TITLE] = title
        self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(#pk)",
                             ExpressionAttributeNames={"#pk": c.PARTITION_KEY})  # fmt: skip
        return _conversation(item)

    def get(self, user: str, conversation_id: str) -> Conversation | None:
        item = self._table.get_item(Key=self._key(user, conversation_id), ConsistentRead=True).get("Item")
        return _conversation(item) if item else None

    def messages(self, user: str, conversation_id: str) -> list[Message]:
        """In the conversation's order."""
        return [_message(item) for item in self._query(user, c.messages_prefix(conversation_id))]

    def rename(self, user: str, conversation_id: str, title: str) -> Conversation | None:
        now, expires = self._stamp()
        try:
            answer = self._update(
                Key=self._key(user, conversation_id),
                UpdateExpression="SET #t = :t, #s = :true, #u = :u, #e = :e",
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={"#t": c.TITLE, "#s": c.TITLE_SET_BY_USER, "#u": c.UPDATED_AT,
                                          "#e": c.EXPIRES_AT, "#pk": c.PARTITION_KEY},
                ExpressionAttributeValues={":t": title, ":true": True, ":u": now, ":e": expires},
                ReturnValues="ALL_NEW",
            )  # fmt: skip
        except ClientError as error:
            if condition_failed(error):
                return None
            raise
        return _conversation(answer["Attributes"])

    def delete(self, user: str, conversation_id: str) -> bool:
        """The conversation and every message of it; False when the user has no such conversation."""
        try:
            self._table.delete_item(Key=self._key(user, conversation_id), ConditionExpression="attribute_exists(#pk)",
                                    ExpressionAttributeNames={"#pk": c.PARTITION_KEY})  # fmt: skip
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        with self._table.batch_writer() as batch:
            for item in self._query(user, c.messages_prefix(conversation_id), keys_only=True):
                batch.delete_item(Key={c.PARTITION_KEY: item[c.PARTITION_KEY], c.SORT_KEY: item[c.SORT_KEY]})
        return True

    def reserve(self, user: str, conversation_id: str) -> tuple[Conversation, int] | None:
        """Two places (question, answer) at the end of the conversation, held under its message limit until
        ``record`` stores them or ``release`` gives them back: (the conversation, the question's sequence number);
        None when the user has no such conversation; ConversationFullError past the limit."""
        try:
            answer = self._update(
                Key=self._key(user, conversation_id),
                # A conversation written before the two counters existed starts them at its message count.
                UpdateExpression="SET #q = if_not_exists(#q, #n) + :two, #h = if_not_exists(#h, #n) + :two",
                ConditionExpression="attribute_exists(#pk) AND (#h <= :most OR (attribute_not_exists(#h) AND "
                "#n <= :most))",
                ExpressionAttributeNames={"#q": c.NEXT_SEQUENCE, "#h": c.MESSAGES_HELD, "#n": c.MESSAGE_COUNT,
                                          "#pk": c.PARTITION_KEY},
                ExpressionAttributeValues={":two": 2, ":most": c.MAX_MESSAGES_PER_CONVERSATION - 2},
                ReturnValues="ALL_NEW",
            )  # fmt: skip
        except ClientError as error:
            if not condition_failed(error):
                raise
            if self.get(user, conversation_id) is None:
                return None
            raise ConversationFullError() from None
        item = answer["Attributes"]
        return _conversation(item), int(item[c.NEXT_SEQUENCE]) - 2

    def release(self, user: str, conversation_id: str) -> None:
        """Give back the two messages a question held when nothing of it was stored (it failed before its answer
        began): the limit no longer counts them. Its sequence numbers stay unused, so a question reserved after it
        keeps its own; a deleted conversation has nothing to give back."""
        try:
            self._update(Key=self._key(user, conversation_id), UpdateExpression="ADD #h :minus_two",
                         ConditionExpression="attribute_exists(#pk) AND #h >= :two",
                         ExpressionAttributeNames={"#h": c.MESSAGES_HELD, "#pk": c.PARTITION_KEY},
                         ExpressionAttributeValues={":minus_two": -2, ":two": 2})  # fmt: skip
        except ClientError as error:
            if not condition_failed(error):
                raise

    def record(self, user: str, conversation: Conversation, sequence: int, question: str, answer: Message) -> None:
        """The question and its answer at their reserved places, in one transaction with the conversation: its
        message count grows by the two, its title becomes the question unless it has one (the user's, or that of
        the first question stored), its last activity is now. Nothing is written when the conversation was deleted
        meanwhile; when DynamoDB refuses the transaction otherwise, the held places are given back and the error
        raised (a refused transaction wrote nothing)."""
        now, expires = self._stamp()
        partition = c.user_partition(user)
        table = self._table.name
        items = [
            {c.PARTITION_KEY: partition, c.SORT_KEY: c.message_key(conversation.id, sequence), c.ROLE: c.USER,
             c.CONTENT: question, c.CREATED_AT: now, c.EXPIRES_AT: expires},
            {c.PARTITION_KEY: partition, c.SORT_KEY: c.message_key(conversation.id, sequence + 1),
             c.ROLE: c.ASSISTANT, c.CONTENT: answer.content, c.CREATED_AT: now, c.CITATIONS: answer.citations,
             c.USAGE: answer.usage or {}, c.PARTIAL: answer.partial, c.FINISH_REASON: answer.finish_reason,
             c.EXPIRES_AT: expires},
        ]  # fmt: skip
        conversation_update = {
            "TableName": table, "Key": self._key(user, conversation.id),
            "UpdateExpression": "SET #u = :u, #e = :e, #t = if_not_exists(#t, :t) ADD #n :two",
            "ConditionExpression": "attribute_exists(#pk)",
            "ExpressionAttributeNames": {"#u": c.UPDATED_AT, "#e": c.EXPIRES_AT, "#t": c.TITLE,
                                         "#n": c.MESSAGE_COUNT, "#pk": c.PARTITION_KEY},
            "ExpressionAttributeValues": {":u": now, ":e": expires, ":t": title_from(question), ":two": 2},
        }  # fmt: skip
        transaction = [*({"Put": {"TableName": table, "Item": item}} for item in items),
                       {"Update": conversation_update}]  # fmt: skip
        try:
            self._retrying_conflicts(self._table.meta.client.transact_write_items, TransactItems=transaction)
        except ClientError as error:
            if _cancelled_by(error, "ConditionalCheckFailed"):
                return  # the conversation was deleted while it was answered: it stays deleted
            self.release(user, conversation.id)
            raise

    def _update(self, **arguments: Any) -> Any:
        return self._retrying_conflicts(self._table.update_item, **arguments)

    def _retrying_conflicts(self, call: Callable[..., Any], **arguments: Any) -> Any:
        """``call``, again when DynamoDB refused it for a conflict with another write's transaction on the item."""
        for attempt in range(1, CONFLICT_ATTEMPTS):
            try:
                return call(**arguments)
            except ClientError as error:
                conflict = error.response.get("Error", {}).get("Code") == "TransactionConflictException"
                if not (conflict or _cancelled_by(error, "TransactionConflict")):
                    raise
            time.sleep(CONFLICT_PAUSE_SECONDS * attempt)
        return call(**arguments)

    def _key(self, user: str, conversation_id: str) -> dict[str, str]:
        return {c.PARTITION_KEY: c.user_partition(user), c.SORT_KEY: c.conversation_key(conversation_id)}

    def _query(self, user: str, prefix: str, *, keys_only: bool = False) -> Iterator[dict[str, Any]]:
        arguments: dict[str, Any] = {
            "KeyConditionExpression": Key(c.PARTITION_KEY).eq(c.user_partition(user))
            & Key(c.SORT_KEY).begins_with(prefix)
        }
        if keys_only:
            arguments["ProjectionExpression"] = "#pk, #sk"
            arguments["ExpressionAttributeNames"] = {"#pk": c.PARTITION_KEY, "#sk": c.SORT_KEY}
        while True:
            page = self._table.query(**arguments)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def title_from(question: str) -> str:
    """A title from a question: its first line, cut at a word boundary within MAX_TITLE_CHARS."""
    line = " ".join(question.strip().split())
    if len(line) <= c.MAX_TITLE_CHARS:
        return line
    cut = line[: c.MAX_TITLE_CHARS - 1].rsplit(" ", 1)[0]
    return cut + "…"


def _cancelled_by(error: ClientError, reason: str) -> bool:
    """A refused transaction, one of whose items was refused for ``reason`` (ConditionalCheckFailed,
    TransactionConflict...)."""
    reasons = error.response.get("CancellationReasons") or []
    return error.response.get("Error", {}).get("Code") == "TransactionCanceledException" and any(
        isinstance(found, dict) and found.get("Code") == reason for found in reasons
    )


def _conversation(item: dict[str, Any]) -> Conversation:
    return Conversation(str(item[c.SORT_KEY]).removeprefix(c.CONVERSATION_PREFIX), str(item.get(c.TITLE, "")),
                        str(item.get(c.CREATED_AT, "")), str(item.get(c.UPDATED_AT, "")),
                        int(item.get(c.MESSAGE_COUNT, 0)), bool(item.get(c.TITLE_SET_BY_USER, False)))  # fmt: skip


def _message(item: dict[str, Any]) -> Message:
    usage = item.get(c.USAGE) or None
    return Message(int(str(item[c.SORT_KEY]).rsplit("#", 1)[1]), str(item.get(c.ROLE, "")),
                   str(item.get(c.CONTENT, "")), str(item.get(c.CREATED_AT, "")), plain(item.get(c.CITATIONS) or []),
                   plain(usage) if usage else None, bool(item.get(c.PARTIAL, False)),
                   str(item.get(c.FINISH_REASON, "")))  # fmt: skip
