//! `snapex demo --exit-when-done` on a fresh data directory: the whole flow through the HTTP
//! API with Digest authentication, leaving an export that `snapex verify` accepts.

use std::process::Command;

#[test]
fn demo_exits_zero_and_leaves_a_verified_export() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_snapex"))
        .args([
            "demo",
            "--exit-when-done",
            "--json",
            "--size",
            "2MiB",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let facts: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for field in [
        "url",
        "publicKey",
        "privateKey",
        "orgId",
        "groupId",
        "clusterName",
        "snapshotId",
        "exportBucketId",
        "bucketUrl",
        "exportJobId",
        "prefix",
    ] {
        assert!(facts[field].is_string(), "{field} missing in {facts}");
    }
    let prefix = facts["prefix"].as_str().unwrap();
    assert!(prefix.starts_with(&format!(
        "exported_snapshots/{}/{}/{}/",
        facts["orgId"].as_str().unwrap(),
        facts["groupId"].as_str().unwrap(),
        facts["clusterName"].as_str().unwrap()
    )));
    let export_url = format!("{}/{prefix}", facts["bucketUrl"].as_str().unwrap());
    let verify = Command::new(env!("CARGO_BIN_EXE_snapex"))
        .args(["verify", &export_url])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let complete = std::path::Path::new(export_url.trim_start_matches("file://")).join(".complete");
    assert!(complete.exists());
}
