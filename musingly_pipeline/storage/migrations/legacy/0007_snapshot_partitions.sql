-- Content tables partitioned by snapshot: one partition per snapshot and table.
--
-- Why: a snapshot is written once, whole, and then only read or dropped. Loading 700k rows into
-- tables that already hold other snapshots means inserting every key into large live B-trees (and
-- writing every row into the reference triggers' transition tables); loading them into a fresh table
-- and then building its indexes by sorting costs less than half of that. So an import now:
--
--   1. prepare_snapshot_partition(table, snapshot): a plain table shaped like the content table
--      (same columns, defaults, CHECKs, plus CHECK (snapshot_id = ...)), visible to no one else;
--   2. COPY into it;
--   3. finish_snapshot_partition(table, snapshot): builds its keys and indexes (the parent's, by
--      sort), checks its references against the snapshot's already attached tables (one anti-join
--      per reference, the same rule and the same foreign_key_violation error as the triggers), and
--      attaches it (the CHECK proves the partition bound: no scan).
--
-- Tables go in dependency order, so each reference finds its target attached. Everything happens in
-- the import's transaction: a failed or killed import leaves no table behind.
--
-- The guide's create_import_snapshot still works as the guide shows (INSERT into the content tables
-- after it): it creates the new snapshot's partitions, attached and empty, and rows inserted through
-- the parents are checked by the statement triggers of 0001/0005, which move to the new parents.
-- delete_snapshot_content drops a snapshot's partitions instead of deleting their rows.
--
-- Locks: attaching takes SHARE UPDATE EXCLUSIVE on the parent until commit (two imports attach one
-- after the other; readers and writers of other snapshots are not blocked); dropping a partition
-- (delete-draft, cleanup) takes ACCESS EXCLUSIVE on the parent for the rest of that short
-- transaction. Both go through the tables in the same order (content_tables()), so they cannot
-- deadlock each other.

-- The content tables in dependency order, and their references (0001's list, now in one place).
CREATE FUNCTION content_tables() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['domains', 'trails', 'concepts', 'sparks', 'beacons', 'concept_sparks', 'spark_beacons',
                 'spark_links', 'concept_links']
$$;

CREATE FUNCTION content_references(OUT referencing text, OUT ref_column text, OUT referenced text)
RETURNS SETOF record LANGUAGE sql IMMUTABLE AS $$
    VALUES ('domains', 'snapshot_id', 'snapshots'), ('trails', 'snapshot_id', 'snapshots'),
           ('concepts', 'snapshot_id', 'snapshots'), ('sparks', 'snapshot_id', 'snapshots'),
           ('beacons', 'snapshot_id', 'snapshots'),
           ('trails', 'domain_id', 'domains'), ('concepts', 'trail_id', 'trails'),
           ('concept_sparks', 'concept_id', 'concepts'), ('concept_sparks', 'spark_id', 'sparks'),
           ('spark_beacons', 'spark_id', 'sparks'), ('spark_beacons', 'beacon_id', 'beacons'),
           ('spark_links', 'source_id', 'sparks'), ('spark_links', 'target_id', 'sparks'),
           ('concept_links', 'source_id', 'concepts'), ('concept_links', 'target_id', 'concepts')
$$;

-- The partition of table p_table holding snapshot p_snapshot_id, e.g. sparks_6f1c...(32 hex digits).
CREATE FUNCTION snapshot_partition(p_table text, p_snapshot_id uuid) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT p_table || '_' || replace(p_snapshot_id::text, '-', '')
$$;

-- The views name the tables; they are made again below.
DROP VIEW current_domains, current_trails, current_concepts, current_sparks, current_beacons,
          current_concept_sparks, current_spark_beacons, current_spark_links, current_concept_links;

-- Each table becomes a partitioned table of the same shape (LIKE ... INCLUDING ALL: columns,
-- defaults, CHECKs, keys and indexes, which become partitioned indexes); the old table and its
-- indexes are renamed out of the way first, so the new ones get the old names.
DO $$
DECLARE
    v_table text;
    v_index text;
BEGIN
    FOREACH v_table IN ARRAY content_tables() LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', v_table, v_table || '_0006');
        FOR v_index IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                       WHERE i.indrelid = (v_table || '_0006')::regclass LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', v_index, v_index || '_0006');
        END LOOP;
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING ALL) PARTITION BY LIST (snapshot_id)',
                       v_table, v_table || '_0006');
    END LOOP;
