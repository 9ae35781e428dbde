//! Export jobs on real `snapex serve` processes, and the metadata store suite their
//! coordination runs on: one test binary (each binary links the whole crate, which is what a
//! build of the tests spends its time on).

#[path = "../jobs_support/mod.rs"]
mod jobs_support;
#[path = "../support/mod.rs"]
mod support;

mod lifecycle;
mod multinode;
mod store_suite;
