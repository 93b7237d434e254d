"""Step Functions: state machines really run (moto's ASL interpreter), including the ones CloudFormation made.

moto interprets Amazon States Language when `execute_state_machine` is on, in a second backend; its
CloudFormation creates state machines in the first one, where they never run. Both are pointed at the
interpreting backend. Lambda tasks call back into this emulator, whose Lambda runs the deployed code on the
host (awslambda.py); S3, DynamoDB and the Distributed Map's S3 item reader are moto's.
"""

from __future__ import annotations

from moto.core.config import default_user_config
from moto.stepfunctions import models
from moto.stepfunctions.parser.models import stepfunctions_parser_backends


def install() -> None:
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    models.stepfunctions_backends = stepfunctions_parser_backends  # what its CloudFormation models look up
