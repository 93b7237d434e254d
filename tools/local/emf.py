"""CloudWatch Logs' metric extraction for the local functions: each line a function writes that is an embedded metric
format (EMF) document becomes PutMetricData in the emulator's CloudWatch, as CloudWatch Logs does in AWS
(AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).

One datum per metric per dimension set of each ``_aws.CloudWatchMetrics`` directive, with the metric's unit, the
document's ``_aws.Timestamp`` and the dimension values from the document's top-level keys. A directive CloudWatch
would reject (a dimension or metric value missing or not a number) is skipped. Only lines that start with ``{`` and
mention ``"_aws"`` are parsed; nothing that fails here reaches the function (it is logged and the line dropped).

Standard library only, like tools/local/runtime.py: the emulator (tools/local/emulator/awslambda.py) uses it too.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

LOG = logging.getLogger(__name__)
# PutMetricData takes at most 1,000 data in one call.
MAX_DATA = 1000
# PutMetricData's Namespace and MetricData (the emulator's CloudWatch, over the API or in its own process).
Put = Callable[[str, list[dict[str, Any]]], None]


def metric_data(document: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(namespace, PutMetricData datum) for each metric of each dimension set of an EMF document; nothing for a
    document that is not EMF."""
    if not isinstance(document, dict) or not isinstance(document.get("_aws"), dict):
        return
    meta = document["_aws"]
    timestamp = meta.get("Timestamp")
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        return
    when = datetime.datetime.fromtimestamp(timestamp / 1000, tz=datetime.UTC)
    for directive in meta.get("CloudWatchMetrics") or []:
        try:
            namespace = directive["Namespace"]
            dimension_sets = [[{"Name": name, "Value": _dimension(document[name])} for name in names]
                              for names in directive.get("Dimensions") or [[]]]  # fmt: skip
            metrics = [(m["Name"], m.get("Unit", "None"), _values(document[m["Name"]])) for m in directive["Metrics"]]
        except (KeyError, TypeError, ValueError) as error:
            LOG.warning("EMF directive skipped (%s: %s)", type(error).__name__, error)
            continue
        for dimensions in dimension_sets:
            for name, unit, values in metrics:
                for value in values:
                    yield namespace, {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": unit,
                                      "Timestamp": when}  # fmt: skip


def _dimension(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"dimension value {value!r} is not a string")
    return value


def _values(value: Any) -> list[float]:
    values = value if isinstance(value, list) else [value]
    if not values or any(not isinstance(v, int | float) or isinstance(v, bool) for v in values):
        raise ValueError(f"metric value {value!r} is not a number")
    return [float(v) for v in values]


class EmfForwarder:
    """Called with each line a function writes: the EMF ones go to ``put`` (PutMetricData of the emulator)."""

    def __init__(self, put: Put) -> None:
        self._put = put

    def __call__(self, line: str) -> None:
        if not line.startswith("{") or '"_aws"' not in line:
            return
        try:
            by_namespace: dict[str, list[dict[str, Any]]] = {}
            for namespace, datum in metric_data(json.loads(line)):
                by_namespace.setdefault(namespace, []).append(datum)
            for namespace, data in by_namespace.items():
                for start in range(0, len(data), MAX_DATA):
                    self._put(namespace, data[start : start + MAX_DATA])
        except Exception as error:  # never the function's problem: CloudWatch Logs would just not extract it
            LOG.warning("EMF line not forwarded (%s: %s)", type(error).__name__, error)


def through_api(cloudwatch: Any) -> Put:
    """PutMetricData through a boto3 CloudWatch client (one pointed at the emulator)."""

    def put(namespace: str, data: list[dict[str, Any]]) -> None:
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)

    return put
