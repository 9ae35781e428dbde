//! Export jobs on real `snapex serve` processes, and the metadata store suite their
//! coordination runs on: one test binary (each binary links the whole crate, which is what a
//! build of the tests spends its time on).

#[path = "../support/mod.rs"]
mod support;

mod catalog;
mod crash;
mod lifecycle;
mod multinode;
mod outage;
mod store_suite;

use serde_json::{Value, json};

/// The extra body fields of the jobs tests' snapshot imports: a description, and for a
/// `frequency` a scheduled snapshot of that frequency (which auto-export policies select).
fn import_fields(frequency: Option<&str>) -> Value {
    let mut fields = json!({"description": "jobs test"});
    if let Some(f) = frequency {
        fields["frequencyType"] = f.into();
        fields["snapshotType"] = "scheduled".into();
    }
    fields
}

/// Replica sets a jobs list shows exporting: one per `InProgress` replica-set job, one per
/// component of an `InProgress` sharded job.
fn exporting_replica_sets(jobs: &[Value]) -> usize {
    jobs.iter()
        .filter(|j| j["state"] == "InProgress")
        .map(|j| j["components"].as_array().map_or(1, Vec::len))
        .sum()
}
