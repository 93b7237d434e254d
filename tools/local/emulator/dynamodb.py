"""DynamoDB: each write and each transaction applied atomically, as DynamoDB applies them.

moto checks a write's condition and then applies it with nothing in between held, and undoes a cancelled
transaction by putting back a copy of the whole table taken before it: two requests at once (the emulator's
server is threaded) can both pass a condition only one of them should, and a cancelled transaction can undo
another request's write made meanwhile. The budgets (lambda_src/shared/budget.py) depend on conditional writes
being atomic, so the backend's writes run one at a time here.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_LOCK = threading.RLock()


def _serialized(method: Any) -> Any:
    @functools.wraps(method)
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(self, *args, **kwargs)

    write.serialized = True  # type: ignore[attr-defined]
    return write


def install() -> None:
    for name in WRITES:
        method = getattr(DynamoDBBackend, name, None)
        if method is not None and not getattr(method, "serialized", False):
            setattr(DynamoDBBackend, name, _serialized(method))
