//! The API server and its authentication over real HTTP: one test binary (each binary links
//! the whole crate, which is what a build of the tests spends its time on).

#[path = "../support/mod.rs"]
mod support;

mod auth;
mod backup_locations;
mod concurrency;
mod dashboard;
mod edge_security;
mod openapi_check;
mod openapi_document;
mod pbm_import;
mod schedule_retention;
mod sdk_parity;
mod server;
mod trust_credentials;
mod trust_sources;
