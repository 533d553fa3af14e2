"""Read a bundle file and validate it: bytes, JSON, contracts, integrity.

Parsing goes straight from bytes to the frozen contracts with ``model_validate_json`` (no
intermediate ``json.load`` tree), which keeps time and peak memory close to a plain ``json.load``.
That parse keeps the last of repeated keys silently; a count of the file's keys finds them
(:mod:`~musingly_core.duplicate_keys`).
Every failure becomes an :class:`~musingly_core.report.Issue`; nothing here raises
for a user's mistake. :func:`validate` is the one entry point for a file, a parsed JSON object or a
model: ``musingly validate`` and the pipeline's Dagster checks call it too.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from musingly_core.contract_errors import schema_issue, show_value
from musingly_core.duplicate_keys import count_keys, duplicate_key_issue, fields_set, find_duplicate_keys
from musingly_core.gcpause import gc_paused
from musingly_core.integrity import check_bundle
from musingly_core.models import ENTITY_KINDS, SLUG_PATTERN, ImportBundle
from musingly_core.report import Issue, ValidationReport, error, format_path

# Bundles above this size are refused before reading: parsing needs several times the file's size
# in memory. A single field (a 50 MB `content_md`) has no limit of its own.
MAX_BUNDLE_BYTES = 1 << 30
# From this size on, the file's sha256 is computed in a thread while the bundle is parsed.
_HASH_ASIDE_BYTES = 8 << 20
_BOM = b"\xef\xbb\xbf"


@dataclass
class BundleFile:
    """A bundle file after validation: the report always, the parsed bundle when contracts passed."""

    report: ValidationReport
    bundle: ImportBundle | None = None
    size: int = 0
    sha256: str | None = None

    @property
    def valid(self) -> bool:
        return self.report.valid and self.bundle is not None


def read_bundle(path: str | Path, *, data: bytes | None = None, sha256: str | None = None) -> BundleFile:
    """Read ``path`` and parse it against the contracts; no integrity rules yet.

    ``data``: the file's bytes, when the caller already read them (``path`` then only names the
    file in the report); ``sha256``: their hash, when already computed (it is not computed again)."""
    path = Path(path)
    report = ValidationReport(file=str(path))
    result = BundleFile(report=report)
    try:
        size = path.stat().st_size if data is None else len(data)
        if data is None and path.is_dir():
            report.issues.append(error("FILE_UNREADABLE", "", f"{path} is a directory; name a bundle .json file"))
            return result
        if size > MAX_BUNDLE_BYTES:
            report.issues.append(error(
                "FILE_TOO_LARGE", "",
                f"the file is {size / 2**20:.0f} MiB, over the {MAX_BUNDLE_BYTES >> 20} MiB bundle limit; "
                "split it into several bundles and import them with --merge",
            ))
            return result
        if data is None:
            data = path.read_bytes()
    except FileNotFoundError:
        report.issues.append(error("FILE_NOT_FOUND", "", f"{path} does not exist; check the path"))
        return result
    except OSError as exc:
        report.issues.append(error("FILE_UNREADABLE", "", f"cannot read {path}: {exc.strerror or exc}"))
        return result
    result.size = len(data)
    if sha256 is not None or len(data) < _HASH_ASIDE_BYTES:
        result.sha256 = sha256 or hashlib.sha256(data).hexdigest()
        result.bundle = parse_bundle(data, report)
        return result
    # hashlib lets go of the GIL while it hashes a large buffer: the file's digest is computed on the
    # other core while this one parses.
    with ThreadPoolExecutor(1, thread_name_prefix="musingly-sha256") as pool:
        digest = pool.submit(lambda: hashlib.sha256(data).hexdigest())
        result.bundle = parse_bundle(data, report)
        result.sha256 = digest.result()
    return result


def validate(bundle_or_path: ImportBundle | str | os.PathLike | Any) -> ValidationReport:
    """Every rule ``musingly validate`` runs, without a database: the same issues, codes and places.

    ``bundle_or_path`` is a file's path (``str`` or ``Path``), an :class:`ImportBundle`, or what
    ``json.load`` gave (a ``dict``): a dict is checked against the contracts, then by the integrity
    rules, with the same results as the same content in a file. The report is valid when it holds no
    errors (warnings allowed); ``report.to_dict()`` is one file of ``musingly validate --json``.
    """
    if isinstance(bundle_or_path, ImportBundle):
        return validate_bundle(bundle_or_path)
    if isinstance(bundle_or_path, (str, os.PathLike)):
        return validate_bundle_file(bundle_or_path).report
    report = ValidationReport(file="<bundle>")
    bundle = parse_bundle_object(bundle_or_path, report)
    if bundle is not None:
        report.issues.extend(check_bundle(bundle))
    return report


def validate_bundle_file(path: str | Path) -> BundleFile:
    """Read, parse and run every integrity rule; ``result.report`` holds all issues."""
    result = read_bundle(path)
    if result.bundle is not None:
        result.report.issues.extend(check_bundle(result.bundle))
    return result


def validate_bundle(bundle: ImportBundle, file: str = "<bundle>") -> ValidationReport:
    """Integrity rules for a bundle already in memory (a merged snapshot, a generator's object)."""
    report = ValidationReport(file=file, counts=bundle.counts())
    report.issues.extend(check_bundle(bundle))
    return report


def parse_bundle(data: bytes, report: ValidationReport) -> ImportBundle | None:
    """Parse bytes into a bundle, adding issues to ``report``; ``None`` when it does not parse."""
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    if not data.strip():
        report.issues.append(error("FILE_EMPTY", "", "the file is empty; a bundle is a JSON object"))
        return None
    try:
        with gc_paused():  # 700k models for a 100k-spark bundle; see gcpause
            bundle = ImportBundle.model_validate_json(data)
    except ValidationError as exc:
        report.issues.extend(_issues_from(exc, data))
        return None
    report.counts = bundle.counts()
    # pydantic keeps the last of repeated keys; the count says if there were any, the slow parse where
    if count_keys(data) != fields_set(_models(bundle)):
        duplicates = find_duplicate_keys(data)
        if duplicates:
            report.issues.extend(duplicate_key_issue(path, key) for path, key in duplicates)
            return None
    return bundle


def parse_bundle_object(obj: Any, report: ValidationReport) -> ImportBundle | None:
    """:func:`parse_bundle` for a JSON value already in memory (``json.load``'s ``dict``, which
    cannot hold a repeated key: its parser kept the last one before this sees it)."""
    try:
        with gc_paused():
            bundle = ImportBundle.model_validate(obj)
    except ValidationError as exc:
        report.issues.extend(_issues_from(exc, obj))
        return None
    report.counts = bundle.counts()
    return bundle


def _models(bundle: ImportBundle) -> Iterable[BaseModel]:
    return chain((bundle, bundle.metadata), *(getattr(bundle, kind) for kind in ENTITY_KINDS))


def _issues_from(exc: ValidationError, data: bytes | Any) -> list[Issue]:
    """Issues of a failed parse; ``data`` is the file's bytes or the object that was validated."""
    issues: list[Issue] = []
    for err in exc.errors(include_url=False):
        kind, loc = err["type"], tuple(err["loc"])
        path = format_path(loc)
        if kind == "json_invalid":
            issues.append(_json_issue(err, data))
            break
        if kind in ("model_type", "dict_type", "model_attributes_type") and not loc:
            top = _top_level_kind(data)
            issues.append(error(
                "BUNDLE_NOT_OBJECT", "",
                f"the file holds a JSON {top}, but a bundle is a JSON object "
                '({"schema_version": ..., "version_label": ..., "metadata": ..., "sparks": [...]})',
            ))
            break
        if loc == ("schema_version",) and kind == "value_error":
            issues.append(error("SCHEMA_VERSION_UNSUPPORTED", path, str(err["ctx"]["error"])))
        elif kind == "string_pattern_mismatch" and (message := _pattern_message(err, loc)):
            issues.append(error("SCHEMA_INVALID_VALUE", path, message))
        else:
            issues.append(schema_issue(err, ImportBundle, loc))
    return issues


def _pattern_message(err: dict, loc: tuple) -> str | None:
    """What a slug or a color that does not match its pattern should look like (``None``: other fields)."""
    got = err.get("input")
    field = str(loc[-1]) if loc else ""
    if not isinstance(got, str):
        return None
    if field.endswith("slug"):
        fixed = re.sub(r"[^a-z0-9]+", "-", got.lower()).strip("-")
        suggestion = f", e.g. `{fixed}`" if fixed and re.fullmatch(SLUG_PATTERN, fixed) else ""
        return (f"{show_value(got)} is not a valid slug; use lowercase letters, digits and single "
                f"hyphens{suggestion}")
    if field == "color":
        return f"{show_value(got)} is not a color; write it as #RRGGBB, e.g. `#6366F1`"
    return None


def _json_issue(err: dict, data: bytes) -> Issue:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return error(
            "FILE_NOT_UTF8", "",
            f"byte {exc.start} (line {line}, column {column}) is not UTF-8; save the file as UTF-8",
        )
    detail = str(err.get("ctx", {}).get("error", err["msg"]))
    hint = "the file ends too early (truncated?); " if "EOF" in detail else ""
    return error("JSON_INVALID", "", f"not valid JSON: {detail}; {hint}fix the JSON syntax there")


def _top_level_kind(data: bytes | Any) -> str:
    if isinstance(data, bytes):
        first = data.lstrip()[:1]
        return {b"[": "array", b'"': "string"}.get(first, "number, boolean or null")
    return "array" if isinstance(data, list) else "string" if isinstance(data, str) else "number, boolean or null"
