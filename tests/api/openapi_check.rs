//! The response checker of `support::openapi` against a small hand-written document, so that
//! it cannot pass silently: each kind of mismatch is reported, with the operation, status,
//! media type and the JSON paths of the schema errors; and what the document does describe
//! passes.

use serde_json::{Value, json};

use crate::support::openapi::{self, Body, Checker, Violation};

/// An OpenAPI 3.1 document with a parameter path and a literal sibling, a `$ref`'d schema, a
/// `default` response, a 204 and a text response.
fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/things": {
                "get": {
                    "operationId": "listThings",
                    "responses": {
                        "200": {"description": "OK", "content": {"application/vnd.t.2024-01-01+json": {"schema": {
                            "type": "object",
                            "required": ["results"],
                            "properties": {"results": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}},
                        }}}},
                        "default": {"$ref": "#/components/responses/Error"},
                    },
                },
            },
            "/things/{thingId}": {
                "get": {
                    "operationId": "getThing",
                    "responses": {
                        "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                        "404": {"$ref": "#/components/responses/Error"},
                    },
                },
                "delete": {
                    "operationId": "deleteThing",
                    "responses": {"204": {"description": "Deleted"}},
                },
            },
            "/things/special": {
                "get": {
                    "operationId": "getSpecial",
                    "responses": {
                        "200": {"description": "OK", "content": {"application/json": {"schema": {
                            "type": "object",
                            "required": ["special"],
                            "properties": {"special": {"type": "boolean"}},
                        }}}},
                    },
                },
            },
            "/text": {
                "get": {
                    "operationId": "getText",
                    "responses": {"2XX": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string", "minLength": 1}}}}},
                },
            },
        },
        "components": {
            "schemas": {
                "Thing": {
                    "type": "object",
                    "required": ["id", "count"],
                    "properties": {
                        "id": {"type": "string"},
                        "count": {"type": "integer"},
                        "created": {"type": "string", "format": "date-time"},
                        "owner": {"$ref": "#/components/schemas/Owner"},
                    },
                },
                "Owner": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "integer"}}},
            },
            "responses": {
                "Error": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        },
    })
}

const JSON: Option<&str> = Some("application/json");

fn check(
    method: &str,
    path: &str,
    status: u16,
    ct: Option<&str>,
    body: &str,
) -> Result<(), Violation> {
    Checker::new(document()).check(method, path, status, ct, Body::from(body))
}

/// The schema errors of a `Schema` violation (fails the test on any other outcome).
fn schema_errors(result: Result<(), Violation>) -> Vec<String> {
    match result {
        Err(Violation::Schema { errors, .. }) => errors,
        other => panic!("expected a schema violation, got {other:?}"),
    }
}

#[test]
fn a_body_the_document_describes_passes() {
    check(
        "GET",
        "/things/a1",
        200,
        Some("application/json;charset=utf-8"),
        r#"{"id":"a1","count":2,"created":"2024-05-01T10:00:00Z","owner":{"name":"o"}}"#,
    )
    .unwrap();
    check(
        "GET",
        "/things",
        200,
        Some("application/vnd.t.2024-01-01+json"),
        r#"{"results":[{"id":"a","count":1}]}"#,
    )
    .unwrap();
    check("DELETE", "/things/a1", 204, None, "").unwrap();
    check("GET", "/text", 200, Some("text/plain; version=0.0.4"), "up").unwrap();
}

#[test]
fn a_body_missing_a_required_property_is_reported_with_its_path() {
    let errors = schema_errors(check("GET", "/things/a1", 200, JSON, r#"{"count":2}"#));
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("/:") && e.contains("\"id\"")),
        "{errors:?}"
    );
    // Through a nested `$ref`, at the nested path.
    let errors = schema_errors(check(
        "GET",
        "/things/a1",
        200,
        JSON,
        r#"{"id":"a","count":2,"owner":{}}"#,
    ));
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("/owner:") && e.contains("\"name\"")),
        "{errors:?}"
    );
}

#[test]
fn a_property_of_the_wrong_type_is_reported_with_its_path() {
    let result = check(
        "GET",
        "/things",
        200,
        Some("application/vnd.t.2024-01-01+json"),
        r#"{"results":[{"id":"a","count":1},{"id":"b","count":"two"}]}"#,
    );
    let message = result.clone().unwrap_err().to_string();
    let errors = schema_errors(result);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("/results/1/count:"), "{errors:?}");
    // The message names the operation, the status and the media type.
    for part in [
        "listThings (GET /things)",
        "200",
        "application/vnd.t.2024-01-01+json",
        "/results/1/count",
    ] {
        assert!(message.contains(part), "{part} not in {message}");
    }
}

