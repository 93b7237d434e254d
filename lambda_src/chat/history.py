"""The conversations and their messages in DynamoDB (layout: lambda_src/contracts/chat.py). Every call names the
user whose partition it reads or writes: nothing here can reach another user's items, whatever ids it is given.

A question reserves its two sequence numbers (question, answer) when it arrives, under the conversation's
message limit, so two questions at once in one conversation never take the same place; the messages are written
when the answer ends. Every write renews the time to live of what it writes.
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
        item = {c.PARTITION_KEY: c.user_partition(user), c.SORT_KEY: c.conversation_key(conversation_id),
                c.TITLE: title or "", c.TITLE_SET_BY_USER: bool(title), c.CREATED_AT: now, c.UPDATED_AT: now,
                c.MESSAGE_COUNT: 0, c.EXPIRES_AT: expires}  # fmt: skip
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
            answer = self._table.update_item(
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
        """Two places (question, answer) at the end of the conversation: (the conversation before, the first
        sequence number); None when the user has no such conversation; ConversationFullError past the limit."""
        try:
            answer = self._table.update_item(
                Key=self._key(user, conversation_id),
                UpdateExpression="ADD #n :two",
                ConditionExpression="attribute_exists(#pk) AND #n <= :most",
                ExpressionAttributeNames={"#n": c.MESSAGE_COUNT, "#pk": c.PARTITION_KEY},
                ExpressionAttributeValues={":two": 2, ":most": c.MAX_MESSAGES_PER_CONVERSATION - 2},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not condition_failed(error):
                raise
            if self.get(user, conversation_id) is None:
                return None
            raise ConversationFullError() from None
        after = _conversation(answer["Attributes"])
        return after._replace(message_count=after.message_count - 2), after.message_count - 2

    def record(self, user: str, conversation: Conversation, sequence: int, question: str, answer: Message) -> None:
        """The question and its answer at their reserved places; the conversation's title from its first question
        (unless the user named it) and its last activity."""
        now, expires = self._stamp()
        partition = c.user_partition(user)
        with self._table.batch_writer() as batch:
            batch.put_item(Item={
                c.PARTITION_KEY: partition, c.SORT_KEY: c.message_key(conversation.id, sequence), c.ROLE: c.USER,
                c.CONTENT: question, c.CREATED_AT: now, c.EXPIRES_AT: expires})  # fmt: skip
            batch.put_item(Item={
                c.PARTITION_KEY: partition, c.SORT_KEY: c.message_key(conversation.id, sequence + 1),
                c.ROLE: c.ASSISTANT, c.CONTENT: answer.content, c.CREATED_AT: now, c.CITATIONS: answer.citations,
                c.USAGE: answer.usage or {}, c.PARTIAL: answer.partial, c.FINISH_REASON: answer.finish_reason,
                c.EXPIRES_AT: expires})  # fmt: skip
        names = {"#u": c.UPDATED_AT, "#e": c.EXPIRES_AT, "#pk": c.PARTITION_KEY}
        values: dict[str, Any] = {":u": now, ":e": expires}
        update = "SET #u = :u, #e = :e"
        if sequence == 0 and not conversation.title_set_by_user:
            update += ", #t = :t"
            names["#t"] = c.TITLE
            values[":t"] = title_from(question)
        try:  # a conversation deleted while it was answered stays deleted
            self._table.update_item(Key=self._key(user, conversation.id), UpdateExpression=update,
                                    ConditionExpression="attribute_exists(#pk)", ExpressionAttributeNames=names,
                                    ExpressionAttributeValues=values)  # fmt: skip
        except ClientError as error:
            if not condition_failed(error):
                raise
            with self._table.batch_writer() as batch:
                for offset in (0, 1):
                    batch.delete_item(Key={c.PARTITION_KEY: partition,
                                           c.SORT_KEY: c.message_key(conversation.id, sequence + offset)})  # fmt: skip

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
