"""musingly_pipeline: content bundles, seed units, import batches and signals, from files to PostgreSQL."""

__version__ = "0.1.0"
