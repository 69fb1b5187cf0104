"""When and where a photo was taken, and with what: read once from its file's bytes.

The capture time comes from EXIF ``DateTimeOriginal`` (with ``OffsetTimeOriginal``),
else from XMP (``xmp:CreateDate``, ``photoshop:DateCreated``), else from the file's
time; ``taken_source`` says which. Camera, lens and GPS position come from EXIF,
place names from the position, offline, through ``reverse_geocode`` (GeoNames data
that ships in the package, loaded once, on first use).

EXIF is often broken or lying: a field that does not parse or makes no sense is
dropped and named in ``PhotoInfo.dropped``, and the rest of the photo is kept.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import unicodedata
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .formats import register_openers_for

__all__ = ["PhotoInfo", "read_photo_info", "file_time_info", "fold", "place_of"]

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_MAKE, _MODEL = 0x010F, 0x0110
_DATE_ORIGINAL, _OFFSET_ORIGINAL, _LENS_MODEL = 0x9003, 0x9011, 0xA434
#: XMP is near the start of a file; looking further would cost time on every photo.
_XMP_WINDOW = 256 * 1024
_XMP_DATE = re.compile(
    rb"(?:xmp:CreateDate|photoshop:DateCreated)(?:=\"|>)\s*([0-9][0-9T:+\-.Z ]{3,40})"
)


@dataclass(frozen=True)
class PhotoInfo:
    """What a photo's file says of it. ``taken`` always has an offset."""

    taken: dt.datetime
    taken_source: str  # "exif", "xmp" or "file"
    camera: str | None = None
    lens: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    dropped: tuple[str, ...] = ()  # the fields found broken, and left out
    city: str | None = None
    region: str | None = None
    country: str | None = None

    @property
    def taken_ns(self) -> int:
        """The capture time as Unix nanoseconds."""
        return int(self.taken.timestamp()) * 10**9 + self.taken.microsecond * 1000

    def fields(self) -> dict[str, Any]:
        """The photo's fields as hits and items show them (only those known)."""
        shown: dict[str, Any] = {"taken": self.taken.isoformat(), "taken_source": self.taken_source}
        if self.camera:
            shown["camera"] = self.camera
        if self.lens:
            shown["lens"] = self.lens
        if self.latitude is not None and self.longitude is not None:
            shown["gps"] = {"latitude": self.latitude, "longitude": self.longitude}
        place = {"city": self.city, "region": self.region, "country": self.country}
        if any(place.values()):
            shown["place"] = {name: value for name, value in place.items() if value}
        return shown


def file_time_info(mtime_ns: int) -> PhotoInfo:
    """A photo known only by its file time (local time, with the local offset)."""
    return PhotoInfo(taken=_local(mtime_ns), taken_source="file")


def read_photo_info(data: bytes, mtime_ns: int) -> PhotoInfo:
    """What the file's bytes say of the photo; never raises for broken metadata."""
    dropped: list[str] = []
    exif = _exif(data, dropped)
    taken, source = _taken(exif, data, dropped)
    position = _gps(exif, dropped)
    place = _place(position, dropped)
    return PhotoInfo(
        taken=taken or _local(mtime_ns),
        taken_source=source if taken else "file",
        camera=_camera(exif),
        lens=_text(_exif_value(exif, _LENS_MODEL)),
        latitude=position[0] if position else None,
        longitude=position[1] if position else None,
        city=place.get("city"),
        region=place.get("region"),
        country=place.get("country"),
        dropped=tuple(dropped),
    )


def fold(text: str) -> str:
    """Text compared ignoring case and accents ("São Paulo" → "sao paulo")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


# -- EXIF --------------------------------------------------------------------------


def _exif(data: bytes, dropped: list[str]) -> Image.Exif | None:
    """The file's EXIF block; None when it has none, or one that does not parse."""
    register_openers_for(data[:64])  # a HEIC may be met here before it is decoded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about truncated blocks
        try:
            image = Image.open(io.BytesIO(data))
        except Exception:  # noqa: BLE001 - a format Pillow cannot open has no EXIF to read
            return None
        try:
            exif = image.getexif()
            exif.get_ifd(_EXIF_IFD)  # parse the sub-blocks now, while the file is open
            exif.get_ifd(_GPS_IFD)
            return exif
        except Exception:  # noqa: BLE001 - any parser failure means: no usable EXIF
            dropped.append("exif")
            return None
        finally:
            image.close()


def _exif_value(exif: Image.Exif | None, tag: int) -> object:
    """A tag from the EXIF sub-block, or from the main block where some writers put it."""
    if exif is None:
        return None
    try:
        value = exif.get_ifd(_EXIF_IFD).get(tag)
        return exif.get(tag) if value is None else value
    except Exception:  # noqa: BLE001 - a broken sub-block: the tag is unknown
        return None


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    cleaned = value.replace("\x00", "").strip()
    return cleaned or None


