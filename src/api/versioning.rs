//! Version negotiation of the Atlas API (PRODUCT.md §4): `Accept: application/vnd.atlas.<date>+json`
//! selects the newest version of the operation dated on or before the requested date; none (or
//! no vendor Accept at all) is 406 `INVALID_VERSION_DATE`; a version past its sunset is 410
//! `VERSION_GONE`; a version that a newer one replaced carries `Deprecation` and `Sunset`
//! headers (as the recorded schedule responses show). The served version is named in
//! `Content-Type`, also on 204.

use axum::http::{HeaderMap, StatusCode, header};
use chrono::{NaiveDate, Utc};

use super::error::ApiError;

/// One version of an operation: its date and, when it is being retired, its sunset date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub date: &'static str,
    pub sunset: Option<&'static str>,
}

pub const V2023: Version = Version {
    date: "2023-01-01",
    sunset: None,
};
pub const V2023_SUNSET: Version = Version {
    date: "2023-01-01",
    sunset: Some("2027-07-01"),
};
pub const V2024_05: Version = Version {
    date: "2024-05-30",
    sunset: None,
};
pub const V2024_08: Version = Version {
    date: "2024-08-05",
    sunset: None,
};

pub const V2023_02: Version = Version {
    date: "2023-02-01",
    sunset: None,
};
pub const V2024_10: Version = Version {
    date: "2024-10-23",
    sunset: None,
};

/// Clusters: every version Atlas clients ask for (the Go SDK asks for 2024-08-05). snapex
/// renders the fields all of them share; the later ones differ in replication specs, which
/// describe hardware snapex has none of.
pub const CLUSTERS: &[Version] = &[V2023, V2023_02, V2024_08, V2024_10];

/// Operations with only the first version.
pub const ONLY_2023: &[Version] = &[V2023];
/// Export buckets: 2023-01-01 (retiring) and 2024-05-30.
pub const BUCKETS: &[Version] = &[V2023_SUNSET, V2024_05];
/// Backup schedule: 2023-01-01 (retiring) and 2024-08-05.
pub const SCHEDULE: &[Version] = &[V2023_SUNSET, V2024_08];

/// What a response is served as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// `application/vnd.atlas.<date>+json;charset=utf-8`, with deprecation headers when set.
    Atlas {
        date: &'static str,
        /// `(Deprecation, Sunset)` header values.
        deprecation: Option<(String, String)>,
    },
    /// Plain `application/json` (v1.0, extensions, health).
    Json,
}

impl Served {
    pub fn content_type(&self) -> String {
        match self {
            Served::Atlas { date, .. } => {
                format!("application/vnd.atlas.{date}+json;charset=utf-8")
            }
            Served::Json => "application/json".to_string(),
        }
    }

    pub fn date(&self) -> Option<&'static str> {
        match self {
            Served::Atlas { date, .. } => Some(date),
            Served::Json => None,
        }
    }
}

fn invalid_version() -> ApiError {
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "INVALID_VERSION_DATE",
        "Invalid accept header or version date.",
    )
}

/// The dates requested in `Accept` (`application/vnd.atlas.2023-01-01+json`), in order.
fn requested_dates(headers: &HeaderMap) -> Vec<NaiveDate> {
    let mut dates = Vec::new();
    for value in headers.get_all(header::ACCEPT) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let media = item
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if let Some(rest) = media.strip_prefix("application/vnd.atlas.")
                && let Some(date) = rest.strip_suffix("+json")
                && let Ok(d) = NaiveDate::parse_from_str(date, "%Y-%m-%d")
            {
                dates.push(d);
            }
        }
    }
    dates
}

fn http_date(d: NaiveDate) -> String {
    // RFC 7231 IMF-fixdate, as Atlas sends it (`Mon, 5 Aug 2024 00:00:00 GMT`).
    d.format("%a, %-d %b %Y 00:00:00 GMT").to_string()
}

