"""A OneRoster 1.1 / 1.2 REST rostering server over a CSV export, for the API reader's tests
(run it with ``tests.http_server.serve``).

``OneRosterServer(export)`` reads a bulk CSV export (a folder or a zip) with the standard
library and serves it the way the REST binding does, written here independently of
synctree's code: ``GET /ims/oneroster/v1p1/<collection>`` (1.1) or
``/ims/oneroster/rostering/v1p2/<collection>`` (1.2), each answering
``{"<collection>": [...]}`` in ``sourcedId`` order, with ``limit``/``offset`` paging (a
server cap, ``max_limit``) and ``X-Total-Count``.  References become GUIDRefs
(``orgSourcedIds`` -> ``orgs: [{href, sourcedId, type}]``), multi-value fields lists,
``userIds`` ``[{type, identifier}]``; in 1.2 a user carries its ``roles`` (roles.csv) and
``userProfiles``, and booleans are JSON booleans.

Credentials: ``auth="oauth2"`` wants a bearer token from ``POST /oauth/token`` (client
credentials, HTTP Basic); ``auth="oauth1"`` wants requests signed with OAuth 1.0a,
checked by oauthlib.  ``drop(collection, n)`` makes the listing leave out its last ``n``
records while ``X-Total-Count`` still counts them: a short read.
"""

from __future__ import annotations

import base64
import csv
import io
import secrets
import urllib.parse
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.auth_server import verify_oauth1

__all__ = ["PREFIXES", "OneRosterServer", "read_export"]

PREFIXES = {"1.1": "/ims/oneroster/v1p1", "1.2": "/ims/oneroster/rostering/v1p2"}
FILES = {
    "orgs": "orgs.csv",
    "academicSessions": "academicSessions.csv",
    "courses": "courses.csv",
    "classes": "classes.csv",
    "users": "users.csv",
    "enrollments": "enrollments.csv",
    "demographics": "demographics.csv",
}
#: Misspellings and 1.0 names seen in real exports -> the specification's names: a
#: service answers with those, whatever its CSV files say.
FIXES = {
    "prefferedGivenName": "preferredGivenName",
    "prefferedMiddleName": "preferredMiddleName",
    "prefferedFamilyName": "preferredFamilyName",
    "dataLastModified": "dateLastModified",
}
FILE_FIXES = {
    "courses.csv": {"schoolYearId": "schoolYearSourcedId", "grade": "grades"},
    "classes.csv": {"grade": "grades"},
    "users.csv": {"userId": "userIds", "agents": "agentSourcedIds"},
}
#: CSV reference columns -> (JSON field, GUIDRef type).
ONE = {
    "parentSourcedId": ("parent", "org"),
    "orgSourcedId": ("org", "org"),
    "schoolYearSourcedId": ("schoolYear", "academicSession"),
    "courseSourcedId": ("course", "course"),
    "schoolSourcedId": ("school", "org"),
    "classSourcedId": ("class", "class"),
    "userSourcedId": ("user", "user"),
    "primaryOrgSourcedId": ("primaryOrg", "org"),
    "userProfileSourcedId": ("userProfile", "userProfile"),
}
MANY = {
    "orgSourcedIds": ("orgs", "org"),
    "termSourcedIds": ("terms", "academicSession"),
    "agentSourcedIds": ("agents", "user"),
    "resourceSourcedIds": ("resources", "resource"),
}
LISTS = {"grades", "subjects", "subjectCodes", "periods"}
BOOLEANS = {"enabledUser", "primary"}
RENAMES_12 = {
    "preferredGivenName": "preferredFirstName",
    "preferredFamilyName": "preferredLastName",
}


