-- Issue 19: a merged snapshot is its base plus one delta, and the content hash is kept as sums.
--
-- A snapshot is either full (base_id NULL: its partitions hold all its rows, as every snapshot
-- did before) or a delta on a full snapshot (base_id): its partitions hold only the rows a merge
-- added or replaced, and snapshot_masks lists the base rows it hides (replaced or removed). What
-- a snapshot holds, as readers see it, is its own rows plus its base's rows it does not mask; the
-- current_* views and the project's reads (projections.rows_of) say so in one place each. A merge
-- onto a delta snapshot writes a new delta on the same base (the old delta with the patch applied),
-- so there is never more than one delta between a reader and a base. Keys are stable across
-- snapshots (an entity's id is uuid5(kind, slug); a junction's or link's key is its pair of ids),
-- which is what lets a delta name the base row it replaces without reading the base.
--
-- The base of a kept snapshot is never deleted: snapshots.base_id is ON DELETE RESTRICT, cleanup
-- skips an archived snapshot that another snapshot stands on (it goes once its last dependant has
-- gone), and delete_snapshot_content refuses before dropping anything.

ALTER TABLE snapshots
    ADD COLUMN base_id uuid REFERENCES snapshots (id) ON DELETE RESTRICT,
    ADD COLUMN content_sums jsonb,
    ADD CONSTRAINT snapshots_base_not_self CHECK (base_id <> id);
CREATE INDEX snapshots_base ON snapshots (base_id) WHERE base_id IS NOT NULL;
COMMENT ON COLUMN snapshots.base_id IS
    'A delta snapshot: the full snapshot under it (its rows count unless masked); NULL: a full snapshot.';
COMMENT ON COLUMN snapshots.content_sums IS
    'Per kind [row count, sum of row hashes mod 2^256 in hex]: content hash v2, what a merge starts from.';
COMMENT ON COLUMN snapshots.content_hash IS
    'sha256 of the content: v2 (musingly-content-v2) combines content_sums; v1 hashes (no sums) never match v2.';

-- The base rows a delta snapshot hides: replaced by one of its own rows, or removed. id2 is the
-- second id of a junction's or link's key (the nil uuid for an entity).
CREATE TABLE snapshot_masks (
    snapshot_id  uuid NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    table_name   text NOT NULL CHECK (table_name = ANY (content_tables())),
    id           uuid NOT NULL,
    id2          uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    PRIMARY KEY (snapshot_id, table_name, id, id2)
);
COMMENT ON TABLE snapshot_masks IS 'Base rows a delta snapshot hides (replaced or removed), by key.';

-- References of a delta's partition resolve in the effective snapshot: its own rows (the parent
-- table, so a kind with no delta rows has no partition to name) or its base's rows not masked.
-- A delta is small: index probes, nested loops on.
CREATE FUNCTION check_delta_references(p_table text, p_snapshot_id uuid, p_base_id uuid) RETURNS void
LANGUAGE plpgsql SET enable_nestloop = on AS $$
DECLARE
    v_name text := snapshot_partition(p_table, p_snapshot_id);
    v_ref record;
    v_bad uuid;
BEGIN
    FOR v_ref IN SELECT * FROM content_references() WHERE referencing = p_table AND referenced <> 'snapshots' LOOP
        EXECUTE format('SELECT n.%1$I FROM %2$I n WHERE n.%1$I IS NOT NULL '
                       'AND NOT EXISTS (SELECT 1 FROM %3$I p WHERE p.snapshot_id = $1 AND p.id = n.%1$I) '
                       'AND NOT EXISTS (SELECT 1 FROM %3$I p WHERE p.snapshot_id = $2 AND p.id = n.%1$I '
                       '  AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = $1 '
                       '    AND m.table_name = %4$L AND m.id = p.id)) LIMIT 1',
                       v_ref.ref_column, v_name, v_ref.referenced, v_ref.referenced)
            INTO v_bad USING p_snapshot_id, p_base_id;
        IF v_bad IS NOT NULL THEN
            RAISE EXCEPTION 'insert or update on table "%" violates reference %.% -> %: % is not in snapshot %',
                p_table, p_table, v_ref.ref_column, v_ref.referenced, v_bad, p_snapshot_id
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'a row may only refer to rows of its own snapshot (or of its base, not masked)';
        END IF;
    END LOOP;
END $$;

