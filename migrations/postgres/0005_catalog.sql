-- Namespace filters (issue 13): an export job created through the /api/snapex/v1 extension may
-- name the collections it exports, as JSON {"include": [...], "exclude": [...]} of
-- mongorestore-style patterns; NULL exports everything (every job created before, and every
-- job created through the Atlas endpoints).
ALTER TABLE export_jobs ADD COLUMN namespaces TEXT;

-- The backup catalog (issue 13): every backup a watched location registered, keyed by its
-- cluster and URL so that several nodes watching one location register it once (the first
-- INSERT wins; the others see the unique key). The row outlives its snapshot record (retention
-- deletes records, never this row), so an expired backup is never registered again.
CREATE TABLE catalog_backups (
    cluster_id   TEXT NOT NULL,
    backup_url   TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    location     TEXT NOT NULL,
    snapshot_id  TEXT,              -- NULL while the claiming node imports it
    claimed_by   TEXT NOT NULL,
    claimed_at   BIGINT NOT NULL,
    gone_at      BIGINT,            -- when a listing no longer found it
    PRIMARY KEY (cluster_id, backup_url)
);
CREATE INDEX catalog_backups_snapshot ON catalog_backups(snapshot_id);
