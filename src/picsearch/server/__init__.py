"""The local web app and HTTP API: ``picsearch serve``, or ``create_app(path)`` under any
ASGI server. Needs the ``server`` extra (FastAPI, uvicorn, python-multipart)."""

from __future__ import annotations

from .app import MAX_K, create_app

__all__ = ["create_app", "MAX_K"]
