-- Import batches: one row per batch, one per item, an audit log, and the keys of items already applied.
-- The audit log is import_batch_logs: import_logs belongs to the bundle snapshot store.

CREATE TABLE import_batches (
    id              uuid PRIMARY KEY,
    batch_type      text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    total_items     integer NOT NULL CHECK (total_items > 0),
    parent_batch_id uuid REFERENCES import_batches (id) ON DELETE SET NULL,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    error_message   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    completed_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX import_batches_status_created_idx ON import_batches (status, created_at DESC);
CREATE INDEX import_batches_type_created_idx ON import_batches (batch_type, created_at DESC);
CREATE INDEX import_batches_created_idx ON import_batches (created_at DESC);
CREATE INDEX import_batches_parent_idx ON import_batches (parent_batch_id) WHERE parent_batch_id IS NOT NULL;

CREATE TABLE import_batch_items (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id        uuid NOT NULL REFERENCES import_batches (id) ON DELETE CASCADE,
    item_index      integer NOT NULL CHECK (item_index >= 0),
    source_data     jsonb NOT NULL,
    -- What identifies this content for its batch type (by default a SHA-256 of the canonical JSON).
    item_key        text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'skipped')),
    -- How many runs marked this item 'processing'; a run killed mid-item leaves it counted.
    attempts        integer NOT NULL DEFAULT 0,
    error_code      text,
    error_message   text,
    error_traceback text,
    target_table    text,
    target_id       text,
    result          jsonb,
    -- Skipped items: the item that applied the same key first.
    duplicate_of    bigint REFERENCES import_batch_items (id) ON DELETE SET NULL,
    -- Reprocessed items: the item of the original batch they were copied from.
    source_item_id  bigint REFERENCES import_batch_items (id) ON DELETE SET NULL,
    duration_ms     double precision,
    processed_at    timestamptz,
    UNIQUE (batch_id, item_index)
) WITH (fillfactor = 60);
-- No index covers status or the other columns a run updates, and pages keep free space
-- (fillfactor): the two status updates per item are HOT updates that touch no index. Lookups by
-- batch and status use the (batch_id, item_index) index and filter.
CREATE INDEX import_batch_items_source_idx ON import_batch_items (source_item_id) WHERE source_item_id IS NOT NULL;

-- One row per (batch type, item key) that was applied: written in the same transaction as the
-- processor's writes, so a key here means the content is in the database exactly once.
CREATE TABLE import_batch_item_keys (
    batch_type  text NOT NULL,
    item_key    text NOT NULL,
    item_id     bigint NOT NULL REFERENCES import_batch_items (id) ON DELETE CASCADE,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_type, item_key)
);
CREATE INDEX import_batch_item_keys_item_idx ON import_batch_item_keys (item_id);

CREATE TABLE import_batch_logs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id    uuid NOT NULL REFERENCES import_batches (id) ON DELETE CASCADE,
    item_id     bigint REFERENCES import_batch_items (id) ON DELETE CASCADE,
    level       text NOT NULL CHECK (level IN ('info', 'warning', 'error')),
    message     text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX import_batch_logs_batch_idx ON import_batch_logs (batch_id, id);
CREATE INDEX import_batch_logs_item_idx ON import_batch_logs (item_id) WHERE item_id IS NOT NULL;
CREATE INDEX import_batch_logs_errors_idx ON import_batch_logs (batch_id) WHERE level = 'error';

-- One row per batch with its item counts, success rate and throughput.
CREATE VIEW import_batch_summary AS
SELECT
    b.id AS batch_id,
    b.batch_type,
    b.status,
    b.parent_batch_id,
    b.total_items,
    coalesce(c.pending, 0) AS pending_items,
    coalesce(c.processing, 0) AS processing_items,
    coalesce(c.completed, 0) AS completed_items,
    coalesce(c.failed, 0) AS failed_items,
    coalesce(c.skipped, 0) AS skipped_items,
    round(100.0 * (coalesce(c.completed, 0) + coalesce(c.skipped, 0)) / b.total_items, 2) AS success_rate,
    extract(epoch FROM b.completed_at - b.started_at)::double precision AS duration_seconds,
    CASE WHEN b.completed_at > b.started_at
         THEN round(((coalesce(c.completed, 0) + coalesce(c.failed, 0) + coalesce(c.skipped, 0))
                     / extract(epoch FROM b.completed_at - b.started_at))::numeric, 1)
    END AS items_per_second,
    b.error_message,
    b.metadata,
    b.created_at,
    b.started_at,
    b.completed_at
FROM import_batches b
LEFT JOIN LATERAL (
    SELECT
        count(*) FILTER (WHERE i.status = 'pending') AS pending,
        count(*) FILTER (WHERE i.status = 'processing') AS processing,
        count(*) FILTER (WHERE i.status = 'completed') AS completed,
        count(*) FILTER (WHERE i.status = 'failed') AS failed,
        count(*) FILTER (WHERE i.status = 'skipped') AS skipped
    FROM import_batch_items i
    WHERE i.batch_id = b.id
) c ON true;

-- One row per batch that needs attention: failed items, or a batch that failed as a whole.
-- unresolved_items: failed items whose content has not been applied since (by a reprocess batch).
CREATE VIEW failed_imports_report AS
SELECT
    b.id AS batch_id,
    b.batch_type,
    b.status,
    b.created_at,
    b.error_message AS batch_error,
    f.failed_items,
    f.unresolved_items,
    f.error_codes,
    f.last_error,
    r.reprocess_batch_ids
FROM import_batches b
CROSS JOIN LATERAL (
    SELECT
        count(*) AS failed_items,
        count(*) FILTER (WHERE NOT EXISTS (
            SELECT 1 FROM import_batch_item_keys k
            WHERE k.batch_type = b.batch_type AND k.item_key = i.item_key)) AS unresolved_items,
        array_remove(array_agg(DISTINCT i.error_code), NULL) AS error_codes,
        (array_agg(i.error_message ORDER BY i.processed_at DESC NULLS LAST))[1] AS last_error
    FROM import_batch_items i
    WHERE i.batch_id = b.id AND i.status = 'failed'
) f
CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(c.id ORDER BY c.created_at), '{}') AS reprocess_batch_ids
    FROM import_batches c WHERE c.parent_batch_id = b.id
) r
WHERE b.status = 'failed' OR f.failed_items > 0;
