-- Imports racing cleanup and delete-draft: one lock order.
--
-- An import holds its parent snapshot's row (the FOR KEY SHARE of the parent_id foreign key) for
-- its whole transaction and then takes the content tables' locks, table after table. cleanup used to
-- drop partitions first (ACCESS EXCLUSIVE on every content table) and delete the snapshot rows
-- after, so a cleanup deleting an import's parent (archived by a promote meanwhile) waited for the
-- import's row lock while the import waited for a table: a deadlock. Now everything that deletes
-- snapshots locks their rows first, before any table, and an import locks its parent row before
-- any table: the two wait for each other in one order (rows, then tables), so they cannot deadlock.
-- (An import reusing a snapshot locks its row too, after rolling its own load back: see
-- storage/snapshots.py.)

-- 0007's create_snapshot_row (0001's create_import_snapshot), with its parent locked first. A
-- parent deleted meanwhile (archived by a promote, then cleaned up) gives way to the snapshot
-- current now, which is what "current at creation" means at this point.
CREATE OR REPLACE FUNCTION create_snapshot_row(
    p_name text, p_version_label text, p_description text DEFAULT NULL, p_parent_id uuid DEFAULT NULL,
    p_content_hash text DEFAULT NULL
) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_parent uuid;
    v_id uuid;
BEGIN
    IF p_parent_id IS NOT NULL THEN
        SELECT id INTO v_parent FROM snapshots WHERE id = p_parent_id FOR KEY SHARE;
    END IF;
    IF v_parent IS NULL THEN
        SELECT id INTO v_parent FROM snapshots WHERE status = 'current' FOR KEY SHARE;
    END IF;
    INSERT INTO snapshots (name, version_label, description, parent_id, content_hash)
    VALUES (coalesce(p_name, p_version_label), p_version_label, p_description, v_parent, p_content_hash)
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION create_snapshot_row IS 'Creates a new draft snapshot row without partitions (the bulk loader adds them); locks its parent first.';

-- 0007's delete_snapshot_content, with the row locked before any partition is dropped.
CREATE OR REPLACE FUNCTION delete_snapshot_content(p_snapshot_id uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
BEGIN
    PERFORM 1 FROM snapshots WHERE id = p_snapshot_id FOR UPDATE;
    FOREACH v_table IN ARRAY content_tables() LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', snapshot_partition(v_table, p_snapshot_id));
    END LOOP;
    UPDATE import_logs SET status = 'failed', completed_at = coalesce(completed_at, clock_timestamp()),
                           error_message = 'its snapshot was deleted before promotion'
    WHERE snapshot_id = p_snapshot_id AND status IN ('pending', 'importing', 'ready');
    DELETE FROM snapshots WHERE id = p_snapshot_id;
END $$;

-- 0001's cleanup_old_snapshots, locking every snapshot it deletes (in id order) before dropping
-- the first partition.
CREATE OR REPLACE FUNCTION cleanup_old_snapshots(p_keep_count integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_ids uuid[];
    v_id uuid;
BEGIN
    IF p_keep_count IS NULL OR p_keep_count < 1 THEN
        RAISE EXCEPTION 'keep_count must be at least 1 (the current snapshot is always kept)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM lock_snapshot_lifecycle();
    -- Published snapshots (current and archived), newest promotion first; past keep_count, the
    -- archived ones are deleted. Drafts and ready snapshots await review and are left alone.
    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO v_ids FROM (
        SELECT id, status, row_number() OVER (ORDER BY (status = 'current') DESC, promoted_at DESC NULLS LAST, created_at DESC) AS n
        FROM snapshots WHERE status IN ('current', 'archived')
    ) ranked
    WHERE n > p_keep_count AND status = 'archived';
    PERFORM 1 FROM snapshots WHERE id = ANY (v_ids) ORDER BY id FOR UPDATE;
    FOREACH v_id IN ARRAY v_ids LOOP
        PERFORM delete_snapshot_content(v_id);
    END LOOP;
    RETURN cardinality(v_ids);
END $$;
