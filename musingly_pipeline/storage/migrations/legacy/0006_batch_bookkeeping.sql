-- Import batches, cheaper bookkeeping per item (same guarantees as 0002): the items in flight
-- recorded on the batch, and two per-row foreign keys checked per statement instead.
--
-- 1. The items a run has in flight are recorded on the batch row instead of on every item.
--    Before, a run marked each item of a chunk 'processing' (attempts + 1) and committed, then
--    wrote the item's outcome: two updates of every item row. Now, before a chunk, the run
--    commits the chunk's range of item indexes on the batch (in_flight_from, in_flight_to); a
--    chunk is a run of consecutive pending items, so the items in flight are exactly the batch's
--    pending items in that range. The chunk's transaction writes the outcomes (attempts + 1) and
--    clears the range, so they commit together. A run that dies leaves the range, and its items
--    pending: the next run finds them there (see recover_interrupted), counts the interrupted
--    attempt and retries them one at a time, as before. Items left 'processing' by a run of the
--    code before this migration are still found and retried. The summary view (below) and the
--    item listings show the items in flight as 'processing', as before.
ALTER TABLE import_batches
    ADD COLUMN in_flight_from integer,
    ADD COLUMN in_flight_to integer,
    ADD CONSTRAINT import_batches_in_flight_check
        CHECK ((in_flight_from IS NULL) = (in_flight_to IS NULL) AND in_flight_from <= in_flight_to);

-- 2. import_batch_item_keys.item_id: the per-row foreign key becomes statement-level triggers.
--    The foreign key checked every inserted key with its own query and row lock (about a third of
--    the cost of writing the keys). Its guarantees are kept, in bulk: an INSERT or UPDATE of keys
--    naming an item that does not exist is refused (foreign_key_violation), and deleting or
--    truncating items deletes their keys (what ON DELETE CASCADE did), so a key never names a
--    missing item. The framework writes a key in the same transaction that writes its item's
--    outcome (the item row is locked by that update until commit), so no concurrent delete can
--    slip between the check and the commit. The index on item_id stays for those deletes.
ALTER TABLE import_batch_item_keys DROP CONSTRAINT import_batch_item_keys_item_id_fkey;

CREATE FUNCTION import_batch_item_keys_check_items() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_missing bigint;
BEGIN
    SELECT n.item_id INTO v_missing FROM new_keys n
    WHERE NOT EXISTS (SELECT 1 FROM import_batch_items i WHERE i.id = n.item_id) LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('insert or update on table "import_batch_item_keys" names item %s, which does not exist',
                             v_missing),
            TABLE = 'import_batch_item_keys', COLUMN = 'item_id';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER import_batch_item_keys_check_items_ins AFTER INSERT ON import_batch_item_keys
    REFERENCING NEW TABLE AS new_keys FOR EACH STATEMENT EXECUTE FUNCTION import_batch_item_keys_check_items();
CREATE TRIGGER import_batch_item_keys_check_items_upd AFTER UPDATE ON import_batch_item_keys
    REFERENCING NEW TABLE AS new_keys FOR EACH STATEMENT EXECUTE FUNCTION import_batch_item_keys_check_items();

CREATE FUNCTION import_batch_items_delete_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM import_batch_item_keys;
    ELSE
        DELETE FROM import_batch_item_keys WHERE item_id IN (SELECT id FROM gone_items);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER import_batch_items_delete_keys AFTER DELETE ON import_batch_items
    REFERENCING OLD TABLE AS gone_items FOR EACH STATEMENT EXECUTE FUNCTION import_batch_items_delete_keys();
CREATE TRIGGER import_batch_items_truncate_keys AFTER TRUNCATE ON import_batch_items
    FOR EACH STATEMENT EXECUTE FUNCTION import_batch_items_delete_keys();

-- 3. import_batch_items.batch_id: the same, for the items of a batch. Its per-row check was about
--    40% of the cost of create_batch's COPY of the items. Kept in bulk: inserted items must name
--    existing batches (checked once per statement, the batches locked FOR KEY SHARE as the foreign
--    key did, so a concurrent delete of the batch waits for this transaction); changing an item's
--    batch_id is checked too; deleting or truncating batches deletes their items (ON DELETE
--    CASCADE before), and with them their keys (above) and log lines (import_batch_logs' foreign
--    keys stay).
ALTER TABLE import_batch_items DROP CONSTRAINT import_batch_items_batch_id_fkey;

CREATE FUNCTION import_batch_items_check_batches() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_batches uuid[];
    v_missing uuid;
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        v_batches := ARRAY[NEW.batch_id];
    ELSE
        SELECT array_agg(DISTINCT batch_id) INTO v_batches FROM new_items;
    END IF;
    PERFORM 1 FROM import_batches WHERE id = ANY (v_batches) FOR KEY SHARE;
    SELECT b INTO v_missing FROM unnest(v_batches) AS b
    WHERE NOT EXISTS (SELECT 1 FROM import_batches p WHERE p.id = b) LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('insert or update on table "import_batch_items" names batch %s, which does not exist',
                             v_missing),
            TABLE = 'import_batch_items', COLUMN = 'batch_id';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER import_batch_items_check_batches AFTER INSERT ON import_batch_items
    REFERENCING NEW TABLE AS new_items FOR EACH STATEMENT EXECUTE FUNCTION import_batch_items_check_batches();
-- A row trigger on the column: an UPDATE that does not set batch_id (every one the framework makes) skips it.
CREATE TRIGGER import_batch_items_check_batch_change AFTER UPDATE OF batch_id ON import_batch_items
    FOR EACH ROW EXECUTE FUNCTION import_batch_items_check_batches();

CREATE FUNCTION import_batches_delete_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM import_batch_items;
    ELSE
        DELETE FROM import_batch_items WHERE batch_id IN (SELECT id FROM gone_batches);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER import_batches_delete_items AFTER DELETE ON import_batches
    REFERENCING OLD TABLE AS gone_batches FOR EACH STATEMENT EXECUTE FUNCTION import_batches_delete_items();
CREATE TRIGGER import_batches_truncate_items AFTER TRUNCATE ON import_batches
    FOR EACH STATEMENT EXECUTE FUNCTION import_batches_delete_items();

-- The summary view of 0002, with the items in flight counted as processing (same columns).
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
    b.completed_at
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
