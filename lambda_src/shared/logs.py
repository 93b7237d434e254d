"""How the functions log: one JSON line per record through the function's Powertools Logger, module loggers too.

An exception's message can carry request content or a secret (a KeyError names the key, a botocore error may
quote a value), so an unexpected failure is logged as its type and frames (file, line, function), never its
message or ``exc_info``.
"""

from __future__ import annotations

import traceback
from typing import Any

# Root of the modules every function ships (lambda_src/<function>, lambda_src/shared).
PACKAGE = "lambda_src"
# Enough to find the line that failed and how it was reached; the innermost frames are kept.
MAX_FRAMES = 20


def route_module_logs(logger: Any) -> None:
    """Module loggers (``logging.getLogger(__name__)`` under lambda_src) log through ``logger``: same JSON
    formatter and handler, the same appended keys (Lambda request id, cold start), its level; not also to the
    root logger (no duplicate plain-text line). Call after the modules are imported."""
    # Imported here: the SecureString provider uses frames() and ships without the Powertools layer.
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers  # noqa: PLC0415

    copy_config_to_registered_loggers(source_logger=logger, include={PACKAGE})


def frames(error: BaseException) -> list[dict[str, Any]]:
    """Where ``error`` was raised and how it got there, innermost last: file (from the package root when it is
    ours), line and function. No local values, no source text, no message."""
    found = []
    # walk_tb rather than extract_tb: no source file is read at the moment of failure.
    for frame, line in list(traceback.walk_tb(error.__traceback__))[-MAX_FRAMES:]:
        path = frame.f_code.co_filename.replace("\\", "/")
        marker = path.rfind(f"/{PACKAGE}/")
        found.append({"file": path[marker + 1 :] if marker >= 0 else path, "line": line,
                      "function": frame.f_code.co_name})  # fmt: skip
    return found
