"""Uploaded query images: size-capped, kept in memory, decoded with a pixel limit.

The body is read up to the limit (413 beyond it, before parsing anything),
parsed in memory (never spooled to a temporary file) and decoded from
memory: nothing uploaded is written anywhere.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import AsyncGenerator, Callable

from fastapi import Request
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ..images import Unusable, decode
from .errors import ApiError

__all__ = ["read_upload", "decode_upload", "FIELD", "FORM_OVERHEAD"]

#: The multipart field that carries the image.
FIELD = "file"
#: Room for the multipart boundaries and headers around the file, in bytes.
FORM_OVERHEAD = 16 * 1024


async def read_upload(
    request: Request, *, max_bytes: int, take: Callable[[int], None] | None = None
) -> tuple[str, bytes]:
    """(file name, bytes) of the image in a ``multipart/form-data`` request. ``take(n)``
    is told of each chunk of the body as it arrives (it may refuse it by raising)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, f"send the image as multipart/form-data, in a field named '{FIELD}'")
    limit = max_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > limit:
            raise _too_large(max_bytes)
        if take is not None:
            take(len(chunk))
        body += chunk
    parser = MultiPartParser(
        request.headers, _once(bytes(body)), max_files=1, max_fields=8, max_part_size=4096
    )
    parser.spool_max_size = len(body) + 1  # keep the file in memory
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, f"malformed upload: {exc.message}") from None
    upload = form.get(FIELD)
    if not isinstance(upload, UploadFile):
        raise ApiError(400, f"no image in the upload: send it in a field named '{FIELD}'")
    data = await upload.read()
    await form.close()
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data:
        raise ApiError(400, "the uploaded file is empty")
    return upload.filename or "upload", data


def decode_upload(data: bytes, *, short_side: int, max_pixels: int) -> Image.Image:
    """The uploaded image, decoded at reduced size; 400 if it is not a usable image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            width, height = Image.open(io.BytesIO(data)).size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ApiError(400, "the uploaded file is not an image (or not a format we read)") from None
    if width * height > max_pixels:
        raise ApiError(
            400,
            f"the uploaded image is too large: {width}x{height} = {width * height:,} pixels "
            f"(limit {max_pixels:,})",
        )
    try:
        image, _, _ = decode(data, short_side=short_side, max_pixels=max_pixels)
    except Unusable as exc:
        raise ApiError(400, f"the uploaded image cannot be used: {exc}") from None
    return image


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"the upload is too large: the limit is {max_bytes / 1e6:g} MB")


async def _once(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data
