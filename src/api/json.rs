//! JSON in and out. [`Body`] is the request-body extractor: it accepts `application/json` and
//! the vendor type `application/vnd.atlas.<date>+json`, rejects malformed JSON, wrong types and
//! unknown fields with 400 and `badRequestDetail.fields[].field` naming the JSON path
//! (`export.frequencyType`), a body over the limit with 413 and a stalled one with 408
//! ([`super::edge::body_error`]). [`Reply`] renders a success in the served version with the
//! `envelope` and `pretty` conventions.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::versioning::Served;

/// A request body of type `T` (which should `#[serde(deny_unknown_fields)]`).
pub struct Body<T>(pub T);

fn is_json_media_type(value: &str) -> bool {
    let media = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json"
        || (media.starts_with("application/vnd.atlas.") && media.ends_with("+json"))
}

/// Parses `bytes` as `T`, turning any error into a 400 with the field path.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize::<_, T>(&mut de);
    match parsed {
        Ok(v) => {
            de.end().map_err(|e| {
                ApiError::bad_request("INVALID_JSON", format!("Malformed request body: {e}."))
            })?;
            Ok(v)
        }
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let message = inner.to_string();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::bad_request(
                    "INVALID_JSON",
                    format!("Malformed request body: {message}."),
                ));
            }
            // serde names an unknown field in the message; its path is the enclosing object's.
            let (field, description) = if let Some(rest) = message.strip_prefix("unknown field `") {
                let name = rest.split('`').next().unwrap_or("");
                // serde_path_to_error's path already ends at the unknown key.
                let field = if path == name || path.ends_with(&format!(".{name}")) {
                    path.clone()
                } else if path == "." || path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
                (field, "unknown field".to_string())
            } else if let Some(rest) = message.strip_prefix("missing field `") {
                let name = rest.split('`').next().unwrap_or("");
                let field = if path == "." || path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
                (field, "required field is missing".to_string())
            } else {
                (path.trim_start_matches('.').to_string(), message.clone())
            };
            let field = if field.is_empty() {
                "body".to_string()
            } else {
                field
            };
            Err(ApiError::bad_request(
                "INVALID_ATTRIBUTE",
                format!("Invalid attribute {field} specified: {description}."),
            )
            .with_parameters([field.clone()])
            .with_field(field, description))
        }
    }
}

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !is_json_media_type(&content_type) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "Request bodies must be application/json or application/vnd.atlas.<date>+json.",
            ));
        }
        let limit = req.extensions().get::<super::edge::BodyLimit>().copied();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| super::edge::body_error(e, limit))?;
        parse_body(&bytes).map(Body)
    }
}

/// The `envelope` and `pretty` query flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Format {
    pub envelope: bool,
    pub pretty: bool,
}

/// A success response in a served version.
pub struct Reply {
    pub status: StatusCode,
    pub served: Served,
    pub body: Option<serde_json::Value>,
    pub format: Format,
}

impl Reply {
    pub fn ok(served: Served, format: Format, body: serde_json::Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            served,
            body: Some(body),
            format,
        }
    }

    /// [`Reply::ok`] of a typed body: the type the handler's documentation names.
    pub fn json<T: serde::Serialize>(
        served: Served,
        format: Format,
        body: &T,
    ) -> Result<Reply, ApiError> {
        let body = serde_json::to_value(body).map_err(ApiError::internal)?;
        Ok(Reply::ok(served, format, body))
    }

    pub fn no_content(served: Served) -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            served,
            body: None,
            format: Format::default(),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let body = self.body.map(|body| {
            let body = if self.format.envelope {
                // Lists carry `status` next to `results`; single resources are wrapped.
                match body {
                    serde_json::Value::Object(mut map) if map.contains_key("results") => {
                        map.insert("status".into(), self.status.as_u16().into());
                        serde_json::Value::Object(map)
                    }
                    other => serde_json::json!({"status": self.status.as_u16(), "content": other}),
                }
            } else {
                body
            };
            let text = if self.format.pretty {
                serde_json::to_vec_pretty(&body)
            } else {
                serde_json::to_vec(&body)
            };
            text.unwrap_or_default()
        });
        // With an envelope, clients that cannot see statuses get 200 and read `status`.
        let status = if self.format.envelope && body.is_some() {
            StatusCode::OK
        } else {
            self.status
        };
        let mut response = match body {
            Some(bytes) => (status, bytes).into_response(),
            None => status.into_response(),
        };
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.served.content_type()) {
            headers.insert(header::CONTENT_TYPE, v);
        }
        if let Served::Atlas {
            deprecation: Some((deprecation, sunset)),
            ..
        } = &self.served
        {
            if let Ok(v) = HeaderValue::from_str(deprecation) {
                headers.insert("deprecation", v);
            }
            if let Ok(v) = HeaderValue::from_str(sunset) {
                headers.insert("sunset", v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Inner {
        frequency_type: String,
    }
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        export: Option<Inner>,
    }

    fn field_of(e: &ApiError) -> String {
        e.bad_request_detail.as_ref().unwrap().fields[0]
            .field
            .clone()
    }

    #[test]
    fn unknown_and_bad_fields_are_named_by_path() {
        let e = parse_body::<Outer>(br#"{"name":"a","bogus":1}"#).unwrap_err();
        assert_eq!(field_of(&e), "bogus");
        let e = parse_body::<Outer>(br#"{"name":"a","export":{"frequencyType":"x","nope":true}}"#)
            .unwrap_err();
        assert_eq!(field_of(&e), "export.nope");
        let e = parse_body::<Outer>(br#"{"name":"a","export":{"frequencyType":5}}"#).unwrap_err();
        assert_eq!(field_of(&e), "export.frequencyType");
        let e = parse_body::<Outer>(br#"{"export":null}"#).unwrap_err();
        assert_eq!(field_of(&e), "name");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        let e = parse_body::<Outer>(b"{\"name\":").unwrap_err();
        assert_eq!(e.error_code, "INVALID_JSON");
        assert!(parse_body::<Outer>(br#"{"name":"a"} trailing"#).is_err());
    }
}
