"""Google's discovery documents as a request validator: routes, parameters, bodies.

The documents are the ones ``google-api-python-client`` ships
(``googleapiclient/discovery_cache/documents/``), read as data: the package is a test
dependency and nothing of it is imported but its location.  Every request the emulator
answers is first matched to a method of a document and checked the way Google checks
it: unknown methods are 404, unknown or mistyped query parameters and body fields 400,
in Google's JSON error format.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["API", "ApiError", "Method", "load_api"]


class ApiError(Exception):
    """An error answer: ``status``, ``message``, Google's ``reason`` and ``status_name``."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = "invalid",
        status: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = headers
        self.code = code
        self.message = message
        self.reason = reason
        self.status = status or _STATUS.get(code, "UNKNOWN")

    def body(self) -> dict[str, Any]:
        """Google's error body (``error.errors[].reason`` and ``error.status``)."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.reason is not None:
            error["errors"] = [{"message": self.message, "domain": "global", "reason": self.reason}]
        error["status"] = self.status
        return {"error": error}


_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
}


@dataclass(frozen=True)
class Method:
    """One method of a discovery document: ``users.insert`` and how it is called."""

    id: str  # without the API prefix: "users.insert", "courses.students.create"
    http_method: str
    pattern: re.Pattern[str]
    spec: Mapping[str, Any]

    def path_params(self, path: str) -> dict[str, str] | None:
        match = self.pattern.fullmatch(path)
        return None if match is None else {k: v for k, v in match.groupdict().items()}


class API:
    """One Google API as its discovery document describes it."""

    def __init__(self, name: str, doc: Mapping[str, Any]) -> None:
        self.name = name
        self.doc = doc
        self.schemas: Mapping[str, Any] = doc["schemas"]
        self.global_params: Mapping[str, Any] = doc.get("parameters", {})
        self.methods: list[Method] = []
        prefix = "/" + doc.get("servicePath", "")
        for method_id, spec in _walk(doc.get("resources", {})):
            self.methods.append(
                Method(method_id, spec["httpMethod"], _pattern(prefix + spec["path"]), spec)
            )
        # Literal paths before templated ones: ``users/watch`` before ``users/{userKey}``.
        # and catch-alls (``{+name}``) last.
        self.methods.sort(
            key=lambda m: (".+)" in m.pattern.pattern, m.pattern.pattern.count("(?P<"))
        )

    def match(self, http_method: str, path: str) -> tuple[Method, dict[str, str]]:
        """The method a request calls and its path parameters; 404 if none."""
        allowed = False
        for method in self.methods:
            params = method.path_params(path)
            if params is None:
                continue
            if method.http_method == http_method:
                return method, params
            allowed = True
        if allowed:
            raise ApiError(405, f"Method {http_method} not allowed on {path}.", "notAllowed")
        raise ApiError(404, f"The requested URL {path} was not found on this server.", "notFound")

    # -- validation ------------------------------------------------------------------

    def check_query(self, method: Method, query: list[tuple[str, str]]) -> dict[str, Any]:
        """Query parameters by name, typed; 400 for unknown names and wrong types."""
        declared = method.spec.get("parameters", {})
        out: dict[str, Any] = {}
        for name, raw in query:
            spec = declared.get(name) or self.global_params.get(name)
            if spec is None or spec.get("location") == "path":
                raise ApiError(
                    400,
                    f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query '
                    f"parameter. Field '{name}' could not be found in request message.",
                )
            value = _scalar(spec, raw, name)
            if spec.get("repeated"):
                out.setdefault(name, []).append(value)
            else:
                out[name] = value
        for name, spec in declared.items():
            if spec.get("required") and spec.get("location") == "query" and name not in out:
                raise ApiError(400, f"Required parameter: {name}", "required")
        return out

    def check_body(self, method: Method, body: Any) -> None:
        """The request body against the method's request schema; 400 where it differs."""
        ref = method.spec.get("request", {}).get("$ref")
        if ref is None:
            return
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received. Expected an object.", "parseError")
        self._check_value({"$ref": ref}, body, _lower_first(ref))

    def _check_value(self, spec: Mapping[str, Any], value: Any, where: str) -> None:
        if "$ref" in spec:
            spec = self.schemas[spec["$ref"]]
        kind = spec.get("type")
        if kind == "any" or kind is None and "properties" not in spec:
            return
        if kind == "object" or "properties" in spec:
            if not isinstance(value, dict):
                raise _bad_value(where, value, "object")
            properties = spec.get("properties", {})
            extra = spec.get("additionalProperties")
            for name, item in value.items():
                sub = properties.get(name)
                if sub is None and extra is None:
                    raise ApiError(
                        400,
                        f'Invalid JSON payload received. Unknown name "{name}" at '
                        f"'{where}': Cannot find field.",
                    )
                if item is not None:
                    self._check_value(sub or extra, item, f"{where}.{name}")
            return
        if kind == "array":
            if not isinstance(value, list):
                raise _bad_value(where, value, "list")
            for index, item in enumerate(value):
                self._check_value(spec.get("items", {}), item, f"{where}[{index}]")
            return
        if kind == "string":
            if not isinstance(value, str):
                raise _bad_value(where, value, "TYPE_STRING")
            if "enum" in spec and value not in spec["enum"]:
                raise ApiError(
                    400,
                    f"Invalid value at '{where}' (type.googleapis.com/{where}), \"{value}\"",
                )
            if spec.get("format") in ("int64", "uint64") and not value.lstrip("-").isdigit():
                raise _bad_value(where, value, "TYPE_INT64")
            return
        if kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise _bad_value(where, value, "TYPE_INT32")
            return
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _bad_value(where, value, "TYPE_DOUBLE")
            return
        if kind == "boolean" and not isinstance(value, bool):
            raise _bad_value(where, value, "TYPE_BOOL")


