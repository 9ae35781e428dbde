//! snapex: a self-hosted implementation of MongoDB Atlas's Cloud Backup Snapshot Export.
//!
//! The modules follow the concepts of `PRODUCT.md`:
//! - [`extjson`]: BSON bytes → Extended JSON v2 (canonical and relaxed), no document tree in between;
//! - [`snapshot`]: snapshot sources (mongodump directories and archives) read as a stream of raw documents;
//! - [`storage`]: storage URLs (`file://`, `s3://`, `az://`, `gs://`, `memory://`) → `object_store`;
//! - [`timeseries`]: time-series buckets (and their BSONColumn compression) → measurements;
//! - [`export`]: the export pipeline that writes Atlas's bucket layout, and `verify`;
//! - [`store`]: the metadata store (SQLite or PostgreSQL);
//! - [`auth`]: API keys and service accounts, Digest and OAuth verification, roles, secrets at rest;
//! - [`metrics`]: the process's counters in the Prometheus text format;
//! - [`owner_only`]: the data directory, database files and `secret.key` kept owner-only;
//! - [`pause`]: test-only pause points (`SNAPEX_TEST_PAUSE_AT`) for the crash tests;
//! - [`service`]: the product's rules, once, as typed functions (buckets, access roles, export
//!   jobs, snapshots, schedules) and the deployment's configuration;
//! - [`jobs`]: the export job engine (admission, leases, cancellation), on the service layer;
//! - [`api`]: front end: the Atlas-compatible Admin API and the snapex extensions, one file per
//!   resource, mapping the service errors to Atlas's error body in one place;
//! - [`cli`]: front end: the command line (`serve`, `export`, `verify`, the admin commands);
//! - [`dashboard`]: front end: the web pages under `/ui/`, served beside the API by
//!   [`api::app`], on the same service layer.
//!
//! Layers, top to bottom: `api`, `dashboard`, `cli` → `jobs` → `service` → `export`,
//! `snapshot`, `store`, `storage`, `auth`, `extjson`, `metrics`. No module imports one above
//! it: nothing below the front ends names `api`, `dashboard`, `cli` or an axum type.

pub mod api;
pub mod auth;
pub mod cli;
pub mod dashboard;
pub mod errors;
pub mod export;
pub mod extjson;
pub mod jobs;
pub mod metrics;
pub mod owner_only;
pub mod pause;
pub mod service;
pub mod snapshot;
pub mod storage;
pub mod store;
pub mod timeseries;
