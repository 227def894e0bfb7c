"""The API's OpenAPI document and its offline documentation pages.

FastAPI builds the document from the routes (each declares its 200 answer with a pydantic
model from its domain's ``schemas.py``); :func:`build_openapi` then completes what a route
does not say itself, from the route table:

- the error statuses an operation can answer, each with the ``{"error": {"code", "message"}}``
  envelope (:class:`its.errors.ErrorEnvelope`) instead of FastAPI's ``{"detail": [...]}``:
  422 everywhere (parameters, and NUL bytes refused by the app's middleware), 401 and 503 on
  every route with an audience, 403 on dispatcher/admin routes, 429 on rate-limited
  (public/app) routes, 404 on routes with a path parameter, 400/413 on routes with a body;
- the security schemes of the audiences (:data:`its.auth.SECURITY_SCHEMES`) and each
  operation's requirement (:func:`its.auth.audience_security`).

Swagger UI (``/docs``) and ReDoc (``/redoc``) load their scripts and styles from the
``fastapi-offline`` package's files, served under ``/docs/assets`` (no CDN: the pages work
without Internet access); their Content-Security-Policy keeps the browser on this origin.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse

from its.app.routes import iter_api_routes, route_audience
from its.auth import SECURITY_SCHEMES, audience_security
from its.errors import ERROR_DESCRIPTIONS, ErrorEnvelope

__all__ = ["DOCS_ASSETS", "DOCS_CSP", "REF", "build_openapi", "error_statuses", "install_docs"]

log = logging.getLogger(__name__)

REF = "#/components/schemas/"
DOCS_ASSETS = "/docs/assets"
_ENVELOPE = {"$ref": REF + "ErrorEnvelope"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
#: The documentation pages may load nothing from another host (ReDoc would fetch its vendor's logo).
DOCS_CSP = "default-src 'self' 'unsafe-inline' data: blob:; frame-ancestors 'none'"
_WWW_AUTHENTICATE = {"WWW-Authenticate": {
    "description": "The credentials this API accepts (RFC 9110 section 11.6.1): `ApiKey` (the `X-API-Key` header) "
                   "and/or `Bearer` (a dispatcher session token).", "schema": {"type": "string"}}}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds until a request is accepted again.",
                                "schema": {"type": "integer", "minimum": 1}}}


def error_statuses(path: str, audience: str | None, has_body: bool) -> list[int]:
    """The error statuses an operation can answer (each rendered as the error envelope).

    Parameters
    ----------
    path : str
        Route template (``{name}`` marks a path parameter).
    audience : str or None
        ``public``, ``app``, ``dispatcher``, ``admin`` or None (ops probes).
    has_body : bool
        Whether the operation takes a request body.
    """
    found = {422}  # invalid parameters, and NUL bytes in any path or query
    if audience is not None:
        found |= {401, 503}  # bad/revoked key or no session; authentication not ready
    if audience in ("dispatcher", "admin"):
        found.add(403)
    if audience in ("public", "app"):
        found.add(429)
    if "{" in path:
        found.add(404)
    if has_body:
        found |= {400, 413}
    return sorted(found)


def _envelope_schemas() -> dict[str, Any]:
    _, top = models_json_schema([(ErrorEnvelope, "serialization")], ref_template=REF + "{model}")
    return dict(top.get("$defs", {}))


def _as_envelope(response: dict[str, Any]) -> None:
    """Document an error response as the JSON the error handlers send: the envelope, unless the
    route declared another body for it (``/readyz``'s 503). FastAPI files a declared model under
    the route's media type (``application/geo+json`` for GeoJSON routes); errors are always
    ``application/json``."""
    declared = [media.get("schema") for media in response.get("content", {}).values()]
    schema = next((s for s in declared if s and str(s.get("$ref", "")).rsplit("/", 1)[-1] not in _FASTAPI_VALIDATION),
                  None)
    response["content"] = {"application/json": {"schema": schema or dict(_ENVELOPE)}}


def _uses(document: Any, name: str) -> bool:
    if isinstance(document, dict):
        return document.get("$ref") == REF + name or any(_uses(v, name) for v in document.values())
    if isinstance(document, list):
        return any(_uses(v, name) for v in document)
    return False


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with errors, media types and security completed."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                      tags=app.openapi_tags)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _envelope_schemas().items():
        schemas.setdefault(name, schema)
    doc["components"]["securitySchemes"] = dict(SECURITY_SCHEMES)
    audiences = {(path, method.lower()): route_audience(route)
                 for path, route in iter_api_routes(app.routes) for method in route.methods or ()}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            audience = audiences.get((path, method))
            security = audience_security(audience, method)
            if security is not None:
                operation["security"] = security
            responses = operation.setdefault("responses", {})
            for status in error_statuses(path, audience, "requestBody" in operation):
                entry = responses.setdefault(str(status), {})
                if not entry.get("description") or entry["description"] == "Validation Error":
                    entry["description"] = ERROR_DESCRIPTIONS[status]
            for code, response in responses.items():
                if code[:1] in ("4", "5"):
                    _as_envelope(response)
            if "429" in responses:
                responses["429"].setdefault("headers", {}).update(_RETRY_AFTER)
            if "401" in responses:
                responses["401"].setdefault("headers", {}).update(_WWW_AUTHENTICATE)
            operation["responses"] = dict(sorted(responses.items()))
    for name in _FASTAPI_VALIDATION:
        if name in schemas and not _uses({k: v for k, v in doc.items() if k != "components"}, name):
            schemas.pop(name)
    return doc


def _same_origin(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


def install_docs(app: FastAPI) -> None:
    """Serve ``/openapi.json`` from :func:`build_openapi`, Swagger UI at ``/docs`` and ReDoc at
    ``/redoc`` from local assets (create the app with ``docs_url=None, redoc_url=None``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    try:
        import fastapi_offline
    except ModuleNotFoundError:
        log.warning("fastapi-offline is not installed: /docs and /redoc are not served")
        return
    assets = Path(fastapi_offline.__file__).resolve().parent / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _same_origin(get_swagger_ui_html(
            openapi_url=root + openapi_url, title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from the validator service
        ))

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _same_origin(get_redoc_html(
            openapi_url=root + openapi_url, title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png", with_google_fonts=False,
        ))

    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
