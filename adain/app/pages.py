"""The page and the API's docs: static files served from memory (read once at start-up)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from .assets import Asset

router = APIRouter(include_in_schema=False)


def asset(table: dict[str, Asset], name: str) -> Response:
    """A file of the page or of Swagger UI by name; 404 for any other name (never a path)."""
    found = table.get(name)
    if found is None:
        raise HTTPException(404, f"no such file: {name}")
    return Response(found.data, media_type=found.media_type, headers={"Cache-Control": "no-cache"})


@router.get("/")
async def index(request: Request) -> Response:
    return asset(request.app.state.page, "index.html")


@router.get("/static/{name}")
async def page_file(request: Request, name: str) -> Response:
    return asset(request.app.state.page, name)


@router.get("/docs")
async def api_docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} – API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg",
        swagger_ui_parameters={"validatorUrl": None},  # no call to the online validator
    )


@router.get("/docs/assets/{name}")
async def docs_file(request: Request, name: str) -> Response:
    return asset(request.app.state.docs, name)
