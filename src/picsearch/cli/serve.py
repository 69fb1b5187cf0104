"""``picsearch serve``: the web page and HTTP API over a library, on this machine by default."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import os
import socket

from ..errors import InvalidInput, MissingDependency, require
from .parser import Commands, add_command, db_option

__all__ = ["register", "bind_socket", "address_of", "port_number"]

_HELP = "search your photos in the browser (a local web page and HTTP API)"

log = logging.getLogger("picsearch")
TOKEN_ENV = "PICSEARCH_TOKEN"  # the same name as picsearch.server.security.TOKEN_ENV


def register(commands: Commands) -> None:
    parser = add_command(commands, "serve", _run_serve, help=_HELP)
    db_option(parser)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; any other needs --token)",
    )
    parser.add_argument(
        "--port", type=port_number, default=8000, help="port (default 8000; 0: any free)"
    )
    parser.add_argument(
        "--token",
        help=f"access token every API and image request must carry (or ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="searches run at once, one library each (default 2)"
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=20.0,
        help="largest image upload accepted, in MB (default 20)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=30.0,
        help="seconds a client has to send a whole upload; slower ones get 408 (default 30)",
    )


def port_number(text: str) -> int:
    """A TCP port, 0 to 65535 (argparse type); anything else is refused, not wrapped around."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use 0 to 65535 (0: any free)")
    return port


def _run_serve(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(TOKEN_ENV) or None
    require("fastapi", package="fastapi", extra="server", purpose="picsearch serve")
    uvicorn = require("uvicorn", package="uvicorn", extra="server", purpose="picsearch serve")
    if not any(importlib.util.find_spec(name) for name in ("python_multipart", "multipart")):
        raise MissingDependency("python-multipart", "server", "picsearch serve")
    from ..server import create_app
    from ..server.security import check_bind

    check_bind(args.host, token)
    if args.workers < 1 or args.max_upload_mb <= 0:
        raise InvalidInput("--workers must be at least 1 and --max-upload-mb above 0")
    if not 0 < args.body_timeout < math.inf:  # also NaN
        raise InvalidInput(f"--body-timeout must be above 0 seconds, not {args.body_timeout:g}")
    sock = bind_socket(args.host, args.port)
    log.info("loading the library and its model")
    app = create_app(
        args.db,
        token=token,
        max_upload_bytes=int(args.max_upload_mb * 1e6),
        workers=args.workers,
        body_timeout=args.body_timeout,
    )
    address = address_of(sock)
    print(address, flush=True)
    hint = "; the page asks for the access token" if token else ""
    log.info("serving %s at %s (Ctrl+C to stop)%s", app.state.pool.library_path, address, hint)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or InvalidInput saying why not (e.g. port in use)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise InvalidInput(f"cannot listen on {host}:{port}: {why}; try another --port") from None
    sock.set_inheritable(True)
    return sock


def address_of(sock: socket.socket) -> str:
    """The URL a browser opens for a listening socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"
