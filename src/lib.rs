//! snapex: a self-hosted implementation of MongoDB Atlas's Cloud Backup Snapshot Export.
//!
//! The modules follow the concepts of `PRODUCT.md`:
//! - [`extjson`]: BSON bytes → Extended JSON v2 (canonical and relaxed), no document tree in between;
//! - [`snapshot`]: snapshot sources (mongodump directories and archives) read as a stream of raw documents;
//! - [`storage`]: storage URLs (`file://`, `s3://`, `az://`, `gs://`, `memory://`) → `object_store`;
//! - [`timeseries`]: time-series buckets (and their BSONColumn compression) → measurements;
//! - [`export`]: the export pipeline that writes Atlas's bucket layout, and `verify`;
//! - [`store`]: the metadata store (SQLite or PostgreSQL);
//! - [`auth`]: HTTP Digest with API keys, OAuth client credentials, secrets at rest;
//! - [`api`]: the Atlas-compatible Admin API and the snapex extensions, one file per resource;
//! - [`jobs`]: the export job engine (admission, leases, cancellation);
//! - [`cli`]: the command line.

pub mod api;
pub mod auth;
pub mod cli;
pub mod export;
pub mod extjson;
pub mod jobs;
pub mod snapshot;
pub mod storage;
pub mod store;
pub mod timeseries;
