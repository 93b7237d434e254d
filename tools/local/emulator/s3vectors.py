"""S3 Vectors: `AWS::S3Vectors::VectorBucket` and `AWS::S3Vectors::Index`, which moto's CloudFormation skips,
and QueryVectors, which moto does not implement.

The query is exact (every vector of the index is compared), not approximate as in AWS: same answers for a
small local index. Cosine distance is 1 - cosine similarity, euclidean the L2 distance, as AWS reports them.
Filters: an equality map and the operators AWS documents ($eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists,
$and, $or).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, get_partition
from moto.s3vectors import urls
from moto.s3vectors.models import s3vectors_backends
from moto.s3vectors.responses import S3VectorsResponse

from tools.local.emulator.cloudformation import register_model

MAX_TOP_K = 100


def _vector_bucket(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    backend = _backend(account, region)
    bucket_name = properties.get("VectorBucketName") or f"{name.lower()[:40]}-{secrets.token_hex(6)}"
    backend.create_vector_bucket(region, vector_bucket_name=bucket_name,
                                 encryption_configuration=_encryption(properties))  # fmt: skip
    arn = backend.get_vector_bucket(vector_bucket_name=bucket_name).vector_bucket_arn
    return arn, {"VectorBucketArn": arn, "CreationTime": "1970-01-01T00:00:00Z"}


def _index(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    backend = _backend(account, region)
    bucket = backend.get_vector_bucket(vector_bucket_name=properties.get("VectorBucketName"),
                                       vector_bucket_arn=properties.get("VectorBucketArn"))  # fmt: skip
    index_name = properties.get("IndexName") or f"{name.lower()[:40]}-{secrets.token_hex(6)}"
    backend.create_index(
        vector_bucket_name=bucket.vector_bucket_name,
        vector_bucket_arn=bucket.vector_bucket_arn,
        index_name=index_name,
        data_type=properties.get("DataType", "float32"),
        dimension=int(properties["Dimension"]),
        distance_metric=properties["DistanceMetric"],
    )
    arn = backend.get_index(bucket.vector_bucket_name, index_name, "").index_arn
    return arn, {"IndexArn": arn, "CreationTime": "1970-01-01T00:00:00Z"}


def _backend(account: str, region: str) -> Any:
    # moto keeps one S3 Vectors backend per partition, not per region.
    return s3vectors_backends[account][get_partition(region)]


def _encryption(properties: dict[str, Any]) -> dict[str, str]:
    config = properties.get("EncryptionConfiguration") or {}
    return {key[0].lower() + key[1:]: value for key, value in config.items()}


def distance(metric: str, a: list[float], b: list[float]) -> float:
    if metric == "euclidean":
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return 1.0 - (dot / norms if norms else 0.0)


def matches(metadata: dict[str, Any], where: dict[str, Any]) -> bool:
    """Whether a vector's metadata satisfies an S3 Vectors filter."""
    for key, condition in where.items():
        if key == "$and":
            if not all(matches(metadata, part) for part in condition):
                return False
        elif key == "$or":
            if not any(matches(metadata, part) for part in condition):
                return False
        elif not _holds(metadata, key, condition):
            return False
    return True


def _holds(metadata: dict[str, Any], key: str, condition: Any) -> bool:
    present = key in metadata
    value = metadata.get(key)
    if not isinstance(condition, dict):
        return present and (value == condition or (isinstance(value, list) and condition in value))
    for operator, operand in condition.items():
        if operator not in _OPERATORS:
            raise ValueError(f"Unsupported filter operator {operator}")
        if not _OPERATORS[operator](present, value, operand):
            return False
    return True


_OPERATORS: dict[str, Callable[[bool, Any, Any], bool]] = {
    "$eq": lambda present, value, o: present and value == o,
    "$ne": lambda present, value, o: not present or value != o,
    "$gt": lambda present, value, o: present and value > o,
    "$gte": lambda present, value, o: present and value >= o,
    "$lt": lambda present, value, o: present and value < o,
    "$lte": lambda present, value, o: present and value <= o,
    "$in": lambda present, value, o: present and value in o,
    "$nin": lambda present, value, o: not present or value not in o,
    "$exists": lambda present, value, o: present == bool(o),
}


def query_vectors(self: S3VectorsResponse) -> ActionResult:
    index_arn = self._get_param("indexArn")
    index_name = self._get_param("indexName")
    bucket_name = self._get_param("vectorBucketName")
    self._validate_index_params(index_arn, index_name, bucket_name)
    index = self.s3vectors_backend.get_index(bucket_name, index_name, index_arn)
    top_k = int(self._get_param("topK"))
    query = self._get_param("queryVector")[index.data_type]
    where = self._get_param("filter")
    if not 1 <= top_k <= MAX_TOP_K or len(query) != index.dimension:
        from moto.s3vectors.exceptions import ValidationError  # noqa: PLC0415

        raise ValidationError(f"topK must be 1-{MAX_TOP_K} and the query vector must have {index.dimension} values")
    found = [
        (distance(index.distance_metric, query, vector.data[index.data_type]), vector)
        for vector in index.vectors.values()
        if not where or matches(vector.metadata or {}, where)
    ]
    found.sort(key=lambda pair: pair[0])
    with_distance = self._get_bool_param("returnDistance", False)
    with_metadata = self._get_bool_param("returnMetadata", False)
    vectors = []
    for measured, vector in found[:top_k]:
        item: dict[str, Any] = {"key": vector.key}
        if with_distance:
            item["distance"] = measured
        if with_metadata:
            item["metadata"] = vector.metadata
        vectors.append(item)
    return ActionResult({"vectors": vectors, "distanceMetric": index.distance_metric})


def install() -> None:
    register_model("AWS::S3Vectors::VectorBucket", "s3vectors", _vector_bucket)
    register_model("AWS::S3Vectors::Index", "s3vectors", _index)
    S3VectorsResponse.query_vectors = query_vectors
    urls.url_paths.setdefault("{0}/QueryVectors$", S3VectorsResponse.dispatch)
