"""`musingly api`: serve the import batch REST API with uvicorn."""

from __future__ import annotations

import ipaddress
import os

from musingly_pipeline.cli.common import EXIT_OK, CommandError, add_command


def register(commands) -> None:
    p = add_command(
        commands, "api", "Serve the import batch REST API (OpenAPI docs at /docs).",
        "Every endpoint but /health needs 'Authorization: Bearer <token>' with the token in\n"
        "MUSINGLY_API_TOKEN; without it the server refuses to start unless --insecure-local (no\n"
        "authentication; only on a loopback address). Processors come from MUSINGLY_PROCESSOR_PACKAGES.",
        "MUSINGLY_API_TOKEN=$(openssl rand -hex 32) musingly api --port 8000", _api,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--insecure-local", action="store_true",
                   help="serve without a token (loopback addresses only)")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api(args) -> int:
    from musingly_pipeline.api import API_TOKEN_ENV, create_app

    token = os.environ.get(API_TOKEN_ENV, "").strip()
    if not token and not args.insecure_local:
        raise CommandError(f"refusing to start without a token: set {API_TOKEN_ENV}, "
                           "or pass --insecure-local to serve without authentication on this machine only")
    if not token and not is_loopback(args.host):
        raise CommandError(f"--insecure-local serves only on a loopback address, not {args.host}")
    if not 0 < args.port < 65536:
        raise CommandError("--port must be between 1 and 65535", 2)

    import uvicorn

    app = create_app(token=token or None, insecure_local=not token)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return EXIT_OK
