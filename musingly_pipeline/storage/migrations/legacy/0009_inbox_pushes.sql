-- Bundles handed in without a shared folder (`musingly inbox push`, `POST /api/bundles`): each push
-- names a staged bundle (by sha256) under an inbox file name. The inbox sensor reads the pushes it
-- has not seen yet, in id order, as it reads files dropped into the inbox folder.
CREATE TABLE inbox_pushes (
    id         bigserial   PRIMARY KEY,
    name       text        NOT NULL CHECK (name ~ '^(incremental/)?[^/.][^/]*\.json$'),
    sha256     text        NOT NULL REFERENCES staged_bundles (sha256) ON DELETE CASCADE,
    pushed_by  text,
    pushed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_pushes_by_name ON inbox_pushes (name, id);

COMMENT ON TABLE inbox_pushes IS
    'Bundles handed in by push: an inbox file name and the staged bytes (sha256); read by the inbox sensor.';
