"""`musingly signals ...`: ingest raw signal files, replay the store, and show its numbers."""

from __future__ import annotations

import argparse

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from musingly_pipeline import settings
from musingly_pipeline.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandError, add_command, print_json
from musingly_pipeline.signals import EntityRef, EventStore, open_store
from musingly_pipeline.signals.checkpoints import parse_timestamp
from musingly_pipeline.signals.store import EPOCH

DEFAULT_STORE = "MUSINGLY_SIGNAL_STORE, else data/signals"
DEFAULT_INCOMING = "data/signals/incoming (under MUSINGLY_DATA_DIR)"


def register(commands) -> None:
    p = add_command(
        commands, "signals", "The signal store: ingest raw daily files, replay, statistics.",
        "The store is a workspace directory in metaspn-store's layout (default MUSINGLY_SIGNAL_STORE, else\n"
        "data/signals) or a postgresql:// URL (--store). Raw files are incoming/YYYY-MM-DD*.jsonl, one envelope per line.",
        "musingly signals ingest --all", lambda args: (p.print_help(), EXIT_USAGE)[1],
    )
    sub = p.add_subparsers(dest="signals_command", metavar="SUBCOMMAND")

    def common(q):
        q.add_argument("--store", metavar="DIR_OR_URL", help=f"default {DEFAULT_STORE}")

    q = add_command(sub, "ingest", "Ingest the raw files of some days into the store (idempotent) and write their digests.",
                    "Lines that are not valid envelopes, or whose timestamp is not on the file's day, are\n"
                    "reported and skipped; exit 1 when any line was rejected.",
                    "musingly signals ingest --day 2026-02-05", _ingest)
    common(q)
    q.add_argument("--incoming", metavar="DIR", help=f"default {DEFAULT_INCOMING}")
    group = q.add_mutually_exclusive_group(required=True)
    group.add_argument("--day", action="append", type=_day, metavar="YYYY-MM-DD", help="repeatable")
    group.add_argument("--all", action="store_true", help="every day that has an incoming file")

    q = add_command(sub, "replay", "Print stored signals of a window as JSON lines, in replay order.",
                    "--since/--until are ISO times with an offset (or dates: a whole UTC day); --entity is\n"
                    "TYPE:VALUE or TYPE:PLATFORM:VALUE.",
                    "musingly signals replay --since 2026-02-05 --until 2026-02-05 --source score.worker", _replay)
    common(q)
    q.add_argument("--since", type=str, help="default: the beginning")
    q.add_argument("--until", type=str, help="default: now")
    q.add_argument("--entity", metavar="TYPE[:PLATFORM]:VALUE")
    q.add_argument("--source", action="append", metavar="SOURCE", help="repeatable")
    q.add_argument("--limit", type=int)

    q = add_command(sub, "stats", "Per-day counts of the store, and one day's digest with --day.",
                    "", "musingly signals stats --day 2026-02-05 --json", _stats)
    common(q)
    q.add_argument("--day", type=_day, metavar="YYYY-MM-DD")
    q.add_argument("--json", action="store_true")


def _day(text: str) -> date:
    """A YYYY-MM-DD date: an argparse type (a usage error, exit 2) and, for --since/--until, a parser."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def _time(text: str | None, default: datetime, end: bool) -> datetime:
    if text is None:
        return default
    if len(text) == 10:
        try:
            day = _day(text)
        except argparse.ArgumentTypeError as exc:
            raise CommandError(str(exc), EXIT_USAGE) from None
        start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        return start + timedelta(days=1) - timedelta(microseconds=1) if end else start
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise CommandError(f"{text!r} is not an ISO time; write it as 2026-02-05T12:00:00Z", EXIT_USAGE) from None
    if value.tzinfo is None:
        raise CommandError(f"{text!r} has no UTC offset; add Z or +HH:MM", EXIT_USAGE)
    return parse_timestamp(value.isoformat())


def _entity(text: str) -> EntityRef:
    parts = text.split(":")
    if len(parts) == 2:
        return EntityRef(ref_type=parts[0], value=parts[1])
    if len(parts) == 3:
        return EntityRef(ref_type=parts[0], platform=parts[1] or None, value=parts[2])
    raise CommandError(f"--entity {text!r}: write TYPE:VALUE or TYPE:PLATFORM:VALUE", EXIT_USAGE)


def _ingest(args) -> int:
    incoming = Path(args.incoming) if args.incoming else settings.signal_incoming_dir()
    if not incoming.is_dir():
        raise CommandError(f"--incoming {incoming}: no such directory")
    days = EventStore.incoming_days(incoming) if args.all else sorted(set(args.day))
    rejected = 0
    with open_store(args.store) as store:  # None: the configured store
        for day in days:
            report, _ = store.ingest(incoming, day)
            rejected += len(report.rejected)
            print(f"{day}: {len(report.files)} file(s), {report.written} written, {report.duplicates} already stored, "
                  f"{len(report.rejected)} rejected")
            for issue in report.rejected:
                print(f"      {issue}", file=sys.stderr)
    return EXIT_FAILURE if rejected else EXIT_OK


def _replay(args) -> int:
    start = _time(args.since, EPOCH, end=False)
    end = _time(args.until, datetime.now(UTC), end=True)  # before start: the store refuses (SIGNAL_WINDOW_INVALID)
    with open_store(args.store) as store:  # None: the configured store
        query = store.signal_query(start, end, entity_ref=_entity(args.entity) if args.entity else None,
                               sources=frozenset(args.source) if args.source else None)
        for signal in store.query(query, limit=args.limit):
            print(signal.to_line())
    return EXIT_OK


def _stats(args) -> int:
    with open_store(args.store) as store:  # None: the configured store
        document = store.stats(args.day)
    if args.json or args.day:
        print_json(document)
    else:
        for row in document["days"]:
            print(f"{row['day']}  {row['signals']:>8} signals")
    return EXIT_OK
