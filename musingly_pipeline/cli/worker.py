"""`musingly worker`: one Celery worker of a distributed deployment (docs/deployment.md)."""

from __future__ import annotations

import os
import socket

from musingly_pipeline.cli.common import CommandError, add_command


def register(commands) -> None:
    p = add_command(
        commands, "worker", "Run a Celery worker of a distributed deployment (steps of Dagster runs).",
        "Needs MUSINGLY_DATABASE_URL (the shared PostgreSQL; no embedded server is ever started for a\n"
        "worker) and MUSINGLY_CELERY_BROKER, checks both, then becomes dagster-celery's worker. Install\n"
        "with pip install -e '.[distributed]'. Stop it with Ctrl-C or SIGTERM.",
        "MUSINGLY_DATABASE_URL=postgresql://... MUSINGLY_CELERY_BROKER=pyamqp://guest:guest@127.0.0.1// musingly worker",
        _worker,
    )
    p.add_argument("--name", default=f"musingly-{socket.gethostname()}-{os.getpid()}",
                   help="the worker's name (default: host and process id)")
    p.add_argument("--concurrency", type=int, default=1, metavar="N", help="steps run at once (default 1)")
    p.add_argument("--loglevel", default="INFO")


def _worker(args) -> int:
    try:
        from musingly_pipeline.distributed import worker_command
    except ImportError as exc:
        raise CommandError(f"the distributed extra is not installed ({exc.name}); pip install -e '.[distributed]'") from None
    if args.concurrency < 1:
        raise CommandError("--concurrency must be at least 1", 2)
    try:
        argv, env = worker_command(args.name, args.concurrency, args.loglevel)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    os.execvpe(argv[0], argv, env)
    return 0  # pragma: no cover - exec does not return
