"""API errors as the real server sends them: ``kind: Status`` with code, reason and details."""

from __future__ import annotations

from typing import Any


def status(
    code: int,
    reason: str,
    message: str,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 300 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        out["details"] = details
    return out


def success(details: dict[str, Any]) -> dict[str, Any]:
    """What a DELETE that removed the object answers."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _details(name: str, group: str, plural: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": plural}
    if group:
        d["group"] = group
    return d


def _what(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


class ApiError(Exception):
    """An error answer; ``body`` is the Status object, ``headers`` any extra headers."""

    def __init__(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("message", ""))
        self.body = body
        self.code: int = body["code"]
        self.headers = headers or {}

    @classmethod
    def not_found(cls, group: str, plural: str, name: str) -> ApiError:
        what = _what(group, plural)
        msg = (
            f'{what} "{name}" not found'
            if name
            else "the server could not find the requested resource"
        )
        return cls(status(404, "NotFound", msg, _details(name, group, plural)))

    @classmethod
    def no_route(cls) -> ApiError:
        return cls(status(404, "NotFound", "the server could not find the requested resource", {}))

    @classmethod
    def already_exists(cls, group: str, plural: str, name: str) -> ApiError:
        msg = f'{_what(group, plural)} "{name}" already exists'
        return cls(status(409, "AlreadyExists", msg, _details(name, group, plural)))

    @classmethod
    def conflict(cls, group: str, plural: str, name: str, why: str) -> ApiError:
        msg = f'Operation cannot be fulfilled on {_what(group, plural)} "{name}": {why}'
        return cls(status(409, "Conflict", msg, _details(name, group, plural)))

    @classmethod
    def stale(cls, group: str, plural: str, name: str) -> ApiError:
        return cls.conflict(
            group,
            plural,
            name,
            "the object has been modified; please apply your changes to the latest version "
            "and try again",
        )

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(status(400, "BadRequest", message))

    @classmethod
    def invalid(
        cls, message: str, group: str = "", kind: str = "", name: str = "", field: str = ""
    ) -> ApiError:
        details: dict[str, Any] = {"name": name, "kind": kind}
        if group:
            details["group"] = group
        if field:
            details["causes"] = [
                {"reason": "FieldValueInvalid", "message": message, "field": field}
            ]
        what = f'{kind}.{group} "{name}"' if group else f'{kind} "{name}"'
        full = f"{what} is invalid: {field + ': ' if field else ''}{message}" if kind else message
        return cls(status(422, "Invalid", full, details))

    @classmethod
    def expired(cls, message: str) -> ApiError:
        return cls(status(410, "Expired", message))

    @classmethod
    def method_not_allowed(cls) -> ApiError:
        return cls(
            status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        )

    @classmethod
    def unsupported_media(cls, content_type: str) -> ApiError:
        return cls(
            status(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json, application/yaml, application/json-patch+json, "
                "application/merge-patch+json, application/strategic-merge-patch+json; "
                f'got "{content_type}"',
            )
        )

    @classmethod
    def not_acceptable(cls) -> ApiError:
        return cls(
            status(
                406,
                "NotAcceptable",
                "only the following media types are accepted: application/json, application/yaml",
            )
        )

    @classmethod
    def unauthorized(cls) -> ApiError:
        return cls(status(401, "Unauthorized", "Unauthorized"))

    @classmethod
    def internal(cls, message: str) -> ApiError:
        return cls(
            status(
                500,
                "InternalError",
                f"Internal error occurred: {message}",
                {"causes": [{"message": message}]},
            )
        )

    @classmethod
    def timeout(cls, message: str) -> ApiError:
        return cls(status(504, "Timeout", message))
