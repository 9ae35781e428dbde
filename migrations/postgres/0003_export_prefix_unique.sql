-- Two export jobs must never write the same prefix of the same bucket. The layout of
-- PRODUCT.md §2 (<snapDate minute>/<job creation second>) allows a clash when two snapshots of a
-- cluster taken in the same minute are exported in the same second; the API then moves the
-- second job's timestamp on by a second, and this index is the backstop against a race.
CREATE UNIQUE INDEX export_jobs_bucket_prefix ON export_jobs(export_bucket_id, prefix);