END $$;
-- LIKE names plain indexes after their columns; give them 0001's names back.
ALTER INDEX trails_snapshot_id_domain_id_idx RENAME TO trails_domain;
ALTER INDEX concepts_snapshot_id_trail_id_idx RENAME TO concepts_trail;
ALTER INDEX concept_sparks_snapshot_id_spark_id_idx RENAME TO concept_sparks_spark;
ALTER INDEX spark_beacons_snapshot_id_beacon_id_idx RENAME TO spark_beacons_beacon;
ALTER INDEX spark_links_snapshot_id_target_id_idx RENAME TO spark_links_target;
ALTER INDEX concept_links_snapshot_id_target_id_idx RENAME TO concept_links_target;

-- The partitions of a snapshot, attached and empty (the guide's path: rows INSERTed afterwards).
CREATE FUNCTION create_snapshot_partitions(p_snapshot_id uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY content_tables() LOOP
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES IN (%L)',
                       snapshot_partition(v_table, p_snapshot_id), v_table, p_snapshot_id);
    END LOOP;
END $$;

-- A detached table to bulk-load one table of a snapshot into; returns its name.
CREATE FUNCTION prepare_snapshot_partition(p_table text, p_snapshot_id uuid) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_name text := snapshot_partition(p_table, p_snapshot_id);
BEGIN
    IF NOT p_table = ANY (content_tables()) THEN
        RAISE EXCEPTION '% is not a content table', p_table USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
                   'CONSTRAINT %I CHECK (snapshot_id = %L::uuid))',
                   v_name, p_table, left(v_name, 57) || '_bound', p_snapshot_id);
    RETURN v_name;
END $$;

-- Keys, indexes, reference checks and ATTACH for a table made by prepare_snapshot_partition.
-- Nested loops are off: the reference checks are anti-joins over whole tables, best hashed.
CREATE FUNCTION finish_snapshot_partition(p_table text, p_snapshot_id uuid) RETURNS void
LANGUAGE plpgsql SET enable_nestloop = off AS $$
DECLARE
    v_name text := snapshot_partition(p_table, p_snapshot_id);
    v_parent regclass := p_table::regclass;
    v_def text;
    v_ref record;
    v_bad uuid;
BEGIN
    -- The parent's primary key and unique constraints, then its other indexes, built by sort.
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
    -- References: the same rules and errors as content_check_references.
    FOR v_ref IN SELECT * FROM content_references() WHERE referencing = p_table LOOP
        IF v_ref.referenced = 'snapshots' THEN
            PERFORM 1 FROM snapshots WHERE id = p_snapshot_id FOR KEY SHARE;
            IF NOT FOUND THEN
                EXECUTE format('SELECT snapshot_id FROM %I LIMIT 1', v_name) INTO v_bad;
            END IF;
        ELSE
            EXECUTE format('SELECT n.%1$I FROM %2$I n WHERE n.%1$I IS NOT NULL AND NOT EXISTS '
                           '(SELECT 1 FROM %3$I p WHERE p.id = n.%1$I)',
                           v_ref.ref_column, v_name, snapshot_partition(v_ref.referenced, p_snapshot_id))
                INTO v_bad;
        END IF;
        IF v_bad IS NOT NULL THEN
            RAISE EXCEPTION 'insert or update on table "%" violates reference %.% -> %: % is not in snapshot %',
                p_table, p_table, v_ref.ref_column, v_ref.referenced, v_bad, p_snapshot_id
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'a row may only refer to rows of its own snapshot';
        END IF;
    END LOOP;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES IN (%L)', p_table, v_name, p_snapshot_id);
END $$;

-- The rows so far, each snapshot's in its own partition.
DO $$
DECLARE
    v_table text;
BEGIN
    PERFORM create_snapshot_partitions(id) FROM snapshots;
    FOREACH v_table IN ARRAY content_tables() LOOP
        EXECUTE format('INSERT INTO %I SELECT * FROM %I', v_table, v_table || '_0006');
    END LOOP;
    FOREACH v_table IN ARRAY content_tables() LOOP
        EXECUTE format('DROP TABLE %I', v_table || '_0006');
    END LOOP;
END $$;

-- 0001's reference triggers, on the partitioned tables (statement triggers with transition tables
-- see the rows of every partition a statement writes).
DO $$
DECLARE
    v_ref record;
    v_parent text;
    v_args text;
    v_event text;
