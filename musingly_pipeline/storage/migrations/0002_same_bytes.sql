-- The same bytes imported again are recognised before they are parsed (issue 19, part 2).
--
-- A full import of a file records the file's sha256 on its log, with the version of the rules it
-- was checked with (see musingly_pipeline/bundles/same_bytes.py, rules_version()); a merge never
-- does, since a merge's file says nothing about the content it results in. A later full import of
-- the same bytes, under the same rules, finds the ready or current snapshot that log names and
-- reuses it without parsing the file. What the parse would have given comes from there: the
-- version label and metadata from the log, the counts from snapshots.entity_counts, and the rules'
-- warnings from snapshots.warnings.
--
-- A log records the sha256 only if its file's warnings are its snapshot's warnings (they name
-- places in the file, so another file with the same content may have others): a log with
-- (source_sha256, rules_version) on snapshot S says that these bytes, under these rules, give S's
-- content and S's warnings.

ALTER TABLE import_logs
    ADD COLUMN source_sha256 text,
    ADD COLUMN rules_version text;

COMMENT ON COLUMN import_logs.source_sha256 IS
    'sha256 of the file a successful full import read (never a merge''s): the same bytes reuse its snapshot without parsing.';
COMMENT ON COLUMN import_logs.rules_version IS
    'The version of the contracts and rules the file was checked with; a reuse by source_sha256 needs the same.';

CREATE INDEX import_logs_source_sha256 ON import_logs (source_sha256, rules_version)
    WHERE source_sha256 IS NOT NULL;

-- The rules' warnings of the content as imported (Issue.to_dict() of each, in the report's order);
-- NULL when they are not known (a snapshot made before this migration, or from a bundle the caller
-- had already validated).
ALTER TABLE snapshots ADD COLUMN warnings jsonb;

COMMENT ON COLUMN snapshots.warnings IS
    'The rules'' warnings of the content as imported, as a JSON array of issues (NULL: not known).';
