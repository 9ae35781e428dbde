//! The OpenAPI document at `GET /api/openapi.json`, checked by a validator we did not write:
//! openapi-spec-validator (OpenAPI 3.0 and 3.1, from the test venv) must accept the document
//! exactly as a client downloads it. scripts/schemathesis then fuzzes the API against it.

use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support;
use crate::support::deployment::TestApp;

/// What `openapi-spec-validator` says of `document`: `Ok` when it accepts it, else its report.
fn spec_validator(python: &Path, document: &Value) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(document).unwrap()).unwrap();
    let out = Command::new(python)
        .args(["-m", "openapi_spec_validator", "--validation-errors", "all"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("run {} -m openapi_spec_validator: {e}", python.display()));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_openapi_document_is_valid_openapi() {
    let Some(python) = support::python() else {
        return;
    };
    let app = TestApp::start().await;
    // Unauthenticated, as tools fetch it.
    let resp = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let document: Value = resp.json().await.unwrap();
    let version = document["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3."), "openapi: {version:?}");

    if let Err(report) = spec_validator(&python, &document) {
        panic!("openapi-spec-validator refuses /api/openapi.json (OpenAPI {version}):\n{report}");
    }

    // The validator is really consulted: the same document without its required `info` object
    // is refused.
    let mut broken = document.clone();
    broken.as_object_mut().unwrap().remove("info");
    let report = spec_validator(&python, &broken)
        .expect_err("openapi-spec-validator accepted a document without `info`");
    assert!(report.contains("info"), "{report}");
}
