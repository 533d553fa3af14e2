-- Staged bundles: the exact bytes of a bundle file accepted for import, content-addressed by sha256,
-- so that any process on any machine imports the bytes a run names, not whatever a shared folder
-- holds by then. A bundle may be up to 1 GiB, so its bytes are split into chunks (one bytea value
-- may not exceed 1 GB, and a client would need it all in memory at once).
--
-- A file is written in one transaction: its chunks first, under a fresh upload id, while it is
-- hashed; then the staged_bundles row names the upload by the hash. If that hash is already staged
-- (ON CONFLICT DO NOTHING), the transaction is rolled back and the chunks vanish with it.

CREATE TABLE staged_bundle_chunks (
    upload_id  uuid    NOT NULL,
    seq        integer NOT NULL CHECK (seq >= 0),
    data       bytea   NOT NULL,
    PRIMARY KEY (upload_id, seq)
);
-- JSON compresses well, but compressing each chunk costs more time than the disk it saves here:
-- staged bundles are kept only until they are cleaned up.
ALTER TABLE staged_bundle_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE staged_bundles (
    sha256     text        PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    upload_id  uuid        NOT NULL UNIQUE,
    size       bigint      NOT NULL CHECK (size >= 0),
    chunks     integer     NOT NULL CHECK (chunks >= 0),
    source     text,
    staged_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE staged_bundles IS
    'Bundle files accepted for import, by sha256; their bytes are the chunks of upload_id in staged_bundle_chunks.';