-- As in 0001, plus: a delta snapshot's partition checks its references against the effective
-- snapshot (check_delta_references) instead of its own partitions only; and the partition is
-- analyzed before it is attached. A fresh partition has no statistics until autovacuum gets to it,
-- and the readers' queries were planned blind meanwhile: the prerequisite-graph query took 1.5 s at
-- 100k sparks right after an import, 33 ms once analyzed. A coarse sample (statistics target 10:
-- about 0.1 s for all nine tables at 100k sparks, against 0.5 s at the default 100) is enough to plan
-- joins by id and slug; ANALYZE a partition yourself for finer statistics.
CREATE OR REPLACE FUNCTION finish_snapshot_partition(p_table text, p_snapshot_id uuid) RETURNS void
LANGUAGE plpgsql SET enable_nestloop = off SET default_statistics_target = 10 AS $$
DECLARE
    v_name text := snapshot_partition(p_table, p_snapshot_id);
    v_parent regclass := p_table::regclass;
    v_def text;
    v_ref record;
    v_bad uuid;
    v_base uuid;
BEGIN
    FOR v_def IN SELECT pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE conrelid = v_parent AND contype IN ('p', 'u') ORDER BY contype, conname LOOP
        EXECUTE format('ALTER TABLE %I ADD %s', v_name, v_def);
    END LOOP;
    FOR v_def IN SELECT substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$') FROM pg_index i
                 WHERE i.indrelid = v_parent
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
                 ORDER BY i.indexrelid LOOP
        EXECUTE format('CREATE INDEX ON %I %s', v_name, v_def);
    END LOOP;
    PERFORM 1 FROM snapshots WHERE id = p_snapshot_id FOR KEY SHARE;
    IF NOT FOUND THEN
        EXECUTE format('SELECT snapshot_id FROM %I LIMIT 1', v_name) INTO v_bad;
        IF v_bad IS NOT NULL THEN
            RAISE EXCEPTION 'insert or update on table "%" violates reference %.snapshot_id -> snapshots: % is not in snapshot %',
                p_table, p_table, v_bad, p_snapshot_id
                USING ERRCODE = 'foreign_key_violation', HINT = 'a row may only refer to rows of its own snapshot';
        END IF;
    END IF;
    SELECT base_id INTO v_base FROM snapshots WHERE id = p_snapshot_id;
    IF v_base IS NOT NULL THEN
        PERFORM check_delta_references(p_table, p_snapshot_id, v_base);
    ELSE
        FOR v_ref IN SELECT * FROM content_references() WHERE referencing = p_table AND referenced <> 'snapshots' LOOP
            EXECUTE format('SELECT n.%1$I FROM %2$I n WHERE n.%1$I IS NOT NULL AND NOT EXISTS '
                           '(SELECT 1 FROM %3$I p WHERE p.id = n.%1$I)',
                           v_ref.ref_column, v_name, snapshot_partition(v_ref.referenced, p_snapshot_id))
                INTO v_bad;
            IF v_bad IS NOT NULL THEN
                RAISE EXCEPTION 'insert or update on table "%" violates reference %.% -> %: % is not in snapshot %',
                    p_table, p_table, v_ref.ref_column, v_ref.referenced, v_bad, p_snapshot_id
                    USING ERRCODE = 'foreign_key_violation',
                          HINT = 'a row may only refer to rows of its own snapshot';
            END IF;
        END LOOP;
    END IF;
    EXECUTE format('ANALYZE %I', v_name);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES IN (%L)', p_table, v_name, p_snapshot_id);
    -- The parent's own statistics (over all its partitions) are what the planner uses to estimate
    -- a join of two partitioned tables by id; without them it took every id for 1 in 200 and planned
    -- a diff of 20k sparks' links as a hash join of 10^14 rows (24 s, 0.17 s once analyzed). Autovacuum
    -- never analyzes a partitioned table, so the first full import does, on its key columns (ids and
    -- slugs); ids keep their share of distinct values as partitions are added, so once is enough.
    IF v_base IS NULL AND NOT EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = current_schema()
                                      AND tablename = p_table AND inherited) THEN
        EXECUTE format('ANALYZE %I (%s)', p_table,
                       (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                        WHERE attrelid = v_parent AND attnum > 0 AND NOT attisdropped
                          AND (atttypid = 'uuid'::regtype OR attname = 'slug')));
    END IF;
