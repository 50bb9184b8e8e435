"""The SCIM 2.0 protocol's constants (RFC 7643/7644): schemas, media type, list responses."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from synctree._util.options import one_of

__all__ = ["HEADERS", "PATCH_OP", "SCHEMAS", "Resource", "list_of_resources", "resource_kind"]

Resource: TypeAlias = Literal["Users", "Groups"]

SCHEMAS = {
    "Users": "urn:ietf:params:scim:schemas:core:2.0:User",
    "Groups": "urn:ietf:params:scim:schemas:core:2.0:Group",
}
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEDIA = "application/scim+json"
HEADERS = {"Content-Type": MEDIA, "Accept": f"{MEDIA}, application/json"}


def resource_kind(resource: str) -> Resource:
    """``resource`` checked: ``'Users'`` or ``'Groups'``."""
    one_of(resource, "resource", SCHEMAS)
    return resource  # type: ignore[return-value]  # checked just above


def list_of_resources(body: Any) -> Any:
    """The ``Resources`` of a ListResponse (absent when ``totalResults`` is 0)."""
    if not isinstance(body, dict):
        raise ValueError(f"not a SCIM ListResponse: a {type(body).__name__}")
    if "Resources" not in body:
        if body.get("totalResults") == 0:
            return []
        raise ValueError("no 'Resources' in the ListResponse")
    return body["Resources"]