def read_export(export: Path) -> dict[str, list[dict[str, str]]]:
    """file name (lower case) -> its rows, of the files the manifest marks ``bulk`` (or
    ``delta``: a service lists what it has)."""
    texts: dict[str, str] = {}
    if export.suffix == ".zip":
        with zipfile.ZipFile(export) as archive:
            for name in archive.namelist():
                if name.endswith(".csv"):
                    texts[name.rsplit("/", 1)[-1].lower()] = archive.read(name).decode("utf-8-sig")
    else:
        for path in export.glob("*.csv"):
            texts[path.name.lower()] = path.read_text(encoding="utf-8-sig")
    files: dict[str, list[dict[str, str]]] = {}
    for name, text in texts.items():
        rows = []
        fixes = {**FIXES, **FILE_FIXES.get(name, {})}
        for row in csv.DictReader(io.StringIO(text)):
            rows.append(
                {fixes.get(k, k): (v or "").strip() for k, v in row.items() if k and k.strip()}
            )
        files[name] = rows
    manifest = {row["propertyName"]: row["value"] for row in files.get("manifest.csv", [])}
    bulk = {
        f"{key.removeprefix('file.').lower()}.csv"
        for key, value in manifest.items()
        if key.startswith("file.") and value in ("bulk", "delta")
    }
    files = {name: rows for name, rows in files.items() if name in bulk}
    files["manifest.csv"] = [{"propertyName": k, "value": v} for k, v in manifest.items()]
    return files


def _ref(value: str, kind: str, prefix: str) -> dict[str, str]:
    plural = "academicSessions" if kind == "academicSession" else f"{kind}s"
    return {"href": f"{prefix}/{plural}/{value}", "sourcedId": value, "type": kind}


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _user_id(text: str) -> dict[str, str]:
    """``{LDAP:12}`` as ``{"type": "LDAP", "identifier": "12"}``; a bare value has no type."""
    if text.startswith("{") and text.endswith("}") and ":" in text:
        kind, _, identifier = text[1:-1].partition(":")
        return {"type": kind, "identifier": identifier}
    return {"type": "", "identifier": text}


def _boolean(value: str) -> bool | str:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    return value


def to_json(row: dict[str, str], version: str, prefix: str) -> dict[str, Any]:
    """One CSV row as the REST binding's JSON object."""
    out: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for column, value in row.items():
        if column in ONE:
            field, kind = ONE[column]
            if value:
                out[field] = _ref(value, kind, prefix)
        elif column in MANY:
            field, kind = MANY[column]
            out[field] = [_ref(v, kind, prefix) for v in _split(value)]
        elif column in LISTS:
            out[column] = _split(value)
        elif column == "userIds":
            out["userIds"] = [_user_id(part) for part in _split(value)]
        elif column.startswith("metadata.") or column.startswith("ext_"):
            metadata[column.removeprefix("metadata.")] = value
        elif version == "1.2" and column in BOOLEANS:
            out[column] = _boolean(value) if value else None
        elif version == "1.2" and column in RENAMES_12:
            out[RENAMES_12[column]] = value
        else:
            out[column] = value
    if metadata:
        out["metadata"] = metadata
    return out