#[test]
fn a_string_breaking_its_format_is_reported() {
    let errors = schema_errors(check(
        "GET",
        "/things/a1",
        200,
        JSON,
        r#"{"id":"a","count":2,"created":"yesterday"}"#,
    ));
    assert!(
        errors.iter().any(|e| e.starts_with("/created:")),
        "{errors:?}"
    );
}

#[test]
fn an_undocumented_status_is_reported() {
    let result = check("GET", "/things/a1", 500, JSON, r#"{"error":500}"#);
    assert!(
        matches!(&result, Err(Violation::UndocumentedStatus { status: 500, documented, .. }) if documented == &["200", "404"]),
        "{result:?}"
    );
    assert!(matches!(
        check("DELETE", "/things/a1", 200, None, ""),
        Err(Violation::UndocumentedStatus { status: 200, .. })
    ));
}

#[test]
fn a_default_response_covers_any_status_and_its_schema_still_applies() {
    check("GET", "/things", 503, JSON, r#"{"error":503}"#).unwrap();
    let errors = schema_errors(check("GET", "/things", 503, JSON, r#"{"error":"busy"}"#));
    assert!(errors[0].starts_with("/error:"), "{errors:?}");
    // A range covers its statuses, and nothing else.
    check("GET", "/text", 203, Some("text/plain"), "up").unwrap();
    assert!(matches!(
        check("GET", "/text", 404, Some("text/plain"), "no"),
        Err(Violation::UndocumentedStatus { .. })
    ));
}

#[test]
fn an_undocumented_path_or_method_is_reported() {
    let result = check("GET", "/nothing/here", 404, JSON, r#"{"error":404}"#);
    assert_eq!(
        result,
        Err(Violation::UndocumentedOperation {
            method: "GET".into(),
            path: "/nothing/here".into()
        })
    );
    assert!(matches!(
        check("POST", "/things/a1", 200, JSON, "{}"),
        Err(Violation::UndocumentedOperation { .. })
    ));
    // A parameter matches one non-empty segment, never more or none.
    assert!(matches!(
        check("GET", "/things/a/b", 200, JSON, "{}"),
        Err(Violation::UndocumentedOperation { .. })
    ));
    assert!(matches!(
        check("GET", "/things/", 200, JSON, "{}"),
        Err(Violation::UndocumentedOperation { .. })
    ));
}

#[test]
fn a_literal_segment_wins_over_a_parameter() {
    let checker = Checker::new(document());
    let op = checker.operation("GET", "/things/special").unwrap();
    assert_eq!(op.value["operationId"], "getSpecial");
    assert_eq!(op.template, "/things/special");
    assert_eq!(
        checker.operation("get", "/things/other?x=1").unwrap().value["operationId"],
        "getThing"
    );
    // So the literal path's body is checked against its own schema, not the parameter's.
    check("GET", "/things/special", 200, JSON, r#"{"special":true}"#).unwrap();
    let errors = schema_errors(check(
        "GET",
        "/things/special",
        200,
        JSON,
        r#"{"id":"a","count":1}"#,
    ));
    assert!(errors[0].contains("\"special\""), "{errors:?}");
    // A method only the parameter path has is found there.
    assert_eq!(
        checker
            .operation("DELETE", "/things/special")
            .unwrap()
            .value["operationId"],
        "deleteThing"
    );
}

#[test]
fn the_query_string_is_not_part_of_the_path() {
    check(
        "GET",
        "/things/a1?pretty=true&itemsPerPage=5",
        200,
        JSON,
        r#"{"id":"a1","count":2}"#,
    )
    .unwrap();
}

#[test]
fn an_undocumented_media_type_or_a_missing_or_unexpected_body_is_reported() {
    let result = check("GET", "/things/a1", 200, Some("text/html"), "<p>hi</p>");
    assert!(
        matches!(&result, Err(Violation::UndocumentedMediaType { media_type: Some(m), documented, .. }) if m == "text/html" && documented == &["application/json"]),
        "{result:?}"
    );
    // A documented version is not another version.
    assert!(matches!(
        check(
            "GET",
            "/things",
            200,
            Some("application/vnd.t.2025-01-01+json"),
            r#"{"results":[]}"#
        ),
        Err(Violation::UndocumentedMediaType { .. })
    ));
    // A documented body that is not there, and a body where none is documented.
    assert!(matches!(
        check("GET", "/things/a1", 200, JSON, ""),
        Err(Violation::UndocumentedMediaType {
            media_type: None,
            ..
        })
    ));
    assert!(matches!(
        check("DELETE", "/things/a1", 204, JSON, "{}"),
        Err(Violation::UndocumentedMediaType { .. })
    ));
}

#[test]
fn a_json_media_type_whose_body_does_not_parse_is_reported() {
    assert!(matches!(
        check("GET", "/things/a1", 200, JSON, "{\"id\":"),
        Err(Violation::UnparsableBody { .. })
    ));
}

#[test]
fn an_envelope_is_unwrapped_and_its_status_and_content_checked() {
    let path = "/things/a1?envelope=TRUE";
    check(
        "GET",
        path,
        200,
        JSON,
        r#"{"status":200,"content":{"id":"a1","count":2}}"#,
    )
    .unwrap();
    let errors = schema_errors(check(
        "GET",
        path,
        200,
        JSON,
        r#"{"status":200,"content":{"id":"a1"}}"#,
    ));
    assert!(errors[0].starts_with("/:"), "{errors:?}");
    // The wrapper's status is the one checked against the documented responses.
    assert!(matches!(
        check(
            "GET",
            path,
            200,
            JSON,
            r#"{"status":500,"content":{"id":"a1","count":2}}"#
        ),
        Err(Violation::UndocumentedStatus { status: 500, .. })
    ));
    for bad in [
        r#"{"status":"200","content":{}}"#,
        r#"{"content":{}}"#,
        r#"{"id":"a1","count":2}"#,
    ] {
        assert!(
            matches!(
                check("GET", path, 200, JSON, bad),
                Err(Violation::NotAnEnvelope { .. })
            ),
            "{bad}"
        );
    }
    // A list page carries `status` beside `results`.
    let list = "/things?envelope=true";
    let ct = Some("application/vnd.t.2024-01-01+json");
    check(
        "GET",
        list,
        200,
        ct,
        r#"{"status":200,"results":[{"id":"a","count":1}]}"#,
    )
    .unwrap();
    let errors = schema_errors(check(
        "GET",
        list,
        200,
        ct,
        r#"{"status":200,"results":[{"id":"a"}]}"#,
    ));
    assert!(errors[0].starts_with("/results/0:"), "{errors:?}");
    // An error is not enveloped.
    check("GET", path, 404, JSON, r#"{"error":404}"#).unwrap();
}

#[test]
fn the_dashboard_pages_are_not_checked() {
    check(
        "GET",
        "/ui/groups/g/jobs",
        200,
        Some("text/html"),
        "<html></html>",
    )
    .unwrap();
    check("GET", "/ui", 303, None, "").unwrap();
    // `/uix` is not under `/ui`.
    assert!(check("GET", "/uix", 200, None, "").is_err());
}

/// The product's checker panics on a response its document does not describe (unless the run
/// asked for `SNAPEX_OPENAPI_CHECK=warn`, which this test then reports as a failure).
#[test]
#[should_panic(expected = "no operation of the OpenAPI document")]
fn the_product_check_panics_on_an_undocumented_path() {
    openapi::check_response(
        "GET",
        "/api/atlas/v2/noSuchResource",
        404,
        JSON,
        r#"{"error":404}"#,
    );
}

/// Every operation of the product's document is found again from a concrete path (each
/// parameter a plain value), so lookups cannot miss one through a template quirk.
#[test]
fn every_operation_of_the_product_document_is_found_from_a_concrete_path() {
    let checker = openapi::checker();
    let paths = checker.document()["paths"].as_object().unwrap();
    assert!(!paths.is_empty());
    for (template, item) in paths {
        let concrete: Vec<String> = template
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    "v1".to_string()
                } else {
                    s.to_string()
                }
            })
            .collect();
        let concrete = concrete.join("/");
        for method in item.as_object().unwrap().keys().filter(|m| {
            [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&m.as_str())
        }) {
            let op = checker
                .operation(method, &concrete)
                .unwrap_or_else(|| panic!("{method} {concrete} not found"));
            assert_eq!(op.template, template, "{method} {concrete}");
        }
    }
}
