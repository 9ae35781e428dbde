//! The export pipeline: snapshot sources, the Extended JSON encoder (BSON corpus and
//! mongodump fixtures), the storage backends, the engine end to end, and readers of its output
//! we did not write: one test binary (each binary links the whole crate, which is what a build
//! of the tests spends its time on).

#[path = "../support/mod.rs"]
mod support;

mod bson_corpus;
mod compressed_dumps;
mod engine;
mod extjson_fixtures;
mod namespace_filters;
mod parquet_readers;
mod pbm_backups;
mod readers;
mod snapshot_sources;
mod storage_backends;
mod timeseries_vectors;
