"""POST /attachments and GET /attachments/{id} (docs/api.md), in repowire 0.17.0's shapes.

An upload is the multipart field `file`; its answer is `{id, path, filename, size,
content_type}` (repowire's AttachmentInfo). The body cap of the rest of the shim
(`max_body_bytes`) is raised for this route alone, to the per-file limit plus room for the
multipart framing; werkzeug spools a large upload to a temporary file, which `state.attachments`
copies into the store in chunks, so the file is never held in memory whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Response, request, send_file
from werkzeug.exceptions import RequestEntityTooLarge

from api_shim.context import r, settings
from api_shim.daemon import answers, blueprint
from api_shim.declare import declare
from api_shim.errors import ApiError
from dispatchyard.state import attachments, clock
from dispatchyard.state.errors import TooLarge

# Multipart boundaries and part headers around the file; a file at the limit must still fit.
MULTIPART_SLACK = 64 * 1024
NOT_FOUND = "Attachment not found"


def store_root() -> Path:
    return settings().data_dir.resolve() / "attachments"


def too_large() -> TooLarge:
    return attachments.too_large(settings().attachment_max_bytes)


def info(a: attachments.Attachment) -> dict[str, Any]:
    return {
        "id": a.id,
        "path": str(a.path),
        "filename": a.filename,
        "size": a.size,
        "content_type": a.content_type,
    }


def _field_error(msg: str, kind: str) -> ApiError:
    # As FastAPI answers a missing or mistyped `UploadFile` parameter.
    return ApiError(422, msg, detail=[{"loc": ["body", "file"], "msg": msg, "type": kind}])


@blueprint.post("/attachments")
@declare(upload="file", responses={200: answers.AttachmentInfo})
def upload_attachment() -> dict[str, Any]:
    cfg = settings()
    cap = cfg.attachment_max_bytes + MULTIPART_SLACK
    # Refuse an announced oversized body before reading it; the per-request cap catches a
    # chunked one while werkzeug parses.
    if request.content_length is not None and request.content_length > cap:
        raise too_large()
    request.max_content_length = cap
    try:
        upload = request.files.get("file")
        as_text = upload is None and "file" in request.form
    except RequestEntityTooLarge:
        raise too_large() from None
    if upload is None:
        if as_text:
            raise _field_error(
                "Value error, Expected UploadFile, received: <class 'str'>", "value_error"
            )
        raise _field_error("Field required", "missing")
    stored = attachments.put(
        r(),
        store_root(),
        upload.stream,
        upload.filename,
        upload.content_type,
        max_bytes=cfg.attachment_max_bytes,
        total_bytes=cfg.attachment_total_bytes,
        ttl_s=cfg.attachment_ttl_s,
        now_ms=clock.now_ms(),
    )
    return info(stored)


@blueprint.get("/attachments/<attachment_id>")
@declare(responses={200: answers.FILE})
def get_attachment(attachment_id: str) -> Response:
    found = attachments.find(r(), store_root(), attachment_id, clock.now_ms())
    if found is None:
        raise ApiError(404, NOT_FOUND)
    try:
        # As repowire's FileResponse: a download (never rendered inline by a browser), named.
        resp = send_file(
            found.path,
            mimetype=found.content_type or "application/octet-stream",
            as_attachment=True,
            download_name=found.filename,
            max_age=0,
        )
    except FileNotFoundError:  # expired and released between the lookup and the open
        raise ApiError(404, NOT_FOUND) from None
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
