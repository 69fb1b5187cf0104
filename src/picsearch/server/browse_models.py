"""The bodies of the browse routes (timeline, months, folders, places) and of the
duplicate actions, for the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from .models import PhotoFile

__all__ = [
    "MAX_PAGE",
    "CURSOR_PATTERN",
    "ABSOLUTE",
    "AbsolutePath",
    "ListedModel",
    "TimelinePage",
    "MonthModel",
    "MonthsResponse",
    "FolderModel",
    "FoldersResponse",
    "PlaceCount",
    "PlacesResponse",
    "MoveRequest",
    "MovedModel",
    "MoveResponse",
    "UndoRequest",
    "UndoResponse",
    "MoveLogsResponse",
    "DupMember",
    "DupPair",
    "DupGroup",
    "DuplicatesResponse",
]

#: The most photos one page holds.
MAX_PAGE = 200
#: A page cursor: the capture time (Unix nanoseconds) and id of the last photo seen.
CURSOR_PATTERN = r"^-?[0-9]{1,19}\.[0-9]{1,19}$"
#: An absolute path (one with a NUL byte names no file).
ABSOLUTE = r"^/[^\x00]*$"


def _absolute(path: str) -> str:
    if not path.startswith("/") or "\x00" in path:
        raise ValueError("give an absolute path, such as /home/me/Pictures")
    return path


#: A folder given by its absolute path: the schema says the pattern, the message says why.
AbsolutePath = Annotated[
    str,
    Field(min_length=1, max_length=4096, json_schema_extra={"pattern": ABSOLUTE}),
    AfterValidator(_absolute),
]


class ListedModel(PhotoFile):
    taken: str = Field(description="when it was taken (else its file time), ISO 8601")
    thumbnail: str = Field(description="URL of a small JPEG of the photo")


class TimelinePage(BaseModel):
    items: list[ListedModel] = Field(description="newest first", max_length=MAX_PAGE)
    next: str | None = Field(description="the cursor of the next page; null after the last")


class MonthModel(BaseModel):
    month: str = Field(description="YYYY-MM, in the photos' own local time")
    count: int
    cursor: str = Field(description="the cursor that starts the timeline at this month")


class MonthsResponse(BaseModel):
    months: list[MonthModel] = Field(description="newest first")


class FolderModel(BaseModel):
    path: str
    name: str
    count: int = Field(description="photos in it and its subfolders")


class FoldersResponse(BaseModel):
    folder: FolderModel | None = Field(description="the folder asked for; null for the roots")
    parent: str | None = Field(description="its parent, if that holds photos too")
    folders: list[FolderModel] = Field(description="its subfolders (or the roots), by name")


class PlaceCount(BaseModel):
    name: str
    count: int


class PlacesResponse(BaseModel):
    country: str | None = Field(description="the country asked for; null: every country")
    places: list[PlaceCount] = Field(description="countries (or its cities), most photos first")


class MoveRequest(BaseModel):
    keeper: int = Field(ge=1, le=2**63 - 1, description="the photo to keep")
    move: list[int] = Field(
        min_length=1, max_length=MAX_PAGE, description="ids of its copies to move"
    )
    folder: AbsolutePath = Field(description="where to move them")
    confirm: bool = Field(False, description="false: only say what would move")
    threshold: float | None = Field(None, gt=0, le=1, description="as /api/duplicates took")


class MovedModel(BaseModel):
    id: int | None
    source: str
    destination: str
    size: int


class MoveResponse(BaseModel):
    moved: bool = Field(description="false: a plan (confirm to move)")
    moves: list[MovedModel]
    skipped: list[str] = Field(description="files left in place, with why")
    log: str | None = Field(description="the move log (undo takes it)")


class UndoRequest(BaseModel):
    log: str = Field(min_length=1, max_length=4096, description="a move log of this library")


class UndoResponse(BaseModel):
    restored: int
    already: int
    refused: list[str] = Field(description="files left where they are, with why")


class MoveLogsResponse(BaseModel):
    logs: list[str] = Field(description="move logs of this library, newest first")


class DupMember(BaseModel):
    id: int
    name: str
    path: str
    width: int
    height: int
    size: int = Field(description="file size in bytes")
    mtime: float
    taken: str | None = Field(None, description="when it was taken (else its file time)")
    thumbnail: str


class DupPair(BaseModel):
    a: int
    b: int
    score: float = Field(description="cosine similarity of the two photos")


class DupGroup(BaseModel):
    keeper: int = Field(description="the id of the photo to keep")
    members: list[DupMember] = Field(description="keeper first")
    pairs: list[DupPair]
    similarity: list[list[float]] | None = Field(
        None, description="each member's cosine to each other, in member order"
    )


class DuplicatesResponse(BaseModel):
    threshold: float
    groups: list[DupGroup] = Field(description="largest first")
