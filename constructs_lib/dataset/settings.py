"""The dataset's part of the stage configuration (CDK-free)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from constructs_lib.foundation.settings import Check, Settings

# An AWS service principal such as sagemaker.amazonaws.com.
SERVICE_PRINCIPAL = re.compile(r"^[a-z0-9][a-z0-9.-]*\.amazonaws\.com$")
# An S3 key prefix: relative, slash-terminated, no traversal or wildcards.
_PREFIX = re.compile(r"^(?:[A-Za-z0-9!_.'()-]+/)+$")


def is_prefix(value: object) -> bool:
    return isinstance(value, str) and bool(_PREFIX.match(value)) and ".." not in value.split("/")


@dataclass(frozen=True)
class DatasetConfig(Settings):
    """Where the dataset lives in its bucket, who may read it, and an optional folder uploaded at deploy."""

    prefix: str = "datasets/"
    reader_service_principals: tuple[str, ...] = ("sagemaker.amazonaws.com", "bedrock.amazonaws.com")
    # A local folder uploaded under the prefix at every deploy; None uploads nothing.
    source_dir: str | None = None

    def checks(self) -> list[Check]:
        return [
            (is_prefix(self.prefix), "prefix", "must be a relative S3 key prefix ending in '/', such as 'datasets/'"),
            (isinstance(self.reader_service_principals, tuple) and len(self.reader_service_principals) > 0
             and all(isinstance(p, str) and SERVICE_PRINCIPAL.match(p) for p in self.reader_service_principals),
             "reader_service_principals",
             "must be a non-empty tuple of AWS service principals such as 'sagemaker.amazonaws.com'"),
            (self.source_dir is None or (isinstance(self.source_dir, str) and self.source_dir.strip() != ""),
             "source_dir", "must be None or the path of a local folder"),
        ]  # fmt: skip
