"""``GET /widget.js``: the chat widget's script, for pages on any origin to embed."""

from __future__ import annotations

import hashlib
from importlib.resources import files

from fastapi import APIRouter, Request, Response

router = APIRouter(tags=["widget"])

SCRIPT = files(__package__).joinpath("static/widget.js").read_bytes()
ETAG = '"' + hashlib.sha256(SCRIPT).hexdigest()[:32] + '"'
# Short-lived in caches, then revalidated by ETag: a new release reaches pages within
# minutes, and an unchanged script costs a 304. ``Access-Control-Allow-Origin: *`` lets a
# page load it with ``crossorigin`` (needed for Subresource Integrity); it is public.
HEADERS = {
    "Cache-Control": "public, max-age=300",
    "ETag": ETAG,
    "X-Content-Type-Options": "nosniff",
    "Access-Control-Allow-Origin": "*",
    "Cross-Origin-Resource-Policy": "cross-origin",
}


@router.get(
    "/widget.js",
    response_class=Response,
    responses={
        200: {
            "description": "The widget's script (see docs/channels.md, Web widget).",
            "content": {"text/javascript": {"schema": {"type": "string"}}},
        },
        304: {"description": "Not modified (If-None-Match matched the ETag)."},
    },
)
async def widget_script(request: Request) -> Response:
    """The embeddable chat widget: one ``<script>`` tag with an end-user token."""
    matches = request.headers.get("if-none-match", "")
    if ETAG in (tag.strip().removeprefix("W/") for tag in matches.split(",")):
        return Response(status_code=304, headers=HEADERS)
    return Response(SCRIPT, media_type="text/javascript; charset=utf-8", headers=HEADERS)
