"""Resources shared by every area: the database and the data folder. Opened lazily, never at import;
their defaults come from ``musingly_pipeline.settings`` (the same as the CLI's)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from musingly_pipeline import settings
from musingly_pipeline.storage.database import database_url


class PostgresResource(dg.ConfigurableResource):
    """The PostgreSQL the pipeline writes to: ``url`` if set, else the project's default
    (``MUSINGLY_DATABASE_URL`` or the embedded server)."""

    url: str | None = None

    def get_url(self) -> str:
        return self.url or database_url()


class DataFolderResource(dg.ConfigurableResource):
    """The data folder (default ``MUSINGLY_DATA_DIR`` or ``data/``): ``inbox/`` (drop bundles here,
    partial ones into ``inbox/incremental/``) and ``.staging/``, the local cache of staged bundles.
    ``settle_seconds``: how long a dropped file must stay unchanged before it is imported (default
    ``MUSINGLY_INBOX_SETTLE_SECONDS`` or 10)."""

    root: str | None = None
    inbox_dir: str | None = None
    settle_seconds: float | None = None

    @property
    def base(self) -> Path:
        return Path(self.root) if self.root else settings.data_dir()

    @property
    def inbox(self) -> Path:
        return Path(self.inbox_dir) if self.inbox_dir else self.base / "inbox"

    @property
    def staging_cache(self) -> Path:
        return self.base / ".staging"

    def settle(self) -> float:
        return settings.inbox_settle_seconds() if self.settle_seconds is None else self.settle_seconds

    def bundle_path(self, key: str) -> Path:
        """The file behind a bundle partition key: the inbox first, then the example bundles."""
        for folder in (self.inbox, settings.examples_dir()):
            path = folder / key
            if path.resolve().is_relative_to(folder.resolve()) and path.is_file():
                return path
        raise dg.Failure(
            description=f"bundle file {key!r} is in neither {self.inbox} nor {settings.examples_dir()}; "
            "drop it into the inbox again, or delete the partition",
        )
