"""Commands on import batches: list them, show one with its failures, process one, reprocess what failed."""

from __future__ import annotations

from musingly_pipeline.cli.common import (
    EXIT_FAILURE, EXIT_OK, CommandError, HelpFormatter, add_command, print_json)

# How many failed items and log lines `batch show` prints; --json has them all.
SHOW_LIMIT = 20
EXAMPLE_ID = "3f2c9a1e-0c4b-4d8e-9a57-1b2c3d4e5f60"


def register(commands) -> None:
    p = add_command(
        commands, "batches", "List import batches, newest first, with their item counts.",
        "Statuses: pending, processing, completed, failed (a batch with any failed item, or whose\n"
        "processor raised in a hook).",
        "musingly batches --status failed", _list,
    )
    p.add_argument("--status", choices=("pending", "processing", "completed", "failed"))
    p.add_argument("--type", dest="batch_type", metavar="TYPE", help="only batches of this type")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N batches (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add_command(
        commands, "batch", "Show, process or reprocess one import batch.",
        "`batch show ID` prints the summary, the failed items with their errors and the log.\n"
        "`batch process ID` processes its pending items (and resumes an interrupted run).\n"
        "`batch reprocess ID` creates a new batch, linked to ID, with the original data of its failed\n"
        "items (all items with --all) and processes it; items already applied are skipped. Exit 1\n"
        "when the new batch still has failures.",
        f"musingly batch reprocess {EXAMPLE_ID}", _missing_action,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show", help="summary, failed items and log of a batch", formatter_class=HelpFormatter,
        description="Print a batch's summary, its failed items with their errors, and its log.",
        epilog=f"Example:\n  musingly batch show {EXAMPLE_ID} --json")
    show.add_argument("batch_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON with every item and log line")
    show.set_defaults(handler=_show)
    run = actions.add_parser(
        "process", help="process the pending items of a batch", formatter_class=HelpFormatter,
        description="Process a batch's pending items, resuming an interrupted run (items left in flight are\n"
                    "retried one at a time). A completed batch is shown as is. Exit 1 when the batch has\n"
                    "failed items (reprocess them with `batch reprocess ID`), or when another run holds it.",
        epilog=f"Example:\n  musingly batch process {EXAMPLE_ID}")
    run.add_argument("batch_id", metavar="ID")
    run.add_argument("--json", action="store_true", help="print the batch's summary as JSON")
    run.set_defaults(handler=_process)
    again = actions.add_parser(
        "reprocess", help="reprocess the failed items of a batch in a new batch", formatter_class=HelpFormatter,
        description="Create a new batch, linked to ID, with the original data of its failed items (all\n"
                    "items with --all), and process it. Items already applied are skipped. Exit 1 when the\n"
                    "new batch still has failures.",
        epilog=f"Example:\n  musingly batch reprocess {EXAMPLE_ID}")
    again.add_argument("batch_id", metavar="ID")
    again.add_argument("--all", action="store_true", help="every item, not only the failed ones")
    again.add_argument("--json", action="store_true", help="print the new batch's summary as JSON")
    again.set_defaults(handler=_reprocess)


def _manager():
    from musingly_pipeline.batches import BatchManager

    return BatchManager()


def _missing_action(args) -> int:  # pragma: no cover - argparse requires ACTION
    raise CommandError("say `show ID`, `process ID` or `reprocess ID`", 2)


def _list(args) -> int:
    if args.limit < 1:
        raise CommandError("--limit must be at least 1", 2)
    batches = _manager().list_batches(status=args.status, batch_type=args.batch_type, limit=args.limit)
    if args.json:
        print_json([b.to_dict() for b in batches])
        return EXIT_OK
    if not batches:
        print("no batches")
        return EXIT_OK
    print(f"{'batch id':36}  {'type':20} {'status':10} {'items':>6} {'done':>6} {'failed':>6} {'skipped':>7} "
          f"{'rate':>7}  created")
    for b in batches:
        print(f"{b.batch_id!s:36}  {b.batch_type[:20]:20} {b.status:10} {b.total_items:>6} {b.completed_items:>6} "
              f"{b.failed_items:>6} {b.skipped_items:>7} {b.success_rate:>6.1f}%  {b.created_at:%Y-%m-%d %H:%M:%S}")
    return EXIT_OK


def print_summary(summary) -> None:
    parent = f" (reprocesses {summary.parent_batch_id})" if summary.parent_batch_id else ""
    print(f"batch {summary.batch_id}{parent}")
    creator = f", created by {summary.created_by}" if summary.created_by else ""
    print(f"  type {summary.batch_type}, status {summary.status}{creator}")
    print(f"  items {summary.total_items}: {summary.completed_items} completed, {summary.failed_items} failed, "
          f"{summary.skipped_items} skipped (already applied), {summary.pending_items} pending, "
          f"{summary.processing_items} in flight")
    rate = f"{summary.items_per_second:,.1f} items/s" if summary.items_per_second is not None else "not run yet"
    print(f"  success rate {summary.success_rate:.1f}%, {rate}")
    if summary.error_message:
        print(f"  error: {summary.error_message}")


def _show(args) -> int:
    manager = _manager()
    summary = manager.get_batch_summary(args.batch_id)
    failed = manager.get_batch_items(summary.batch_id, status="failed")
    logs = manager.get_batch_logs(summary.batch_id)
    if args.json:
        print_json({"summary": summary.to_dict(), "items": [i.to_dict() for i in
                                                            manager.get_batch_items(summary.batch_id)],
                    "logs": [log.to_dict() for log in logs]})
        return EXIT_OK
    print_summary(summary)
    if failed:
        print(f"failed items ({len(failed)}):")
        for item in failed[:SHOW_LIMIT]:
            print(f"  [{item.item_index}] {item.error_code}: {item.error_message}")
        if len(failed) > SHOW_LIMIT:
            print(f"  ... and {len(failed) - SHOW_LIMIT} more (use --json for all)")
    print(f"log ({len(logs)} lines):")
    for log in logs[-SHOW_LIMIT:]:
        print(f"  {log.created_at:%H:%M:%S} {log.level:7} {log.message.splitlines()[0] if log.message else ''}")
    return EXIT_OK


def _process(args) -> int:
    summary = _manager().process_batch(args.batch_id)
    if args.json:
        print_json(summary.to_dict())
    else:
        print_summary(summary)
    return EXIT_FAILURE if summary.status == "failed" else EXIT_OK


def _reprocess(args) -> int:
    summary = _manager().reprocess_batch(args.batch_id, failed_items_only=not args.all)
    if args.json:
        print_json(summary.to_dict())
    else:
        print_summary(summary)
    return EXIT_FAILURE if summary.status == "failed" else EXIT_OK