class OneRosterServer:
    """The app, over one export; ``calls`` counts requests by collection."""

    def __init__(
        self,
        export: Path,
        *,
        auth: Literal["oauth2", "oauth1"] | None = None,
        client_id: str = "or-client",
        client_secret: str = "or-secret/42",
        consumer_key: str = "or-consumer",
        consumer_secret: str = "or-consumer-secret",
        max_limit: int | None = None,
    ) -> None:
        files = read_export(export)
        manifest = {row["propertyName"]: row["value"] for row in files["manifest.csv"]}
        self.version = manifest.get("oneroster.version", "1.1")
        self.prefix = PREFIXES[self.version]
        self.auth = auth
        self.client_id = client_id
        self.client_secret = client_secret
        self.consumers = {consumer_key: consumer_secret}
        self.max_limit = max_limit
        self.tokens: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.requests: list[dict[str, str]] = []  # query parameters, per listing request
        self.hidden: dict[str, int] = {}
        self.send_total = True  # False: no X-Total-Count header
        self.collections = self._collections(files)
        self.app = Starlette(
            routes=[
                Route("/oauth/token", self.token, methods=["POST"]),
                Route(self.prefix + "/{collection}", self.listing, methods=["GET"]),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def drop(self, collection: str, count: int) -> None:
        """Leave the last ``count`` records out of ``collection``, still counting them."""
        self.hidden[collection] = count

    def _collections(self, files: dict[str, list[dict[str, str]]]) -> dict[str, list[Any]]:
        prefix = self.prefix
        out: dict[str, list[Any]] = {}
        for collection, file in FILES.items():
            rows = files.get(file.lower())
            if rows is not None:
                out[collection] = [to_json(row, self.version, prefix) for row in rows]
        if self.version == "1.2" and "users" in out:
            roles: dict[str, list[Any]] = defaultdict(list)
            for row in files.get("roles.csv", []):
                if row.get("status", "").lower() == "tobedeleted":
                    continue
                role = {
                    "roleType": row.get("roleType", ""),
                    "role": row.get("role", ""),
                    "org": _ref(row.get("orgSourcedId", ""), "org", prefix),
                    "beginDate": row.get("beginDate") or None,
                    "endDate": row.get("endDate") or None,
                }
                if row.get("userProfileSourcedId"):
                    role["userProfile"] = row["userProfileSourcedId"]
                roles[row.get("userSourcedId", "")].append(role)
            profiles: dict[str, list[Any]] = defaultdict(list)
            for row in files.get("userprofiles.csv", []):
                credential = {
                    "type": row.get("credentialType", ""),
                    "username": row.get("username", ""),
                }
                if row.get("password"):
                    credential["password"] = row["password"]
                profiles[row.get("userSourcedId", "")].append(
                    {
                        "profileId": row.get("sourcedId", ""),
                        "profileType": row.get("profileType", ""),
                        "vendorId": row.get("vendorId", ""),
                        "applicationId": row.get("applicationId", ""),
                        "description": row.get("description", ""),
                        "credentials": [credential],
                    }
                )
            for user in out["users"]:
                user["roles"] = roles.get(user["sourcedId"], [])
                if "userprofiles.csv" in files:  # the service keeps profiles
                    user["userProfiles"] = profiles.get(user["sourcedId"], [])
        for records in out.values():
            records.sort(key=lambda record: record["sourcedId"])
        return out

    # -- credentials ----------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        self.calls["token"] += 1
        header = request.headers.get("authorization", "")
        pair = base64.b64decode(header.removeprefix("Basic ")).decode() if header else ":"
        client_id, _, secret = (urllib.parse.unquote_plus(p) for p in pair.partition(":"))
        if (client_id, secret) != (self.client_id, self.client_secret):  # RFC 6749 2.3.1
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = secrets.token_hex(8)
        self.tokens.add(token)
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": 3600})

    async def _refused(self, request: Request) -> str | None:
        if self.auth == "oauth2":
            header = request.headers.get("authorization", "")
            return None if header.removeprefix("Bearer ") in self.tokens else "bad token"
        if self.auth == "oauth1":
            body = await request.body()
            return verify_oauth1("GET", str(request.url), request.headers, body, self.consumers)
        return None

    # -- the listings ---------------------------------------------------------------------

    async def listing(self, request: Request) -> Response:
        collection = request.path_params["collection"]
        self.calls[collection] += 1
        self.requests.append(dict(request.query_params))
        problem = await self._refused(request)
        if problem is not None:
            return JSONResponse({"imsx_description": problem}, status_code=401)
        if collection not in self.collections:
            return JSONResponse({"imsx_description": "unknown collection"}, status_code=404)
        records = self.collections[collection]
        total = len(records)
        listed = records[: total - self.hidden.get(collection, 0)]
        limit = int(request.query_params.get("limit", "100"))
        if self.max_limit is not None:
            limit = min(limit, self.max_limit)
        offset = int(request.query_params.get("offset", "0"))
        page = listed[offset : offset + limit]
        headers = {"X-Total-Count": str(total)} if self.send_total else {}
        return JSONResponse({collection: page}, headers=headers)
