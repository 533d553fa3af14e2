"""The load's fast path: COPY the rows in a thread while this one checks and hashes the bundle.

The integrity rules take about a tenth of a large import and the content hash most of the rest of
the Python time; both fit in the time the server spends on the rows. So the rows are loaded before
the hash says whether a snapshot already has this content (the caller then rolls the load back).
:func:`load_then_hash` is the plain version, one step after the other; a test holds that both agree.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

import psycopg
from musingly_core.models import ImportBundle

from musingly_pipeline.bundles.content_hash import content_hash
from musingly_pipeline.bundles.loader import Progress, load_bundle, load_merged_bundle


class _LoadStopped(Exception):
    """Raised in the loading thread when this one has already failed: load no further table."""


def load_and_hash(conn: psycopg.Connection, snapshot_id: uuid.UUID, bundle: ImportBundle, base_id: uuid.UUID | None,
                  merge_source: tuple[ImportBundle, ImportBundle] | None, progress: Progress | None,
                  check: Callable[[], object] | None = None,
                  digest: str | None = None) -> tuple[dict[str, int], str]:
    """COPY ``bundle`` into ``snapshot_id`` in a thread while running ``check`` (it raises if a rule
    is broken) and hashing the bundle here (unless its ``digest`` is already known); (counts, digest). ``merge_source``: a merge's (base,
    patch), base being snapshot ``base_id``, whose kept rows are copied inside the database. If this
    thread fails (a broken rule), the load stops and its error is the one raised: an unknown slug
    can also fail the load, and the report is the error to show."""
    stop = threading.Event()

    def watched(stage: str, done: int, total: int) -> None:  # the load's progress: where it stops early
        if stop.is_set():
            raise _LoadStopped()
        if progress is not None:
            progress(stage, done, total)

    def load() -> dict[str, int]:
        if merge_source is not None:
            base, patch = merge_source
            return load_merged_bundle(conn, snapshot_id, bundle, base_id, base, patch, watched)
        return load_bundle(conn, snapshot_id, bundle, watched)

    with ThreadPoolExecutor(1, thread_name_prefix="musingly-copy") as pool:
        loading = pool.submit(load)
        try:
            if check is not None:
                if progress:
                    progress("checking", 0, 0)
                check()
            if digest is None:
                if progress:
                    progress("hashing", 0, 0)
                digest = content_hash(bundle)
        except BaseException:
            stop.set()  # no further table
            conn.cancel_safe()  # stop the COPY rather than wait for it; the transaction rolls back
            wait([loading])
            raise
        return loading.result(), digest


def load_then_hash(conn: psycopg.Connection, snapshot_id: uuid.UUID, bundle: ImportBundle, base_id: uuid.UUID | None,
                   merge_source: tuple[ImportBundle, ImportBundle] | None, progress: Progress | None,
                   check: Callable[[], object] | None = None) -> tuple[dict[str, int], str]:
    """What :func:`load_and_hash` does, one step after the other in this thread: the reference."""
    if check is not None:
        check()
    if merge_source is not None:
        base, patch = merge_source
        counts = load_merged_bundle(conn, snapshot_id, bundle, base_id, base, patch, progress)
    else:
        counts = load_bundle(conn, snapshot_id, bundle, progress)
    return counts, content_hash(bundle)
