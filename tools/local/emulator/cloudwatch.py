"""CloudWatch: `AWS::CloudWatch::Alarm`, which moto's CloudFormation does not model (it models dashboards), created
in moto's backend as PutMetricAlarm would: one metric, or metric math over several (the monitoring stack's alarms).
Nothing evaluates them locally; they can be listed and described, as the read-back does.

``put_metric_data``: CloudWatch Logs' part for the functions the emulator runs (tools/local/emf.py): their EMF lines
as PutMetricData, in this process."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends

from tools.local.emulator.cloudformation import register_model


def _query(query: dict[str, Any]) -> MetricDataQuery:
    """One entry of an alarm's ``Metrics``: an expression, or a metric with its statistic and period."""
    stat = query.get("MetricStat")
    metric_stat = None
    if stat is not None:
        metric = stat["Metric"]
        dimensions = [Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])]
        metric_stat = MetricStat(Metric(metric["MetricName"], metric["Namespace"], dimensions), str(stat["Period"]),
                                 stat["Stat"], stat.get("Unit"))  # fmt: skip
    return MetricDataQuery(query_id=query["Id"], label=query.get("Label", ""), period=query.get("Period"),
                           return_data=query.get("ReturnData", True), expression=query.get("Expression"),
                           metric_stat=metric_stat)  # fmt: skip


def _alarm(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    backend = cloudwatch_backends[account][region]
    alarm_name = properties.get("AlarmName") or name
    queries = properties.get("Metrics")
    alarm = backend.put_metric_alarm(
        name=alarm_name,
        namespace=properties.get("Namespace"),
        metric_name=properties.get("MetricName"),
        metric_data_queries=[_query(query) for query in queries] if queries else None,
        comparison_operator=properties["ComparisonOperator"],
        evaluation_periods=int(properties["EvaluationPeriods"]),
        datapoints_to_alarm=int(properties["DatapointsToAlarm"]) if "DatapointsToAlarm" in properties else None,
        period=properties.get("Period"),
        threshold=float(properties["Threshold"]),
        statistic=properties.get("Statistic"),
        extended_statistic=properties.get("ExtendedStatistic"),
        description=properties.get("AlarmDescription"),
        dimensions=properties.get("Dimensions", []),
        alarm_actions=properties.get("AlarmActions", []),
        ok_actions=properties.get("OKActions", []),
        insufficient_data_actions=properties.get("InsufficientDataActions", []),
        treat_missing_data=properties.get("TreatMissingData"),
    )
    return alarm_name, {"Arn": alarm.alarm_arn}


def put_metric_data(account: str, region: str) -> Callable[[str, list[dict[str, Any]]], None]:
    """PutMetricData of the account's CloudWatch in ``region``, straight to the backend."""

    def put(namespace: str, data: list[dict[str, Any]]) -> None:
        # Naive UTC times, as moto's request parsing gives them (its queries compare with those).
        naive = [{**datum, "Timestamp": datum["Timestamp"].astimezone(datetime.UTC).replace(tzinfo=None)}
                 if isinstance(datum.get("Timestamp"), datetime.datetime) else datum for datum in data]  # fmt: skip
        cloudwatch_backends[account][region].put_metric_data(namespace, naive)

    return put


def install() -> None:
    register_model("AWS::CloudWatch::Alarm", "cloudwatch", _alarm)
