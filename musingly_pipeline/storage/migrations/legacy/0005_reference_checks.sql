-- Faster reference checks for bulk loads (same rules, same errors as 0001's).
--
-- 0001's check asks for "LIMIT 1" missing reference. With LIMIT 1 the planner expects to find one
-- early and always picks a nested loop: one index probe of the referenced table per inserted row.
-- That suits an INSERT of a few rows but costs 0.6 s per reference column for a 300k-row COPY.
-- From BULK_ROWS rows on, the check is asked without the LIMIT and with the snapshot as a
-- parameter, so the planner picks a hash anti join whose hash side reads only that snapshot's rows
-- of the referenced table. Below it, the 0001 form stays: hashing a large snapshot's rows for a
-- 100-row INSERT would cost far more than 100 probes.
CREATE OR REPLACE FUNCTION content_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c_bulk_rows constant bigint := 20000;
    v_parent text := TG_ARGV[0];
    v_column text := TG_ARGV[1];
    v_snapshots uuid[];
    v_rows bigint;
    v_snapshot uuid;
    v_ref uuid;
BEGIN
    SELECT array_agg(DISTINCT snapshot_id), count(*) INTO v_snapshots, v_rows FROM new_rows;
    PERFORM 1 FROM snapshots WHERE id = ANY (v_snapshots) FOR KEY SHARE;
    IF v_parent = 'snapshots' THEN
        SELECT s, s INTO v_snapshot, v_ref FROM unnest(v_snapshots) AS s
        WHERE NOT EXISTS (SELECT 1 FROM snapshots p WHERE p.id = s) LIMIT 1;
    ELSIF v_rows < c_bulk_rows OR cardinality(v_snapshots) > 1 THEN
        EXECUTE format(
            'SELECT n.snapshot_id, n.%1$I FROM new_rows n WHERE n.%1$I IS NOT NULL AND NOT EXISTS '
            '(SELECT 1 FROM %2$I p WHERE p.snapshot_id = n.snapshot_id AND p.id = n.%1$I) LIMIT 1',
            v_column, v_parent) INTO v_snapshot, v_ref;
    ELSE
        v_snapshot := v_snapshots[1];
        EXECUTE format(
            'SELECT n.%1$I FROM new_rows n WHERE n.%1$I IS NOT NULL AND NOT EXISTS '
            '(SELECT 1 FROM %2$I p WHERE p.snapshot_id = $1 AND p.id = n.%1$I)',
            v_column, v_parent) INTO v_ref USING v_snapshot;
        IF v_ref IS NULL THEN
            v_snapshot := NULL;
        END IF;
    END IF;
    IF v_snapshot IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "%" violates reference %.% -> %: % is not in snapshot %',
            TG_TABLE_NAME, TG_TABLE_NAME, v_column, v_parent, v_ref, v_snapshot
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'a row may only refer to rows of its own snapshot';
    END IF;
    RETURN NULL;
END $$;
