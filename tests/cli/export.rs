//! `snapex export` and `snapex verify` as a user runs them: the built binary, its output and
//! its exit codes, on a local bucket and on the S3 and Azure emulators.

use std::path::PathBuf;
use std::process::Command;

use crate::support;

fn snapex() -> Command {
    Command::new(env!("CARGO_BIN_EXE_snapex"))
}

fn fixture(path: &str) -> PathBuf {
    support::mongo_tools().join(path)
}

#[test]
fn export_with_only_source_and_destination_prints_the_prefix_and_verifies() {
    let bucket = tempfile::tempdir().unwrap();
    let dest = format!("file://{}", bucket.path().display());
    let out = snapex()
        .arg("export")
        .arg(fixture("mongorestore/testdata/dump-w-oplog.archive"))
        .arg(&dest)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The defaults in effect are printed, then the prefix and a summary.
    assert!(stderr.contains("cluster Cluster0"), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("export complete: "))
        .unwrap_or_else(|| panic!("no prefix line: {stdout}"));
    let url = line.trim_start_matches("export complete: ");
    assert!(
        url.starts_with(&format!("{dest}/exported_snapshots/")),
        "{url}"
    );
    // test.foo only: admin.system.version is a system collection and the oplog is not a collection.
    assert!(stdout.contains("1 collections, 25 documents"), "{stdout}");
    // No progress bar when stderr is not a terminal.
    assert!(!stderr.contains("eta"), "{stderr}");
    let verify = snapex().args(["verify", url]).output().unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn json_summary_and_custom_data_reach_complete() {
    let bucket = tempfile::tempdir().unwrap();
    let out = snapex()
        .arg("export")
        .arg(fixture("mongorestore/testdata/testdirs"))
        .arg(bucket.path())
        .args([
            "--json",
            "--org-id",
            "a0123456789abcdef012345a",
            "--project-id",
            "b0123456789abcdef012345b",
            "--cluster-name",
            "prod",
            "--snapshot-time",
            "2026-08-10T03:27:00Z",
            "--custom-data",
            "team=data",
            "--custom-data",
            "ticket=OPS-1",
            "--json-format",
            "relaxed",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let prefix = summary["prefix"].as_str().unwrap();
    assert!(
        prefix.starts_with("exported_snapshots/a0123456789abcdef012345a/b0123456789abcdef012345b/prod/2026-08-10T0327/"),
        "{prefix}"
    );
    let complete: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bucket.path().join(prefix).join(".complete")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        complete["snapshotInitiationDate"],
        "2026-08-10T03:27:00.000Z"
    );
    assert_eq!(
        complete["customData"],
        serde_json::json!([{"key": "team", "value": "data"}, {"key": "ticket", "value": "OPS-1"}])
    );
    assert_eq!(complete["totalFiles"], summary["totalFiles"]);
}

#[test]
fn bad_input_fails_with_the_error_chain_and_no_complete() {
    let scratch = tempfile::tempdir().unwrap();
    let db = scratch.path().join("dump/db");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::copy(
        fixture("bsondump/testdata/partial_file.bson"),
        db.join("c.bson"),
    )
    .unwrap();
    let bucket = scratch.path().join("bucket");
    let out = snapex()
        .arg("export")
        .arg(scratch.path().join("dump"))
        .arg(&bucket)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("error: export failed"), "{stderr}");
    assert!(stderr.contains("caused by:"), "{stderr}");
    assert!(stderr.contains("c.bson"), "{stderr}");
    assert!(stderr.contains("byte"), "{stderr}");

    for (args, needle) in [
        (vec!["--org-id", "xyz"], "--org-id"),
        (vec!["--custom-data", "novalue"], "KEY=VALUE"),
        (vec!["--chunk-size", "12 parsecs"], "size"),
    ] {
        let out = snapex()
            .arg("export")
            .arg(fixture("mongorestore/testdata/testdirs"))
            .arg(&bucket)
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let missing = snapex()
        .args(["export", "/nonexistent/dump", bucket.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/dump"));
}

#[test]
fn export_and_verify_against_the_s3_and_azure_emulators() {
    for backend in ["s3", "azure"] {
        let Some(location) = support::location(backend) else {
            continue;
        };
        let out = snapex()
            .arg("export")
            .arg(fixture("mongorestore/testdata/indexmetadata"))
            .arg(&location.url)
            .arg("--json")
            .envs(support::child_env(backend))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let verify = snapex()
            .arg("verify")
            .arg(summary["url"].as_str().unwrap())
            .envs(support::child_env(backend))
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{backend}: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
    }
}

/// `snapex export` and `snapex verify` to `gs://` with the operator's `GOOGLE_*` environment
/// (a service-account key, `GOOGLE_BASE_URL` pointing at our GCS XML-API server).
#[test]
fn export_and_verify_on_gcs_with_the_google_environment() {
    let location = support::location("gcs").unwrap();
    let out = snapex()
        .arg("export")
        .arg(fixture("mongorestore/testdata/indexmetadata"))
        .arg(&location.url)
        .arg("--json")
        .envs(support::child_env("gcs"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let url = summary["url"].as_str().unwrap();
    let rel = url
        .strip_prefix(&format!("gs://{}/", support::gcs::BUCKET))
        .unwrap_or_else(|| panic!("{url}"));
    assert!(
        support::gcs::server().has_object(&format!("{rel}/.complete")),
        "{url}"
    );
    let verify = snapex()
        .arg("verify")
        .arg(url)
        .envs(support::child_env("gcs"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

fn pbm_root(compression: &str) -> PathBuf {
    support::shared_data().join("pbm").join(compression)
}

/// Runs `snapex export SOURCE DEST --json`; the summary.
fn export_json(source: &str, dest: &std::path::Path) -> serde_json::Value {
    let out = snapex()
        .arg("export")
        .arg(source)
        .arg(dest)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{source}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_pbm_backup_exports_in_every_compression_and_verifies() {
    let bucket = tempfile::tempdir().unwrap();
    for compression in ["none", "gzip", "pgzip", "snappy", "lz4", "s2", "zstd"] {
        for (backup, documents, date) in [
            ("2017-11-19T04:00:30Z", 5, "2017-11-19T0400"),
            ("2026-02-23T14:46:22Z", 11, "2026-02-23T1446"),
        ] {
            // `<root>/<name>`, as `pbm list` names it.
            let source = format!("{}/{backup}", pbm_root(compression).display());
            let dest = bucket
                .path()
                .join(format!("{compression}-{}", backup.replace(':', "")));
            let summary = export_json(&source, &dest);
            assert_eq!(summary["documents"], documents, "{source}: {summary}");
            // The snapshot time is the backup's consistent point.
            let prefix = summary["prefix"].as_str().unwrap();
            assert!(prefix.contains(&format!("/{date}/")), "{prefix}");
            let verify = snapex()
                .args(["verify", summary["url"].as_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                verify.status.success(),
                "{source}: {}",
                String::from_utf8_lossy(&verify.stdout)
            );
        }
    }
}

#[test]
fn a_pbm_backup_of_several_replica_sets_exports_each_as_a_part() {
    // A two-shard backup made from the fixture's one replica set: rs0 copied to rs1.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pbm");
    let backup = "2026-02-23T14:46:22Z";
    let from = pbm_root("s2");
    for file in support::files_under(&from) {
        let rel = file.strip_prefix(&from).unwrap();
        if !rel.to_string_lossy().starts_with(backup) {
            continue;
        }
        for rs in ["rs0", "rs1"] {
            let rel = PathBuf::from(rel.to_string_lossy().replace("/rs0/", &format!("/{rs}/")));
            std::fs::create_dir_all(root.join(&rel).parent().unwrap()).unwrap();
            std::fs::write(root.join(&rel), std::fs::read(&file).unwrap()).unwrap();
        }
    }
    let meta_path = root.join(format!("{backup}.pbm.json"));
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let mut second = meta["replsets"][0].clone();
    second["name"] = "rs1".into();
    for key in ["backup_name", "oplog_name"] {
        let value = second[key]
            .as_str()
            .unwrap()
            .replace("/rs0/", "/rs1/")
            .replace("/rs0", "/rs1");
        second[key] = value.into();
    }
    meta["replsets"].as_array_mut().unwrap().push(second);
    meta["size"] = serde_json::Value::Null;
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();

    let summary = export_json(
        &format!("{}/{backup}", root.display()),
        &dir.path().join("bucket"),
    );
    assert_eq!(summary["documents"], 22, "{summary}");
    let names: Vec<&str> = summary["replicaSets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rs0", "rs1"], "{summary}");
    // Naming one replica set exports that one only.
    let one = export_json(
        &format!("{}/{backup}/rs1", root.display()),
        &dir.path().join("bucket-one"),
    );
    assert_eq!(one["documents"], 11, "{one}");
}

#[test]
fn a_physical_pbm_backup_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let backup = "2017-11-19T04:00:33Z";
    let text = std::fs::read_to_string(pbm_root("s2").join(format!("{backup}.pbm.json"))).unwrap();
    let meta = dir.path().join(format!("{backup}.pbm.json"));
    std::fs::write(&meta, text.replacen("\"logical\"", "\"physical\"", 1)).unwrap();
    let out = snapex()
        .arg("export")
        .arg(&meta)
        .arg(dir.path().join("bucket"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is a physical backup"), "{stderr}");
    assert!(stderr.contains("logical backups only"), "{stderr}");
}

/// `--ns-include`/`--ns-exclude`: only the selected collections are exported (the JSON summary
/// lists what was left out), and a bad pattern exits non-zero naming it before anything is
/// written.
#[test]
fn namespace_flags_select_collections_and_a_bad_pattern_is_named() {
    let bucket = tempfile::tempdir().unwrap();
    let out = snapex()
        .arg("export")
        .arg(fixture("mongorestore/testdata/testdirs"))
        .arg(bucket.path())
        .args(["--json", "--ns-include", "db1.*", "--ns-exclude", "*.c2"])
        .args(["--ns-exclude", "db1.c3"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("namespaces: include db1.* exclude *.c2 db1.c3"),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["collections"], 2, "{summary}");
    let mut excluded: Vec<_> = summary["excludedCollections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["collection"].as_str().unwrap().to_string())
        .collect();
    excluded.sort();
    assert_eq!(excluded, ["db1.c2", "db1.c3"]);

    let empty = tempfile::tempdir().unwrap();
    let out = snapex()
        .arg("export")
        .arg(fixture("mongorestore/testdata/testdirs"))
        .arg(empty.path())
        .args(["--ns-include", "db1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("namespace pattern \"db1\""), "{stderr}");
    assert!(support::files_under(empty.path()).is_empty());
}

/// The `.parquet` files under an export folder, sorted.
fn parquet_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn verify_accepts_a_parquet_export_and_names_a_changed_a_truncated_and_a_removed_file() {
    // testdirs' db1 twice (as db1 and db2): four non-empty collections, four Parquet files.
    let dump = tempfile::tempdir().unwrap();
    for db in ["db1", "db2"] {
        let from = fixture("mongorestore/testdata/testdirs/db1");
        std::fs::create_dir_all(dump.path().join(db)).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            if entry.path().is_dir() {
                continue;
            }
            std::fs::copy(entry.path(), dump.path().join(db).join(entry.file_name())).unwrap();
        }
    }
    let bucket = tempfile::tempdir().unwrap();
    let out = snapex()
        .arg("export")
        .arg(dump.path())
        .arg(bucket.path())
        .args(["--format", "parquet", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let url = summary["url"].as_str().unwrap().to_string();
    let folder = bucket.path().join(summary["prefix"].as_str().unwrap());

    let good = snapex().args(["verify", &url]).output().unwrap();
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{stdout}");
    assert!(stdout.starts_with("ok: "), "{stdout}");

    let files = parquet_files(&folder);
    assert!(files.len() >= 3, "three Parquet files to damage: {files:?}");
    let key = |path: &PathBuf| {
        path.strip_prefix(&folder)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    let (changed, truncated, removed) = (&files[0], &files[1], &files[2]);
    // Same length, one byte different inside the data (not the footer): only the hash can tell.
    let mut bytes = std::fs::read(changed).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(changed, bytes).unwrap();
    let bytes = std::fs::read(truncated).unwrap();
    std::fs::write(truncated, &bytes[..bytes.len() - 10]).unwrap();
    std::fs::remove_file(removed).unwrap();

    let bad = snapex().args(["verify", &url]).output().unwrap();
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success(), "damage went unnoticed: {stdout}");
    assert!(stdout.starts_with("FAILED: "), "{stdout}");
    let problems: Vec<&str> = stdout.lines().skip(1).map(str::trim).collect();
    let about = |path: &PathBuf| -> Vec<&str> {
        let key = format!("{}: ", key(path));
        problems
            .iter()
            .copied()
            .filter(|p| p.starts_with(&key))
            .collect()
    };
    let changed_problems = about(changed);
    assert!(
        changed_problems.iter().any(|p| p.contains("sha256")),
        "changed file: {stdout}"
    );
    let truncated_problems = about(truncated);
    assert!(
        truncated_problems.iter().any(|p| p.contains(&format!(
            "{} bytes, manifest says {}",
            bytes.len() - 10,
            bytes.len()
        ))),
        "truncated file: {stdout}"
    );
    assert_eq!(
        about(removed),
        [format!("{}: missing", key(removed))],
        "removed file: {stdout}"
    );
    // Nothing else is reported: the undamaged files still verify.
    assert_eq!(
        changed_problems.len() + truncated_problems.len() + 1,
        problems.len(),
        "{stdout}"
    );
}
