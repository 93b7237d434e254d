"""moto's CloudFormation: custom resources answer on 127.0.0.1, a stack's resources are created once, and the
helpers the service modules use to convert tag shapes and to teach it resource types it lacks.

moto creates a stack's resources lazily, on first lookup. A custom resource's answer arrives on another
thread (moto invokes its function in one) and checks the stack's readiness by looking every resource up,
while the creating thread may still be making them: both threads then create the same parameter, table or
queue, and the second one fails (ParameterAlreadyExists). One lock around the lookup makes it a single
creation, as in AWS.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from moto import settings
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.common_models import CloudFormationModel

# (properties, account, region, logical name) -> (physical id, {attribute: value})
Create = Callable[[dict[str, Any], str, str, str], tuple[str, dict[str, str]]]
# (physical id, new properties, account, region, logical name) -> (physical id, {attribute: value})
Update = Callable[[str, dict[str, Any], str, str, str], tuple[str, dict[str, str]]]
# (physical id, account, region)
Delete = Callable[[str, str, str], None]
_REGISTERED_MODELS: list[type] = []


_CREATION = threading.RLock()  # reentrant: creating one resource looks up the ones it references


def install(port: int) -> None:
    # Custom resources get a ResponseURL on host.docker.internal (where moto's Docker Lambdas would run).
    settings.moto_server_host = lambda: "http://127.0.0.1"
    os.environ["MOTO_PORT"] = str(port)
    lookup = parsing.ResourceMap.__getitem__

    def lookup_once(self: parsing.ResourceMap, key: str) -> Any:
        with _CREATION:
            return lookup(self, key)

    parsing.ResourceMap.__getitem__ = lookup_once


def answer_custom_resource(event: dict[str, Any], status: str, reason: str) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason,
            "PhysicalResourceId": event.get("PhysicalResourceId") or event["LogicalResourceId"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": {},
        }
    ).encode()
    # As CloudFormation's pre-signed URL expects: no content type (moto reads a form-encoded body as a query).
    request = urllib.request.Request(  # noqa: S310 - the emulator's own 127.0.0.1 URL
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - 127.0.0.1 only
        pass


def convert_tags(model: Any, convert: Callable[[Any], Any]) -> None:
    """Give ``model``'s CloudFormation create the tags in the shape its service backend takes."""
    create = model.create_from_cloudformation_json.__func__

    def create_with_tags(cls: Any, /, name: str, cfn: dict[str, Any], account: str, region: str, **kw: Any) -> Any:
        properties = cfn.get("Properties", {})
        if properties.get("Tags"):
            properties["Tags"] = convert(properties["Tags"])
        return create(cls, name, cfn, account, region, **kw)

    model.create_from_cloudformation_json = classmethod(create_with_tags)


def register_model(
    cfn_type: str, service: str, create: Create, update: Update | None = None, delete: Delete | None = None
) -> None:
    """Teach moto's CloudFormation one resource type: ``create`` makes it through moto's own service backend;
    ``update`` (a stack update that changes its template) and ``delete`` (a stack deletion or a resource removed
    by an update) when given, else moto leaves the resource as it is."""

    class Model(CloudFormationModel):  # type: ignore[misc]
        __module__ = f"moto.{service}.models"  # moto's metaclass files a model under the service of its module

        def __init__(self, physical_id: str, attributes: dict[str, str]) -> None:
            self._physical_id = physical_id
            self._attributes = attributes

        @staticmethod
        def cloudformation_type() -> str:
            return cfn_type

        @property
        def physical_resource_id(self) -> str:
            return self._physical_id

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return True

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name in self._attributes:
                return self._attributes[attribute_name]
            raise UnformattedGetAttTemplateException()

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:
            return cls(*create(cloudformation_json.get("Properties", {}), account_id, region_name, resource_name))

        def delete(self, account_id: str, region_name: str) -> None:  # what moto's stack deletion calls
            if delete is not None:
                delete(self._physical_id, account_id, region_name)

    if update is not None:
        change = update

        def update_from_cloudformation_json(  # moto passes each argument by name
            cls: type[Model], *, original_resource: Model, new_resource_name: str, cloudformation_json: Any,
            account_id: str, region_name: str,
        ) -> Model:  # fmt: skip
            properties = cloudformation_json.get("Properties", {})
            return cls(*change(original_resource.physical_resource_id, properties, account_id, region_name,
                               new_resource_name))  # fmt: skip

        # moto updates only a model whose update is no longer the abstract one.
        Model.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)

    # moto finds models through __subclasses__(), which holds them weakly: keep each one alive.
    _REGISTERED_MODELS.append(Model)
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
