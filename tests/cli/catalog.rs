//! `snapex catalog scan` as a user runs it: the verdict of the completeness rule for each
//! backup of a location (mongodump directories and archives, a PBM storage root), no server.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support;

fn scan(location: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_snapex"))
        .args(["catalog", "scan", "--json", "--settle-seconds", "1"])
        .arg(location)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&out.stdout)))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn find<'a>(backups: &'a [Value], name: &str) -> &'a Value {
    backups
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {backups:#?}"))
}

#[test]
fn a_scan_judges_each_mongodump_backup_by_the_rule() {
    let fixtures = support::mongo_tools().join("mongorestore/testdata");
    let location = tempfile::tempdir().unwrap();
    // A whole dump, one missing a collection's metadata, an archive and an empty file.
    copy_dir(
        &fixtures.join("oplogdump"),
        &location.path().join("2026-11-02T0300Z"),
    );
    copy_dir(
        &fixtures.join("testdirs"),
        &location.path().join("2026-11-03"),
    );
    std::fs::copy(
        fixtures.join("dump-w-oplog.archive"),
        location.path().join("2026-11-04.archive"),
    )
    .unwrap();
    std::fs::write(location.path().join("2026-11-05.archive"), b"").unwrap();

    let backups = scan(location.path());
    assert_eq!(backups.len(), 4, "{backups:#?}");
    let whole = find(&backups, "2026-11-02T0300Z");
    assert_eq!(whole["verdict"], "complete", "{whole}");
    assert_eq!(whole["kind"], "directory");
    assert_eq!(whole["takenAt"], "2026-11-02T03:00:00Z");
    assert_eq!(
        whole["frequencyType"], "monthly",
        "the first of November: {whole}"
    );
    let partial = find(&backups, "2026-11-03");
    assert_eq!(partial["verdict"], "incomplete", "{partial}");
    assert!(
        partial["reason"]
            .as_str()
            .unwrap()
            .contains(".bson has no metadata file yet"),
        "{partial}"
    );
    let archive = find(&backups, "2026-11-04.archive");
    assert_eq!(archive["verdict"], "complete", "{archive}");
    assert_eq!(archive["kind"], "archive");
    assert_eq!(archive["frequencyType"], "daily", "{archive}");
    let empty = find(&backups, "2026-11-05.archive");
    assert_eq!(empty["verdict"], "incomplete", "{empty}");
}

#[test]
fn a_scan_of_a_pbm_root_registers_done_backups_and_not_running_ones() {
    let root = tempfile::tempdir().unwrap();
    let source = support::shared_data().join("pbm/none");
    let name = "2026-02-23T14:46:22Z.pbm.json";
    std::fs::copy(source.join(name), root.path().join(name)).unwrap();
    copy_dir(
        &source.join("2026-02-23T14:46:22Z"),
        &root.path().join("2026-02-23T14:46:22Z"),
    );
    // A second backup still running: its metadata says so.
    let meta = std::fs::read(source.join("2026-02-23T14:46:20Z.pbm.json")).unwrap();
    let mut running: Value = serde_json::from_slice(&meta).unwrap();
    running["status"] = "running".into();
    std::fs::write(
        root.path().join("2026-02-23T14:46:20Z.pbm.json"),
        running.to_string(),
    )
    .unwrap();

    let backups = scan(root.path());
    assert_eq!(backups.len(), 2, "{backups:#?}");
    let done = find(&backups, "2026-02-23T14:46:22Z");
    assert_eq!(done["kind"], "pbm");
    assert_eq!(done["verdict"], "complete", "{done}");
    // The time is PBM's consistent point, not the name's.
    assert_eq!(done["takenAt"], "2026-02-23T14:46:27Z", "{done}");
    let running = find(&backups, "2026-02-23T14:46:20Z");
    assert_eq!(running["verdict"], "incomplete", "{running}");
    assert!(
        running["reason"].as_str().unwrap().contains("running"),
        "{running}"
    );
}
