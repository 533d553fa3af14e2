"""Bundles: the import of AI-generated content bundles and the snapshot store that holds them.

:class:`SnapshotStore` is the one object both faces call (``musingly import/promote/...`` and the
Dagster assets and jobs): import a file, promote, roll back, diff, delete a draft, clean up, list.
The import itself reads as its steps in :mod:`~musingly_pipeline.bundles.importing`; bundle bytes
handed in are staged in PostgreSQL by sha256 (:mod:`~musingly_pipeline.bundles.staging`) and the
inbox folder is scanned by :mod:`~musingly_pipeline.bundles.inbox`.
"""

from musingly_pipeline.bundles.errors import (
    BundleError, BundleInvalid, ImportRefused, PushRefused, RemovalError, SnapshotError, SourceFile, StagingError)
from musingly_pipeline.bundles.models import ImportLog, ImportResult, ImportStats, SnapshotInfo
from musingly_pipeline.bundles.store import SnapshotStore

__all__ = [
    "BundleError", "BundleInvalid", "ImportLog", "ImportRefused", "ImportResult", "ImportStats", "PushRefused",
    "RemovalError", "SnapshotError", "SnapshotInfo", "SnapshotStore", "SourceFile", "StagingError",
]
