"""The OpenAPI document is the contract an outside client is written against: readable without a
token, valid OpenAPI 3.1, and naming every route under /api/v1 with its methods."""

import re

from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

# Served beside the routes, not routes of the API: the document, its page, ninja's root.
NOT_ROUTES = {"schema", "docs", ""}


def _api_routes() -> set[str]:
    """Every URL pattern under api/v1/ of the site's URLconf, as an OpenAPI path."""

    def walk(resolver, prefix):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
                yield route.removeprefix("api/v1/")

    return {
        "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        for route in walk(get_resolver(), "")
        if route not in NOT_ROUTES
    }


def test_the_document_needs_no_token_and_validates(api, db):
    response = api().get("/schema")
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["openapi"].startswith("3.1")
    validate(document)
    assert document["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"


def test_every_route_is_in_the_document(api, db):
    document = api().get("/schema").json()
    routes = _api_routes()
    assert len(routes) > 20  # the walk found the API, not an empty list
    assert routes == set(document["paths"])


def test_every_operation_says_its_errors(api, db):
    document = api().get("/schema").json()
    missing = [
        f"{method.upper()} {path}: {status}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status in ("401", "403", "429")
        if status not in operation["responses"]
    ]
    assert not missing, missing


def test_the_browsable_page_needs_no_token_and_loads_only_our_own_scripts(api, db):
    response = api().get("/docs")
    assert response.status_code == 200
    page = response.text
    assert "swagger-ui" in page
    assert not re.search(r'src="https?://', page), "the docs page loads a script from elsewhere"


def test_a_path_that_names_no_route_answers_as_the_api_does(api, db):
    for method, path in (("GET", "/no-such-thing"), ("POST", "/environments/..%2f..%2fetc")):
        response = api().request(method, path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "There is no API route" in response.json()["detail"]
