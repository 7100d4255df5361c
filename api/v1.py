"""/api/v1: the token API. Its OpenAPI 3.1 document (``/api/v1/schema``) and browsable page
(``/api/v1/docs``) need no token: they hold no data. Everything else needs a bearer token
(api/auth.py); every error is problem+json (api/problems.py)."""

from . import problems
from .auth import TokenAuth, acting_through_token
from .openapi import DocumentedAPI
from .routes import audit, environments, phases, preview, requests
from .schemas import WhoAmI

api = DocumentedAPI(
    title="Rollout Control API",
    version="1",
    description="Pipelines and the command line act here with the same rules as a click: "
    "the same permission checks, the two-person rule and the audit trail. Authenticate with "
    "`Authorization: Bearer rc_…` (a personal token from Your settings → API tokens, or a "
    "service token from an admin). Errors are application/problem+json (RFC 9457).",
    urls_namespace="api-v1",
    auth=TokenAuth(),
    openapi_url="/schema",
    docs_url="/docs",
)
api.add_decorator(acting_through_token)
problems.install(api)


@api.get("/whoami", response=WhoAmI, summary="Who this token acts as", tags=["tokens"])
def whoami(request):
    token = request.api_token
    user = request.user
    return {
        "user": user.get_username(),
        "token": {
            "name": token.name,
            "id": token.public_id,
            "kind": token.kind,
            "expires_at": token.expires_at,
        },
        "roles": sorted(user.groups.values_list("name", flat=True)),
        "permissions": sorted(user.get_all_permissions()),
    }


api.add_router("", environments.router)
api.add_router("", requests.router)
api.add_router("", preview.router)
api.add_router("", phases.router)
api.add_router("", audit.router)