BEGIN
    FOR v_ref IN SELECT * FROM content_references() LOOP
        FOREACH v_event IN ARRAY ARRAY['insert', 'update'] LOOP
            EXECUTE format(
                'CREATE TRIGGER %I AFTER %s ON %I REFERENCING NEW TABLE AS new_rows '
                'FOR EACH STATEMENT EXECUTE FUNCTION content_check_references(%L, %L)',
                format('ref_%s_%s_%s', v_event, v_ref.ref_column, v_ref.referenced), upper(v_event),
                v_ref.referencing, v_ref.referenced, v_ref.ref_column);
        END LOOP;
    END LOOP;
    FOREACH v_parent IN ARRAY ARRAY['domains', 'trails', 'concepts', 'sparks', 'beacons'] LOOP
        SELECT string_agg(format('%L, %L', referencing, ref_column), ', ') INTO v_args
        FROM content_references() WHERE referenced = v_parent;
        FOREACH v_event IN ARRAY ARRAY['delete', 'update'] LOOP
            EXECUTE format(
                'CREATE TRIGGER %I AFTER %s ON %I REFERENCING OLD TABLE AS old_rows '
                'FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced(%s)',
                format('referenced_%s', v_event), upper(v_event), v_parent, v_args);
        END LOOP;
    END LOOP;
END $$;

-- The snapshot row alone (0001's create_import_snapshot, renamed): the bulk loader adds each
-- partition itself (prepare/finish above).
ALTER FUNCTION create_import_snapshot(text, text, text, uuid, text) RENAME TO create_snapshot_row;
COMMENT ON FUNCTION create_snapshot_row IS 'Creates a new draft snapshot row without partitions (the bulk loader adds them).';

-- The guide's function: the snapshot row, then its (empty, attached) partitions.
CREATE FUNCTION create_import_snapshot(
    p_name text, p_version_label text, p_description text DEFAULT NULL, p_parent_id uuid DEFAULT NULL,
    p_content_hash text DEFAULT NULL
) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid := create_snapshot_row(p_name, p_version_label, p_description, p_parent_id, p_content_hash);
BEGIN
    PERFORM create_snapshot_partitions(v_id);
    RETURN v_id;
END $$;
COMMENT ON FUNCTION create_import_snapshot IS 'Creates a new draft snapshot (and its empty partitions); the parent defaults to the current one.';

-- A snapshot's content goes with its partitions (in content_tables() order, as imports attach).
CREATE OR REPLACE FUNCTION delete_snapshot_content(p_snapshot_id uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY content_tables() LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', snapshot_partition(v_table, p_snapshot_id));
    END LOOP;
    UPDATE import_logs SET status = 'failed', completed_at = coalesce(completed_at, clock_timestamp()),
                           error_message = 'its snapshot was deleted before promotion'
    WHERE snapshot_id = p_snapshot_id AND status IN ('pending', 'importing', 'ready');
    DELETE FROM snapshots WHERE id = p_snapshot_id;
END $$;

-- 0001's readers' views, with the current snapshot's id as a parameter (an InitPlan) instead of a
-- join, so every table in them is pruned to that snapshot's partition when the query starts.
CREATE VIEW current_domains AS
    SELECT d.* FROM domains d WHERE d.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_trails AS
    SELECT t.*, d.slug AS domain_slug
    FROM trails t JOIN domains d ON d.snapshot_id = t.snapshot_id AND d.id = t.domain_id
    WHERE t.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_concepts AS
    SELECT c.*, t.slug AS trail_slug
    FROM concepts c LEFT JOIN trails t ON t.snapshot_id = c.snapshot_id AND t.id = c.trail_id
    WHERE c.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_sparks AS
    SELECT p.* FROM sparks p WHERE p.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_beacons AS
    SELECT b.* FROM beacons b WHERE b.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_concept_sparks AS
    SELECT j.*, c.slug AS concept_slug, p.slug AS spark_slug
    FROM concept_sparks j
    JOIN concepts c ON c.snapshot_id = j.snapshot_id AND c.id = j.concept_id
    JOIN sparks p ON p.snapshot_id = j.snapshot_id AND p.id = j.spark_id
    WHERE j.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_spark_beacons AS
    SELECT j.*, p.slug AS spark_slug, b.slug AS beacon_slug
    FROM spark_beacons j
    JOIN sparks p ON p.snapshot_id = j.snapshot_id AND p.id = j.spark_id
    JOIN beacons b ON b.snapshot_id = j.snapshot_id AND b.id = j.beacon_id
    WHERE j.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_spark_links AS
    SELECT l.*, a.slug AS source_slug, b.slug AS target_slug
    FROM spark_links l
    JOIN sparks a ON a.snapshot_id = l.snapshot_id AND a.id = l.source_id
    JOIN sparks b ON b.snapshot_id = l.snapshot_id AND b.id = l.target_id
    WHERE l.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_concept_links AS
    SELECT l.*, a.slug AS source_slug, b.slug AS target_slug
    FROM concept_links l
    JOIN concepts a ON a.snapshot_id = l.snapshot_id AND a.id = l.source_id
    JOIN concepts b ON b.snapshot_id = l.snapshot_id AND b.id = l.target_id
    WHERE l.snapshot_id = (SELECT id FROM current_snapshot);
