"""Lambda layers holding exact releases of pure-Python packages the tests run against: aws-lambda-powertools
for every function, and the knowledge pipeline's readers (pypdf, youtube-transcript-api and requests).

Built at synth from the installed, pinned packages instead of a public layer ARN or a pip download: no
network, no cross-account dependency, and a function package stays only the project's own code. Compiled
extensions are left out (they are built for this machine, not Lambda's arm64): only packages that run
without them belong here (charset_normalizer falls back to its pure-Python modules).
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from constructs_lib.foundation.python_function import PYTHON_RUNTIME
from constructs_lib.foundation.staging import package_files, staged

# Powertools and what it needs beyond the Lambda runtime's boto3 (which brings jmespath).
POWERTOOLS_PACKAGES = ("aws_lambda_powertools", "typing_extensions")
# The knowledge pipeline's readers and what they need beyond the runtime (urllib3 too: requests 2.34 wants 2.x).
KNOWLEDGE_PACKAGES = (
    "pypdf", "youtube_transcript_api", "requests", "urllib3", "idna", "certifi", "charset_normalizer", "defusedxml",
)  # fmt: skip
# Compiled extensions (built for this machine) and files a function never reads.
_SKIPPED_SUFFIXES = (".so", ".pyd", ".dylib")


def _source(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{module} is not installed; run `make setup` (requirements.txt pins it).")
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def build_layer_zip(packages: Sequence[str], name: str) -> Path:
    """The layer as one deterministic zip: CDK stages and hashes a single file instead of ~1,300."""
    folder = build_layer_dir(packages, name)
    target = folder.with_suffix(".zip")
    if not target.exists():
        staging = target.with_suffix(f".{os.getpid()}.tmp")
        with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                info = zipfile.ZipInfo(file.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, file.read_bytes())
        staging.replace(target)
    return target


def build_layer_dir(packages: Sequence[str] = POWERTOOLS_PACKAGES, name: str = "powertools") -> Path:
    """``python/<packages>`` in a content-addressed folder, so the asset hash only changes with the code."""
    files: dict[str, Path] = {}
    for source in (_source(m) for m in packages):
        if source.is_file():
            files[f"python/{source.name}"] = source
        else:
            # The Swagger UI bundle (event_handler's OpenAPI pages) is not used by these functions.
            found = package_files(source.parent, source, skip=("py.typed", "swagger_ui"))
            files.update({f"python/{relative}": path for relative, path in found.items()
                          if not path.name.endswith(_SKIPPED_SUFFIXES)})  # fmt: skip
    return staged(files, f"llm-platform-{name}")


class PackageLayer(Construct):
    """Attribute: ``layer``: ``packages`` (import names) as installed from requirements.txt."""

    def __init__(self, scope: Construct, construct_id: str, *, packages: Sequence[str], name: str,
                 description: str) -> None:  # fmt: skip
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(build_layer_zip(packages, name))),
            compatible_runtimes=[PYTHON_RUNTIME],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description=description,
        )


class PowertoolsLayer(PackageLayer):
    """Attribute: ``layer``: aws-lambda-powertools."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id, packages=POWERTOOLS_PACKAGES, name="powertools",
                         description="aws-lambda-powertools (pinned in requirements.txt)")  # fmt: skip
