-- The retention task (src/jobs/retention.rs) deletes expired snapshot records on every node at
-- its interval; this index keeps that conditional DELETE from scanning every snapshot.
CREATE INDEX snapshots_expiry ON snapshots(expires_at);