def _bad_value(where: str, value: Any, expected: str) -> ApiError:
    return ApiError(400, f"Invalid value at '{where}' ({expected}), {json.dumps(value)}", "invalid")


def _scalar(spec: Mapping[str, Any], raw: str, name: str) -> Any:
    kind = spec.get("type")
    if kind == "integer":
        try:
            value: Any = int(raw)
        except ValueError:
            raise ApiError(
                400, f"Invalid value at '{name}' (TYPE_INT32), \"{raw}\"", "invalid"
            ) from None
        low, high = spec.get("minimum"), spec.get("maximum")
        if (low is not None and value < int(low)) or (high is not None and value > int(high)):
            raise ApiError(400, f"Invalid value '{raw}'. Values must be within the range: "
                           f"[{low}, {high}]", "invalid")  # fmt: skip
        return value
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise ApiError(400, f"Invalid value at '{name}' (TYPE_BOOL), \"{raw}\"", "invalid")
        return raw == "true"
    if "enum" in spec and raw not in spec["enum"]:
        raise ApiError(400, f"Invalid value at '{name}', \"{raw}\"", "invalid")
    return raw


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _walk(resources: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, resource in resources.items():
        for method_name, spec in resource.get("methods", {}).items():
            yield f"{prefix}{name}.{method_name}", spec
        yield from _walk(resource.get("resources", {}), f"{prefix}{name}.")


def _pattern(template: str) -> re.Pattern[str]:
    """``/v1/courses/{courseId}`` as a regex; ``{+x}`` (reserved expansion) spans slashes."""
    out, at = [], 0
    for match in re.finditer(r"\{(\+?)([A-Za-z_][A-Za-z0-9_]*)\}", template):
        out.append(re.escape(template[at : match.start()]))
        out.append(f"(?P<{match[2]}>.+)" if match[1] else f"(?P<{match[2]}>[^/]+)")
        at = match.end()
    out.append(re.escape(template[at:]))
    return re.compile("".join(out))


def documents_folder() -> Path:
    """Where google-api-python-client keeps its discovery documents."""
    spec = importlib.util.find_spec("googleapiclient")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the Google emulator reads the discovery documents of google-api-python-client: "
            "pip install google-api-python-client (it is in the test extra)"
        )
    return Path(spec.origin).parent / "discovery_cache" / "documents"


def load_api(name: str) -> API:
    """``load_api('admin.directory_v1')`` or ``load_api('classroom.v1')``."""
    doc = json.loads((documents_folder() / f"{name}.json").read_text(encoding="utf-8"))
    return API(name, doc)