END $$;

-- As in 0001, plus: a snapshot another one stands on (its base) is refused before anything is dropped.
CREATE OR REPLACE FUNCTION delete_snapshot_content(p_snapshot_id uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
    v_dependant record;
BEGIN
    PERFORM 1 FROM snapshots WHERE id = p_snapshot_id FOR UPDATE;
    SELECT id, version_label INTO v_dependant FROM snapshots WHERE base_id = p_snapshot_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'snapshot % is the base of snapshot % (%), which keeps only its changes on top of it; delete that one first',
            p_snapshot_id, v_dependant.id, v_dependant.version_label
            USING ERRCODE = 'dependent_objects_still_exist';
    END IF;
    FOREACH v_table IN ARRAY content_tables() LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', snapshot_partition(v_table, p_snapshot_id));
    END LOOP;
    UPDATE import_logs SET status = 'failed', completed_at = coalesce(completed_at, clock_timestamp()),
                           error_message = 'its snapshot was deleted before promotion'
    WHERE snapshot_id = p_snapshot_id AND status IN ('pending', 'importing', 'ready');
    DELETE FROM snapshots WHERE id = p_snapshot_id;
END $$;

-- As in 0001, plus: an archived snapshot that a kept snapshot stands on (its base) is kept until
-- its last dependant goes; one whose dependants all go in the same cleanup goes with them (the
-- dependants first).
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
    -- archived ones are deleted, unless a snapshot that stays stands on them. Drafts and ready
    -- snapshots await review and are left alone.
    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO v_ids FROM (
        SELECT id, status, row_number() OVER (ORDER BY (status = 'current') DESC, promoted_at DESC NULLS LAST, created_at DESC) AS n
        FROM snapshots WHERE status IN ('current', 'archived')
    ) ranked
    WHERE n > p_keep_count AND status = 'archived';
    v_ids := ARRAY(SELECT d FROM unnest(v_ids) AS d
                   WHERE NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.base_id = d AND s.id <> ALL (v_ids))
                   ORDER BY d);
    PERFORM 1 FROM snapshots WHERE id = ANY (v_ids) ORDER BY id FOR UPDATE;
    -- deltas before their bases
    FOR v_id IN SELECT id FROM snapshots WHERE id = ANY (v_ids) ORDER BY (base_id IS NULL), id LOOP
        PERFORM delete_snapshot_content(v_id);
    END LOOP;
    RETURN cardinality(v_ids);
END $$;
COMMENT ON FUNCTION cleanup_old_snapshots IS 'Keeps the keep_count most recently published snapshots, deletes older archived ones no kept snapshot stands on; returns how many.';

-- ---------------------------------------------------------------------------------------------
-- Readers' views, as in 0001, over the effective snapshot: the rows of the current snapshot's
-- partition and, for a delta, of its base's, minus the base rows the delta masks, all with the
-- current snapshot's id. One scan of the parent table per view and table (snapshot_id IN (current,
-- base): pruned to one or two partitions when the query starts; for a full snapshot the base is
-- NULL), so the planner keeps the tables' statistics and plans joins as it did on 0001's views.
-- (A UNION ALL of the two partitions was tried first: its row estimates are lost through the union,
-- and the prerequisite-graph query went from 33 ms to over a second, mostly JIT compilation of a
-- plan estimated at 10^15 rows.) Joins are by id; a view with slugs joins the same rows of the
-- table it names.
--
-- JIT compilation is turned off for this database. These views' queries take tens of
-- milliseconds, but the planner's estimates for partitions not yet analyzed (a fresh import's) are
-- far above jit_above_cost, and compiling a plan took about a second (the prerequisite-graph query
-- at 100k sparks: 30 ms of work, 1.1 s with JIT; 0001's views paid it too: 390 ms against 30). A
-- database used for analytics can turn it back on: ALTER DATABASE ... SET jit = on. Without the
-- privilege to change the database (not its owner), the migration says so and goes on.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'could not turn JIT off for database %: %; run ALTER DATABASE % SET jit = off as its owner',
        current_database(), SQLERRM, current_database();
END $$;

DROP VIEW current_snapshot CASCADE;
CREATE VIEW current_snapshot AS
    SELECT * FROM snapshots WHERE status = 'current';

CREATE VIEW current_domains AS
    SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.id, x.name, x.slug, x.description, x.icon, x.color, x.is_published
    FROM domains x
    WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
      AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                      AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'domains' AND m.id = x.id);