/// Picks the version of an operation offering `versions` (oldest first) for the request.
/// `today` decides whether a sunset has passed (injectable for tests).
pub fn negotiate(
    headers: &HeaderMap,
    versions: &[Version],
    today: NaiveDate,
) -> Result<Served, ApiError> {
    let requested = requested_dates(headers);
    if requested.is_empty() {
        return Err(invalid_version());
    }
    // Several Accept entries: the newest acceptable wins.
    let mut best: Option<(usize, &Version)> = None;
    for date in &requested {
        for (i, v) in versions.iter().enumerate() {
            let Ok(vd) = NaiveDate::parse_from_str(v.date, "%Y-%m-%d") else {
                continue;
            };
            if vd <= *date && best.is_none_or(|(j, _)| i > j) {
                best = Some((i, v));
            }
        }
    }
    let Some((index, version)) = best else {
        return Err(invalid_version());
    };
    let mut deprecation = None;
    if let Some(sunset) = version.sunset
        && let Ok(sunset_date) = NaiveDate::parse_from_str(sunset, "%Y-%m-%d")
    {
        if today >= sunset_date {
            return Err(ApiError::new(
                StatusCode::GONE,
                "VERSION_GONE",
                format!(
                    "The API version {} was removed on {sunset}; request a newer version.",
                    version.date
                ),
            )
            .with_parameters([version.date.to_string()]));
        }
        // Deprecated since the version that replaced it.
        let since = versions
            .get(index + 1)
            .and_then(|next| NaiveDate::parse_from_str(next.date, "%Y-%m-%d").ok())
            .unwrap_or(sunset_date);
        deprecation = Some((http_date(since), http_date(sunset_date)));
    }
    Ok(Served::Atlas {
        date: version.date,
        deprecation,
    })
}

/// Today in UTC.
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_newest_version_on_or_before_the_requested_date_is_served() {
        let t = day("2026-01-01");
        let got = negotiate(&accept("application/vnd.atlas.2025-01-01+json"), BUCKETS, t).unwrap();
        assert_eq!(got.date(), Some("2024-05-30"));
        let got = negotiate(&accept("application/vnd.atlas.2024-05-29+json"), BUCKETS, t).unwrap();
        assert_eq!(got.date(), Some("2023-01-01"));
        assert_eq!(
            got,
            Served::Atlas {
                date: "2023-01-01",
                deprecation: Some((
                    "Thu, 30 May 2024 00:00:00 GMT".into(),
                    "Thu, 1 Jul 2027 00:00:00 GMT".into()
                ))
            }
        );
    }

    #[test]
    fn schedule_deprecation_headers_match_the_recording() {
        let got = negotiate(
            &accept("application/vnd.atlas.2023-01-01+json"),
            SCHEDULE,
            day("2026-08-10"),
        )
        .unwrap();
        let Served::Atlas {
            deprecation: Some((dep, sunset)),
            ..
        } = got
        else {
            panic!()
        };
        assert_eq!(dep, "Mon, 5 Aug 2024 00:00:00 GMT");
        assert_eq!(sunset, "Thu, 1 Jul 2027 00:00:00 GMT");
    }

    #[test]
    fn missing_or_too_old_versions_are_not_acceptable() {
        let t = day("2026-01-01");
        for a in [
            "application/json",
            "application/vnd.atlas.2022-12-31+json",
            "*/*",
        ] {
            let e = negotiate(&accept(a), ONLY_2023, t).unwrap_err();
            assert_eq!(e.status, StatusCode::NOT_ACCEPTABLE, "{a}");
            assert_eq!(e.error_code, "INVALID_VERSION_DATE");
        }
        assert!(negotiate(&HeaderMap::new(), ONLY_2023, t).is_err());
    }

    #[test]
    fn a_version_past_its_sunset_is_gone() {
        let e = negotiate(
            &accept("application/vnd.atlas.2023-06-01+json"),
            BUCKETS,
            day("2027-07-01"),
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::GONE);
        assert_eq!(e.error_code, "VERSION_GONE");
        // the newer version still answers
        assert!(
            negotiate(
                &accept("application/vnd.atlas.2025-01-01+json"),
                BUCKETS,
                day("2027-07-01")
            )
            .is_ok()
        );
    }
}
