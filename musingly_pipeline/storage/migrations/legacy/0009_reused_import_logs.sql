-- A reused import's log follows its snapshot.
--
-- Two imports of the same content share one snapshot. Promoting one of them used to leave the
-- other's log 'ready', and it still said 'ready' once the snapshot was archived. Promoting a
-- snapshot now promotes every ready log of it (the reuse path in storage/snapshots.py records a
-- reuse of the current snapshot as 'promoted' itself), and a rollback rolls them all back.

-- 0001's promote_import; the promoted snapshot's ready logs (imports that reused it) are promoted
-- with the one named.
CREATE OR REPLACE FUNCTION promote_import(p_import_id uuid, p_snapshot_id uuid DEFAULT NULL)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_log import_logs%ROWTYPE;
    v_snap snapshots%ROWTYPE;
    v_current uuid;
BEGIN
    PERFORM lock_snapshot_lifecycle();
    SELECT * INTO v_log FROM import_logs WHERE id = p_import_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'import % does not exist; see `musingly imports`', p_import_id USING ERRCODE = 'no_data_found';
    END IF;
    -- The status first: a log whose snapshot was deleted (delete-draft) is failed, and says why.
    IF v_log.status NOT IN ('ready', 'promoted') OR v_log.snapshot_id IS NULL THEN
        RAISE EXCEPTION 'import % is %, not ready; only a ready import can be promoted', p_import_id,
            v_log.status || coalesce(' (' || v_log.error_message || ')', '')
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF p_snapshot_id IS NOT NULL AND v_log.snapshot_id IS DISTINCT FROM p_snapshot_id THEN
        RAISE EXCEPTION 'import % made snapshot %, not %', p_import_id, v_log.snapshot_id, p_snapshot_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_snap FROM snapshots WHERE id = v_log.snapshot_id FOR UPDATE;
    IF v_snap.status = 'current' THEN  -- already current (same content imported again): nothing moves
        UPDATE import_logs SET status = 'promoted', completed_at = clock_timestamp()
        WHERE id = p_import_id OR (snapshot_id = v_snap.id AND status = 'ready');
        RETURN v_snap.id;
    END IF;
    IF v_snap.status <> 'ready' THEN
        RAISE EXCEPTION 'snapshot % is %, not ready; only a ready snapshot can be promoted (use rollback_import to return to an archived one)',
            v_snap.id, v_snap.status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE snapshots SET status = 'archived', archived_at = clock_timestamp()
    WHERE status = 'current' RETURNING id INTO v_current;
    UPDATE snapshots SET status = 'current', promoted_at = clock_timestamp(), previous_id = v_current
    WHERE id = v_snap.id;
    UPDATE import_logs SET status = 'promoted', completed_at = clock_timestamp()
    WHERE id = p_import_id OR (snapshot_id = v_snap.id AND status = 'ready');
    RETURN v_snap.id;
END $$;
COMMENT ON FUNCTION promote_import IS 'Promotes the import''s ready snapshot to current (with every ready log of it); the previous current one is archived.';

-- Logs left 'ready' by the old promote_import while their snapshot went live.
UPDATE import_logs l SET status = 'promoted'
FROM snapshots s
WHERE s.id = l.snapshot_id AND l.status = 'ready' AND s.status IN ('current', 'archived');
