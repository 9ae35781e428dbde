-- Namespace filters (issue 13): an export job created through the /api/snapex/v1 extension may
-- name the collections it exports, as JSON {"include": [...], "exclude": [...]} of
-- mongorestore-style patterns; NULL exports everything (every job created before, and every
-- job created through the Atlas endpoints).
ALTER TABLE export_jobs ADD COLUMN namespaces TEXT;
