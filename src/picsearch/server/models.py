"""The request and response bodies of the HTTP API (they make its OpenAPI schema)."""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, Field

from ..display import path_text

__all__ = [
    "PhotoFile",
    "ErrorDetail",
    "ErrorBody",
    "HitModel",
    "SearchResponse",
    "ItemModel",
    "InfoModel",
    "HealthModel",
    "TokenRequest",
    "STANDARD_KEYS",
    "PHOTO_KEYS",
    "PlaceModel",
    "GpsModel",
    "UnderstoodModel",
    "photo_fields",
    "file_fields",
    "urls",
    "ERROR_RESPONSES",
    "MAX_ID",
    "ItemId",
]

#: Metadata keys every item has; the rest is what an application attached.
STANDARD_KEYS = ("width", "height", "size", "mtime")
#: Keys of what indexing read of when, where and with what a photo was taken.
PHOTO_KEYS = ("taken", "taken_source", "camera", "lens", "place", "gps")


class PlaceModel(BaseModel):
    city: str | None = None
    region: str | None = None
    country: str | None = None


class GpsModel(BaseModel):
    latitude: float
    longitude: float


class ErrorDetail(BaseModel):
    status: int = Field(description="the HTTP status code, repeated")
    message: str = Field(description="what went wrong, for a person")


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"status": 404, "message": "..."}}``."""

    error: ErrorDetail


#: The error statuses API routes may answer, for the OpenAPI schema (422 replaces
#: FastAPI's own validation body, which this API never sends).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 404, 408, 413, 422, 500, 501, 503)
}

#: The largest id SQLite can store (a signed 64-bit integer).
MAX_ID = 2**63 - 1
#: A photo's id in a URL; one out of this range names nothing (404), like an unknown one.
ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="a photo's id in the library")]


class PhotoFile(BaseModel):
    """What every answer says of a photo's file."""

    id: int
    name: str = Field(description="the file name")
    path: str = Field(description="the file's path on the server, printable")
    width: int
    height: int
    size: int = Field(description="file size in bytes")


class _Photo(PhotoFile):
    mtime: float = Field(description="file modification time, Unix seconds")
    taken: str | None = Field(None, description="when it was taken: ISO 8601 with its offset")
    taken_source: str | None = Field(
        None, description="where 'taken' comes from: 'exif', 'xmp' or 'file' (the file time)"
    )
    camera: str | None = Field(None, description="the camera's make and model")
    lens: str | None = Field(None, description="the lens")
    place: PlaceModel | None = Field(None, description="where it was taken, from its GPS")
    gps: GpsModel | None = Field(None, description="its GPS position")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="fields an application attached when indexing"
    )
    thumbnail: str = Field(description="URL of a small JPEG of the photo")
    image: str = Field(description="URL of the original file")
    similar: str = Field(description="URL of the 'more like this' search")
    concepts: dict[str, float] = Field(
        default_factory=dict, description="what the concept bank saw, with its confidence"
    )
    text: str = Field("", description="the words read in the photo, if any")


class HitModel(_Photo):
    rank: int
    score: float = Field(description="cosine similarity to the query: higher is closer")
    weak: bool = Field(
        False, description="under the model's weak-match cutoff: close, but not a good match"
    )


class UnderstoodModel(BaseModel):
    """What a text query's words said of when and where, turned into filters."""

    text: str | None = Field(description="the words searched (null: none, filters alone)")
    after: str | None = Field(description="taken from this date (ISO), if the words gave one")
    before: str | None = Field(description="taken before this date (ISO, excluded)")
    place: str | None = Field(description="the library's place name the words gave")
    summary: str = Field(
        description='one line: taken 2019-06-01..2019-08-31, place Lisbon; searching "beach"'
    )


class SearchResponse(BaseModel):
    query: dict[str, Any] = Field(description="what was searched for, and the filters")
    took_ms: float
    hits: list[HitModel]
    no_good_match: bool = Field(
        False, description="true when photos were found but every one is a weak match"
    )
    understood: UnderstoodModel | None = Field(
        None, description="the dates and place read from q (null: none, or literal=true)"
    )


class ItemModel(_Photo):
    pass


class InfoModel(BaseModel):
    items: int = Field(description="photos in the library")
    model: str | None = Field(description="the model it was indexed with, as --model names it")
    model_id: str | None = Field(description="that model's exact identity")
    dims: dict[str, int | None] = Field(description="each vector space's dimensions")
    schema_version: int = Field(description="the library file's schema version")
    size_bytes: int = Field(description="the library file and its indexes, on disk")
    duplicates: bool = Field(description="whether /api/duplicates is available")
    version: str


class HealthModel(BaseModel):
    status: str
    items: int


class TokenRequest(BaseModel):
    token: str = Field(max_length=1024)


def photo_fields(item_id: int, path: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """The fields of _Photo for a stored item (or hit) of the library."""
    return {
        "id": item_id,
        "name": path_text(os.path.basename(path)),
        "path": path_text(path),
        **{key: metadata.get(key, 0) for key in STANDARD_KEYS},
        **{key: metadata[key] for key in PHOTO_KEYS if key in metadata},
        "metadata": {
            k: v for k, v in metadata.items() if k not in STANDARD_KEYS and k not in PHOTO_KEYS
        },
        **urls(item_id),
    }


def file_fields(row: Any) -> dict[str, Any]:
    """PhotoFile's fields and the thumbnail's URL of a listed photo: any row with ``id``,
    ``path``, ``width``, ``height`` and ``size``."""
    return {
        "id": row.id,
        "name": path_text(os.path.basename(row.path)),
        "path": path_text(row.path),
        "width": row.width,
        "height": row.height,
        "size": row.size,
        "thumbnail": urls(row.id)["thumbnail"],
    }


def urls(item_id: int) -> dict[str, str]:
    return {
        "thumbnail": f"/api/items/{item_id}/thumbnail",
        "image": f"/api/items/{item_id}/image",
        "similar": f"/api/items/{item_id}/similar",
    }
