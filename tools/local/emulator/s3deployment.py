"""CDK's BucketDeployment (`Custom::CDKBucketDeployment`): its handler's own code, run on the host, with the AWS
CLI it shells out to (`/opt/awscli/aws`, from a Lambda layer that cannot run here) replaced by boto3 doing the
same three commands: `s3 cp` of a source zip, `s3 sync` of the extracted files with the deployment's metadata,
and `s3 rm --recursive`. Everything else (markers replaced with deploy-time values, the answer to
CloudFormation) is the handler's own code."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import mimetypes
import sys
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

RESOURCE_TYPE = "Custom::CDKBucketDeployment"
_LOCK = threading.Lock()  # one deployment at a time (the handler's reserved concurrency is 1)


def is_deployment(event: object) -> bool:
    return isinstance(event, dict) and event.get("ResourceType") == RESOURCE_TYPE and "ResponseURL" in event


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class AwsCli:
    """The handler's `aws` commands, done with one boto3 S3 client."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def __call__(self, *args: str) -> None:
        if args[:1] == ("configure",):
            return  # CLI settings (payload signing) do not apply to boto3 here
        command, rest = args[:2], list(args[2:])
        if command == ("s3", "cp"):
            self.copy(*rest)
        elif command == ("s3", "sync"):
            self.sync(rest)
        elif command == ("s3", "rm") and rest[1:] == ["--recursive"]:
            self.remove(rest[0], keep=set())
        else:
            raise RuntimeError(f"The local emulator does not run `aws {' '.join(args)}`.")

    def copy(self, source: str, target: str) -> None:
        bucket, key = _split(source)
        path = Path(target) / key.rsplit("/", 1)[-1] if Path(target).is_dir() else Path(target)
        path.write_bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def sync(self, args: list[str]) -> None:
        options: dict[str, list[str]] = {}
        positional: list[str] = []
        i = 0
        while i < len(args):
            if args[i] == "--delete":
                options["delete"] = []
                i += 1
            elif args[i].startswith("--"):
                options.setdefault(args[i][2:], []).append(args[i + 1])
                i += 2
            else:
                positional.append(args[i])
                i += 1
        source, target = positional
        bucket, prefix = _split(target)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        root = Path(source)
        written = set()
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            if not _included(relative, options.get("exclude", []), options.get("include", [])):
                continue
            extra: dict[str, Any] = {}
            content_type = (options.get("content-type") or [mimetypes.guess_type(relative)[0] or ""])[0]
            if content_type:
                extra["ContentType"] = content_type
            if options.get("cache-control"):
                extra["CacheControl"] = options["cache-control"][0]
            if options.get("metadata"):
                extra["Metadata"] = json.loads(options["metadata"][0])
            self.s3.put_object(Bucket=bucket, Key=prefix + relative, Body=path.read_bytes(), **extra)
            written.add(prefix + relative)
        if "delete" in options:
            self.remove(target, keep=written)

    def remove(self, target: str, *, keep: set[str]) -> None:
        bucket, prefix = _split(target)
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"] not in keep:
                    self.s3.delete_object(Bucket=bucket, Key=item["Key"])


def _included(relative: str, excludes: list[str], includes: list[str]) -> bool:
    """The CLI's filters: a later --include overrides an earlier --exclude (both given here in that order)."""
    excluded = any(fnmatch.fnmatch(relative, pattern) for pattern in excludes)
    return not excluded or any(fnmatch.fnmatch(relative, pattern) for pattern in includes)


def as_cloudformation_sends(value: Any) -> Any:
    """CloudFormation hands a custom resource its properties with every scalar as a string (``true``, ``128``);
    moto passes the template's JSON types."""
    if isinstance(value, dict):
        return {k: as_cloudformation_sends(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_cloudformation_sends(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def run(code_dir: Path, event: dict[str, Any]) -> None:
    """The handler of the deployed code asset, its CLI done by the handler's own boto3 S3 client (the emulator's
    environment points it here)."""
    event = {**event, **{k: as_cloudformation_sends(event[k]) for k in ("ResourceProperties", "OldResourceProperties")
                         if k in event}}  # fmt: skip
    spec = importlib.util.spec_from_file_location(f"bucket_deployment_{uuid.uuid4().hex}", code_dir / "index.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"No BucketDeployment handler in {code_dir}.")
    module = importlib.util.module_from_spec(spec)
    with _LOCK:
        spec.loader.exec_module(module)
        setattr(module, "aws_command", AwsCli(module.__dict__["s3"]))  # noqa: B010 - the handler's global
        module.handler(event, SimpleNamespace(log_stream_name="local-emulator"))
    print(f"emulator: BucketDeployment {event.get('LogicalResourceId')} {event.get('RequestType')}",
          file=sys.stderr, flush=True)  # fmt: skip