CREATE VIEW current_sparks AS
    SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.id, x.title, x.slug, x.summary, x.content_md, x.difficulty_level, x.estimated_minutes, x.is_published
    FROM sparks x
    WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
      AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                      AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'sparks' AND m.id = x.id);
CREATE VIEW current_beacons AS
    SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.id, x.name, x.slug, x.description, x.category
    FROM beacons x
    WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
      AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                      AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'beacons' AND m.id = x.id);
CREATE VIEW current_trails AS
    SELECT t.*, d.slug AS domain_slug
    FROM (
        SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.id, x.domain_id, x.title, x.slug, x.description, x.difficulty_level, x.is_published
        FROM trails x
        WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
          AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                          AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'trails' AND m.id = x.id)
    ) t
    JOIN current_domains d ON d.id = t.domain_id;
CREATE VIEW current_concepts AS
    SELECT c.*, t.slug AS trail_slug
    FROM (
        SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.id, x.trail_id, x.title, x.slug, x.description, x.order_index, x.is_published
        FROM concepts x
        WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
          AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                          AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'concepts' AND m.id = x.id)
    ) c
    LEFT JOIN (
        SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.id, x.domain_id, x.title, x.slug, x.description, x.difficulty_level, x.is_published
        FROM trails x
        WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
          AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                          AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'trails' AND m.id = x.id)
    ) t ON t.id = c.trail_id;
CREATE VIEW current_concept_sparks AS
    SELECT j.*, c.slug AS concept_slug, p.slug AS spark_slug
    FROM (
        SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.concept_id, x.spark_id, x.order_index
        FROM concept_sparks x
        WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
          AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                          AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'concept_sparks' AND m.id = x.concept_id AND m.id2 = x.spark_id)
    ) j
    JOIN (
        SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.id, x.trail_id, x.title, x.slug, x.description, x.order_index, x.is_published
        FROM concepts x
        WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
          AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                          AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'concepts' AND m.id = x.id)
    ) c ON c.id = j.concept_id
    JOIN current_sparks p ON p.id = j.spark_id;
CREATE VIEW current_spark_beacons AS
    SELECT j.*, p.slug AS spark_slug, b.slug AS beacon_slug
    FROM (
        SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.spark_id, x.beacon_id
        FROM spark_beacons x
        WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
          AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                          AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'spark_beacons' AND m.id = x.spark_id AND m.id2 = x.beacon_id)
    ) j
    JOIN current_sparks p ON p.id = j.spark_id
    JOIN current_beacons b ON b.id = j.beacon_id;
CREATE VIEW current_spark_links AS
    SELECT l.*, a.slug AS source_slug, b.slug AS target_slug
    FROM (
        SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.source_id, x.target_id, x.link_type, x.weight, x.description
        FROM spark_links x
        WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
          AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                          AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'spark_links' AND m.id = x.source_id AND m.id2 = x.target_id)
    ) l
    JOIN current_sparks a ON a.id = l.source_id
    JOIN current_sparks b ON b.id = l.target_id;
CREATE VIEW current_concept_links AS
    SELECT l.*, a.slug AS source_slug, b.slug AS target_slug
    FROM (
        SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.source_id, x.target_id, x.link_type, x.weight, x.description
        FROM concept_links x
        WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
          AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                          AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'concept_links' AND m.id = x.source_id AND m.id2 = x.target_id)
    ) l
    JOIN (
        SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.id, x.trail_id, x.title, x.slug, x.description, x.order_index, x.is_published
        FROM concepts x
        WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
          AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                          AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'concepts' AND m.id = x.id)
    ) a ON a.id = l.source_id
    JOIN (
        SELECT (SELECT id FROM current_snapshot) AS snapshot_id, x.id, x.trail_id, x.title, x.slug, x.description, x.order_index, x.is_published
        FROM concepts x
        WHERE x.snapshot_id IN ((SELECT id FROM current_snapshot), (SELECT base_id FROM current_snapshot))
          AND NOT EXISTS (SELECT 1 FROM snapshot_masks m WHERE m.snapshot_id = (SELECT id FROM current_snapshot)
                          AND m.snapshot_id <> x.snapshot_id AND m.table_name = 'concepts' AND m.id = x.id)
    ) b ON b.id = l.target_id;
