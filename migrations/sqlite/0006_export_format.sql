-- Export format of a job (snapex extension, POST /api/snapex/v1/.../backup/exports): NULL is
-- Atlas's JSON layout; otherwise a JSON object {"format": "parquet", "rowGroupRows": N,
-- "compression": "zstd"|"snappy"} that the job engine reads (src/service/export_jobs.rs).
ALTER TABLE export_jobs ADD COLUMN export_format TEXT;
