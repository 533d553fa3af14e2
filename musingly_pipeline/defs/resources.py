"""Resources shared by every area: the database and the data folder. Opened lazily, never at import."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from musingly_pipeline.storage.database import PROJECT_ROOT, database_url


class PostgresResource(dg.ConfigurableResource):
    """The PostgreSQL the pipeline writes to: ``url`` if set, else the project's default
    (``MUSINGLY_DATABASE_URL`` or the embedded server)."""

    url: str | None = None

    def get_url(self) -> str:
        return self.url or database_url()


class DataFolderResource(dg.ConfigurableResource):
    """The data folder: ``inbox/`` (drop bundles here), ``examples/``, and a staging area where the
    pipeline keeps an immutable copy of each bundle it reads, named by its sha256."""

    root: str = str(PROJECT_ROOT / "data")
    inbox_dir: str | None = None

    @property
    def inbox(self) -> Path:
        return Path(self.inbox_dir) if self.inbox_dir else Path(self.root) / "inbox"

    @property
    def examples(self) -> Path:
        return Path(self.root) / "examples"

    @property
    def staging(self) -> Path:
        return Path(self.root) / ".staging"

    def bundle_path(self, key: str) -> Path:
        """The file behind a bundle partition key: the inbox first, then the examples."""
        for folder in (self.inbox, self.examples):
            path = folder / key
            if path.is_file():
                return path
        raise dg.Failure(
            description=f"bundle file {key!r} is in neither {self.inbox} nor {self.examples}; "
            "drop it into the inbox again or delete the partition",
        )
