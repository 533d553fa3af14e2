"""Benchmark: this signal store against metaspn-store 0.1.8 on the same workload, same run.

Workload (scale 1.0): a store already holding 1M signals over 30 days, then 100k new signals over the
same 30 days with 10% duplicate ids, written in batches. Figures:

* cold first write: a new store object on the 1M-event store writes one signal (metaspn-store
  parses every line to build its id index; ours loads its persistent id index);
* batch write throughput: the 100k signals in batches of 10k (ours fsyncs every batch);
* one-day replay: every signal of one day (about 36k);
* recent-by-entity: the 20 latest signals of one entity in the last 3 days.

The history files are generated once per run as text (same bytes for both stores) and copied. Our
store's one-time index build over that history is reported separately: it is what an existing
metaspn-store workspace pays once, on its first open by this store.

    python bench/signals.py              # full size (a few minutes, mostly metaspn-store)
    python bench/signals.py --scale 0.05 # small
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import metaspn_schemas as ms
from metaspn_store import FileSystemStore as TheirStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from musingly_pipeline.signals import EntityRef, FileSystemStore, SignalEnvelope  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 30
SOURCES = ["ingest.crawler", "score.worker", "route.worker", "draft.worker"]
TYPES = ["SocialPostSeen", "RecommendationCandidate", "RouteInput", "DraftMessage"]
ENTITIES = 5000
LINE = ('{{"entity_refs":[{{"label":null,"platform":"x","ref_type":"person","schema_version":"0.8","value":"p{e}"}}],'
        '"payload":{{"score":{score},"text":"history event {i}"}},"payload_type":"{t}","raw":null,"schema_version":"0.8",'
        '"signal_id":"h-{i}","source":"{s}","timestamp":"{ts}","trace":null}}\n')


def build_history(root: Path, events: int) -> None:
    """``events`` signals spread evenly over DAYS partitions, written straight as JSONL text."""
    signals = root / "store" / "signals"
    signals.mkdir(parents=True)
    per_day = events // DAYS
    seconds = 86400 / per_day
    i = 0
    for d in range(DAYS):
        day = START + timedelta(days=d)
        with open(signals / f"{day.date().isoformat()}.jsonl", "w") as handle:
            chunk = []
            for k in range(per_day):
                ts = (day + timedelta(seconds=int(k * seconds))).isoformat().replace("+00:00", "Z")
                chunk.append(LINE.format(e=i % ENTITIES, score=(i * 7919 % 1000) / 1000, i=i, t=TYPES[i % 4], s=SOURCES[i % 4], ts=ts))
                i += 1
            handle.write("".join(chunk))


def workload(n: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    unique = int(n * 0.9)
    records = []
    for i in range(unique):
        ts = START + timedelta(seconds=rng.randrange(DAYS * 86400))
        records.append({
            "signal_id": f"w-{i}", "timestamp": ts.isoformat().replace("+00:00", "Z"), "source": SOURCES[i % 4],
            "payload_type": TYPES[i % 4], "payload": {"score": rng.random(), "text": f"new event {i}"},
            "entity_refs": [{"ref_type": "person", "value": f"p{rng.randrange(ENTITIES)}", "platform": "x"}],
        })
    dups = [dict(records[rng.randrange(unique)]) for _ in range(n - unique)]
    mixed = records + dups
    rng.shuffle(mixed)
    return mixed


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def batches(items, size):
    return [items[k:k + size] for k in range(0, len(items), size)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 1M history, 100k writes (default)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / ".out" / "signals"))
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    history, writes = int(1_000_000 * args.scale), int(100_000 * args.scale)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    ours_dir, theirs_dir = out / "ours", out / "theirs"

    t, _ = timed(lambda: build_history(ours_dir, history))
    shutil.copytree(ours_dir, theirs_dir)
    t_index, size = timed(lambda: FileSystemStore(ours_dir).reindex())
    t_sync, _ = timed(os.sync)  # the set-up's writes reach the disk now, not during the timed writes
    print(f"history: {history:,} signals over {DAYS} days generated in {t:.1f}s (synced to disk in {t_sync:.1f}s); "
          f"workload: {writes:,} signals, 10% duplicate ids")
    print(f"ours, one-time id index build over the existing history: {t_index:.2f}s ({size:,} ids)\n")

    records = workload(writes)
    ours_batch = [SignalEnvelope.model_validate(r) for r in records]
    theirs_batch = [ms.SignalEnvelope.from_dict(r) for r in records]
    first_ours = SignalEnvelope(signal_id="first", timestamp=START + timedelta(days=3), source="x", payload_type="T", payload={})
    first_theirs = ms.SignalEnvelope.from_dict(first_ours.to_record())
    results = []

    ours, theirs = FileSystemStore(ours_dir), TheirStore(theirs_dir)
    a, _ = timed(lambda: ours.write_signal(first_ours))
    b, _ = timed(lambda: theirs.write_signal(first_theirs))
    results.append(("cold first write into the history (s)", a, b, "lower"))

    a, ra = timed(lambda: [r for chunk in batches(ours_batch, args.batch) for r in ours.write_signals(chunk)])
    b, rb = timed(lambda: [p for chunk in batches(theirs_batch, args.batch) for p in theirs.write_signals(chunk)])
    written = sum(r.written for r in ra)
    results.append((f"batch writes, {writes:,} signals (signals/s)", writes / a, writes / b, "higher"))

    day = START + timedelta(days=12)
    end = day + timedelta(days=1) - timedelta(microseconds=1)
    a, na = timed(lambda: sum(1 for _ in ours.iter_signals(day, end)))
    b, nb = timed(lambda: sum(1 for _ in theirs.iter_signals(day, end)))
    assert na == nb, (na, nb)
    results.append((f"one-day replay, {na:,} signals (s)", a, b, "lower"))

    last = START + timedelta(days=DAYS) - timedelta(microseconds=1)
    who_ours = EntityRef(ref_type="person", value="p42", platform="x")
    who_theirs = ms.EntityRef(ref_type="person", value="p42", platform="x")
    since = last - timedelta(days=3)
    a, xa = timed(lambda: ours.get_recent_signals_by_entity(entity_ref=who_ours, limit=20, start=since, end=last))
    b, xb = timed(lambda: theirs.get_recent_signals_by_entity(entity_ref=who_theirs, limit=20, start=since, end=last))
    assert [s.signal_id for s in xa] == [s.signal_id for s in xb]
    results.append(("recent-by-entity, last 3 days, limit 20 (s)", a, b, "lower"))

    print(f"{'measure':<48}{'ours':>12}{'metaspn-store':>16}{'ratio':>10}")
    for name, ours_v, theirs_v, better in results:
        ratio = theirs_v / ours_v if better == "lower" else ours_v / theirs_v
        print(f"{name:<48}{ours_v:>12,.3f}{theirs_v:>16,.3f}{ratio:>9.1f}x")
    print(f"\nwritten by ours: {written:,} new of {writes:,} (duplicates skipped: {writes - written:,}); "
          f"ours fsyncs every batch, metaspn-store never does")
    ours.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
