"""Values resolved at synthesis, after every construct that contributes to them has been added."""

from __future__ import annotations

import aws_cdk as cdk
import jsii


@jsii.implements(cdk.IStableListProducer)
class _ListProducer:
    def __init__(self, items: list[str]) -> None:
        self._items = items

    def produce(self) -> list[str]:
        return list(self._items)


def lazy_list(items: list[str]) -> list[str]:
    """A list token that resolves to ``items`` as the list is at synthesis (append to it until then)."""
    return cdk.Lazy.list(_ListProducer(items))
