-- Import batches: who created a batch. The REST API records the caller's user id (the token's
-- user); a batch made by the CLI, Dagster or Python code without one has NULL. A reprocess batch
-- takes its caller's id, or its original's. Endpoint hooks (batches.endpoints) see it as
-- ctx.user_id, and a quota can count a user's batches by it.
ALTER TABLE import_batches ADD COLUMN created_by text;
CREATE INDEX import_batches_created_by_idx ON import_batches (created_by, created_at DESC)
    WHERE created_by IS NOT NULL;

-- The summary view with created_by appended (CREATE OR REPLACE VIEW may only add columns at the end).
CREATE OR REPLACE VIEW import_batch_summary AS
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
    b.completed_at,
    b.created_by
FROM import_batches b
LEFT JOIN LATERAL (
    SELECT
        count(*) FILTER (WHERE i.status = 'pending'
                         AND NOT coalesce(i.item_index BETWEEN b.in_flight_from AND b.in_flight_to, false)) AS pending,
        count(*) FILTER (WHERE i.status = 'processing'
                         OR (i.status = 'pending' AND i.item_index BETWEEN b.in_flight_from AND b.in_flight_to))
            AS processing,
        count(*) FILTER (WHERE i.status = 'completed') AS completed,
        count(*) FILTER (WHERE i.status = 'failed') AS failed,
        count(*) FILTER (WHERE i.status = 'skipped') AS skipped
    FROM import_batch_items i
    WHERE i.batch_id = b.id
) c ON true;
