"""The errors every operation of /api/v1 may answer, written into the OpenAPI document so that a
client generated from it knows them: problem+json (RFC 9457) for each, ``Retry-After`` on 429."""

from ninja import NinjaAPI

PROBLEM = {
    "type": "object",
    "description": "An error (RFC 9457): detail is a sentence for a person.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "With 422: each field that was not accepted, and why.",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
        "current_version": {
            "type": "integer",
            "description": "With a 409 for a stale expected_version: the version now.",
        },
        "retry_after": {"type": "integer", "description": "With 429: seconds to wait."},
    },
    "required": ["type", "title", "status", "detail"],
}
EVERY_OPERATION = {
    "401": "No token, or one that is unknown, revoked or expired, or its account is deactivated.",
    "403": "The token's user lacks the permission.",
    "404": "The object the path names does not exist.",
    "422": "A parameter or body field was not accepted.",
    "429": "Past the token's request rate (API_RATE_LIMIT); see Retry-After.",
}
WRITES = {
    "400": "The body is not valid JSON.",
    "409": "Refused in this state, or expected_version is stale (current_version says the "
    "version now).",
}


class DocumentedAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        document = super().get_openapi_schema(**kwargs)
        document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM
        for operations in document["paths"].values():
            for method, operation in operations.items():
                errors = {**EVERY_OPERATION, **(WRITES if method == "post" else {})}
                for status, description in errors.items():
                    operation["responses"].setdefault(status, _problem(status, description))
        return document


def _problem(status: str, description: str) -> dict:
    answer = {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    if status == "429":
        answer["headers"] = {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        }
    if status == "401":
        answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return answer
