"""`musingly api`: serve the import batch REST API (an APIManager) with uvicorn."""

from __future__ import annotations

from musingly_pipeline.cli.common import EXIT_OK, CommandError, add_command


def register(commands) -> None:
    p = add_command(
        commands, "api", "Serve the import batch REST API (OpenAPI docs at /docs).",
        "Every endpoint but /health needs 'Authorization: Bearer <token>' with the token in\n"
        "MUSINGLY_API_TOKEN; without it the server refuses to start unless --insecure-local (no\n"
        "authentication; only on a loopback address). Processors and endpoints come from\n"
        "MUSINGLY_PROCESSOR_PACKAGES. Batches are processed in the background (202 Accepted): by\n"
        "--workers threads of this process, or as process_batch runs of the Dagster webserver at\n"
        "MUSINGLY_DAGSTER_URL when that is set.",
        "MUSINGLY_API_TOKEN=$(openssl rand -hex 32) musingly api --port 8000", _api,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="batches processed at once in this process (default 2; unused with MUSINGLY_DAGSTER_URL)")
    p.add_argument("--insecure-local", action="store_true",
                   help="serve without a token (loopback addresses only)")


def _api(args) -> int:
    from musingly_pipeline.api import APIManager

    if not 0 < args.port < 65536:
        raise CommandError("--port must be between 1 and 65535", 2)
    if args.workers < 1:
        raise CommandError("--workers must be at least 1", 2)
    APIManager(insecure_local=args.insecure_local, workers=args.workers).run(host=args.host, port=args.port)
    return EXIT_OK