def _camera(exif: Image.Exif | None) -> str | None:
    if exif is None:
        return None
    make, model = _text(exif.get(_MAKE)), _text(exif.get(_MODEL))
    if make and model and model.casefold().startswith(make.casefold()):
        return model  # "Canon" + "Canon EOS 5D": the model already names the make
    return " ".join(part for part in (make, model) if part) or None


# -- capture time -------------------------------------------------------------------


def _taken(
    exif: Image.Exif | None, data: bytes, dropped: list[str]
) -> tuple[dt.datetime | None, str]:
    stamp = _text(_exif_value(exif, _DATE_ORIGINAL))
    if stamp is not None:
        offset = _text(_exif_value(exif, _OFFSET_ORIGINAL))
        taken = _exif_time(stamp, offset)
        if taken is not None:
            return taken, "exif"
        dropped.append("taken")
    xmp = _xmp_time(data[:_XMP_WINDOW])
    if xmp is not None:
        return xmp, "xmp"
    return None, "file"


def _exif_time(stamp: str, offset: str | None) -> dt.datetime | None:
    """EXIF's "YYYY:MM:DD HH:MM:SS" with its "+HH:MM" offset (else local time)."""
    try:
        naive = dt.datetime.strptime(stamp[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    zone = _offset(offset)
    return _plausible(naive.replace(tzinfo=zone) if zone else naive.astimezone())


def _offset(text: str | None) -> dt.timezone | None:
    match = re.fullmatch(r"([+-])(\d\d):(\d\d)", text or "")
    if match is None:
        return None
    sign = -1 if match[1] == "-" else 1
    minutes = int(match[2]) * 60 + int(match[3])
    if minutes >= 24 * 60:
        return None
    return dt.timezone(sign * dt.timedelta(minutes=minutes))


def _xmp_time(head: bytes) -> dt.datetime | None:
    if b"xmp:CreateDate" not in head and b"photoshop:DateCreated" not in head:
        return None  # a plain substring test is many times faster than the pattern
    match = _XMP_DATE.search(head)
    if match is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(match[1].decode("ascii").strip())
    except ValueError:
        return None
    return _plausible(parsed if parsed.tzinfo else parsed.astimezone())


def _plausible(taken: dt.datetime) -> dt.datetime | None:
    """A capture time from before photography's common use, or the future, is a lie."""
    if not 1900 < taken.year <= dt.date.today().year + 1:
        return None
    return taken


def _local(mtime_ns: int) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(mtime_ns / 1e9).astimezone()
    except (OverflowError, OSError, ValueError):  # a file time out of range
        return dt.datetime.fromtimestamp(0, dt.UTC)


# -- position and place ---------------------------------------------------------------


def _gps(exif: Image.Exif | None, dropped: list[str]) -> tuple[float, float] | None:
    if exif is None:
        return None
    try:
        gps = exif.get_ifd(_GPS_IFD)
    except Exception:  # noqa: BLE001 - a broken GPS block is a dropped position
        dropped.append("gps")
        return None
    if not gps:
        return None
    position = _position(gps)
    if position is None:
        dropped.append("gps")
    return position


def _position(gps: Mapping[Any, Any]) -> tuple[float, float] | None:
    try:
        latitude = _degrees(gps[2], gps.get(1), "S")
        longitude = _degrees(gps[4], gps.get(3), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    if latitude == 0 and longitude == 0:  # "Null Island": a GPS with no fix wrote zeros
        return None
    return round(latitude, 6), round(longitude, 6)


def _degrees(parts: Any, ref: Any, negative: str) -> float:
    degrees, minutes, seconds = (float(part) for part in parts)
    value = degrees + minutes / 60 + seconds / 3600
    if value != value:  # NaN from a 0/0 rational
        raise ValueError("not a number")
    ref_text = _text(ref) or ""
    return -value if ref_text.upper().startswith(negative) else value


def _place(position: tuple[float, float] | None, dropped: list[str]) -> dict[str, str]:
    if position is None:
        return {}
    try:
        return place_of(*position)
    except Exception:  # noqa: BLE001 - a failed lookup must not stop indexing
        dropped.append("place")
        return {}


_GEOCODE_LOCK = threading.Lock()
_geocoder: Any = None


def place_of(latitude: float, longitude: float) -> dict[str, str]:
    """City, region and country nearest a position, offline ({} without the package)."""
    geocoder = _load_geocoder()
    if geocoder is None:
        return {}
    found = geocoder.get((latitude, longitude))
    place = {
        "city": found.get("city"),
        "region": found.get("state") or found.get("county"),
        "country": found.get("country"),
    }
    return {name: value for name, value in place.items() if isinstance(value, str) and value}


def _load_geocoder() -> Any:
    """reverse_geocode loads its data on first use: once, under a lock, for all threads."""
    global _geocoder
    with _GEOCODE_LOCK:
        if _geocoder is None:
            try:
                import reverse_geocode
            except ImportError:
                _geocoder = False
                return None
            reverse_geocode.get((0.0, 0.0))  # loads the GeoNames data now
            _geocoder = reverse_geocode
    return _geocoder or None
