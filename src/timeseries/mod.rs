//! Time-series collections: their buckets unpacked back into measurements.
//!
//! A time-series collection stores its measurements in *buckets*, one document per group of
//! measurements with the same meta value over a time span, in the `system.buckets.<name>`
//! collection (the time-series collection itself is a view over it). A dump holds the buckets;
//! Atlas exports the measurements. This module is the part of the engine that turns the one
//! into the other; it reads bytes and writes bytes, and knows nothing of sources, exports or
//! the API.
//!
//! - [`bucket`]: a bucket (versions 1, 2, 3) → its measurements, each a BSON document, with
//!   the field order and validation rules the export relies on;
//! - [`column`]: the BSONColumn decoder (BSON binary subtype 7) behind version-2 and -3 buckets;
//! - `simple8b`: the Simple-8b blocks inside a column;
//! - `raw`: the little raw-BSON reading and writing both need.

pub mod bucket;
pub mod column;
mod raw;
mod simple8b;

pub use bucket::{BucketError, BucketErrorKind, UnpackError, Unpacker};
pub use column::{Column, ColumnError, ColumnErrorKind, Element};

/// What the collection's `options.timeseries` says about its measurements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeseriesOptions {
    /// The field holding each measurement's time (a date).
    pub time_field: String,
    /// The field under which each measurement shows its bucket's `meta`, if the collection has one.
    pub meta_field: Option<String>,
}

impl TimeseriesOptions {
    pub fn new(time_field: impl Into<String>, meta_field: Option<String>) -> Self {
        TimeseriesOptions {
            time_field: time_field.into(),
            meta_field,
        }
    }

    /// Reads `options.timeseries` from a collection's metadata (`{options: {timeseries:
    /// {timeField, metaField?, granularity?, bucketMaxSpanSeconds?, …}}, …}`).
    pub fn from_metadata(metadata: &bson::Document) -> Result<Self, OptionsError> {
        let timeseries = metadata
            .get_document("options")
            .and_then(|o| o.get_document("timeseries"))
            .map_err(|_| OptionsError::NoOptions)?;
        let time_field = timeseries
            .get_str("timeField")
            .map_err(|_| OptionsError::NoTimeField)?;
        if time_field.is_empty() || time_field.contains('\0') {
            return Err(OptionsError::InvalidName("timeField"));
        }
        let meta_field = match timeseries.get("metaField") {
            None | Some(bson::Bson::Null) => None,
            Some(bson::Bson::String(name)) if !name.is_empty() && !name.contains('\0') => {
                Some(name.clone())
            }
            Some(_) => return Err(OptionsError::InvalidName("metaField")),
        };
        Ok(TimeseriesOptions::new(time_field, meta_field))
    }
}

/// Why a collection's metadata does not say how to unpack its buckets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("the dump has no metadata for it")]
    NoMetadata,
    #[error("the metadata has no options.timeseries object")]
    NoOptions,
    #[error("options.timeseries has no string timeField")]
    NoTimeField,
    #[error("options.timeseries.{0} is not a valid field name")]
    InvalidName(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_come_from_the_metadata() {
        let meta = bson::doc! {"options": {"timeseries": {
            "timeField": "ts", "metaField": "meta", "granularity": "seconds",
            "bucketMaxSpanSeconds": 3600,
        }}};
        assert_eq!(
            TimeseriesOptions::from_metadata(&meta).unwrap(),
            TimeseriesOptions::new("ts", Some("meta".into()))
        );
        let no_meta = bson::doc! {"options": {"timeseries": {"timeField": "t"}}};
        assert_eq!(
            TimeseriesOptions::from_metadata(&no_meta).unwrap(),
            TimeseriesOptions::new("t", None)
        );
        assert!(TimeseriesOptions::from_metadata(&bson::doc! {"options": {}}).is_err());
        let bad = bson::doc! {"options": {"timeseries": {"timeField": 3}}};
        assert!(TimeseriesOptions::from_metadata(&bad).is_err());
    }
}
