"""Shapes of AWS names that both the stage configuration and the constructs check, as plain data (no CDK import:
stacks/stages.py is imported by the admin and local tools, which must not start jsii)."""

from __future__ import annotations

import re

# An AWS service principal such as sagemaker.amazonaws.com.
SERVICE_PRINCIPAL = re.compile(r"^[a-z0-9][a-z0-9.-]*\.amazonaws\.com$")
