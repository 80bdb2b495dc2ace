//! The stored form of instants.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Fixed-width UTC timestamp text: sorts and compares like the instant it denotes.
pub fn format_ts(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub fn parse_ts(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.6fZ")
        .ok()
        .map(|n| n.and_utc())
}

/// An instant as the database keeps it: fixed-width RFC 3339 UTC text with microseconds
/// (`2021-06-01T07:00:00.000000Z`), which sorts and compares like the instant on both engines.
/// Decoding a column that does not hold such text is an error naming the value, never a
/// fallback to some other instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn new(at: DateTime<Utc>) -> Timestamp {
        // The stored form keeps microseconds: round-trip exactly.
        Timestamp(parse_ts(&format_ts(at)).unwrap_or(at))
    }

    pub fn instant(self) -> DateTime<Utc> {
        self.0
    }

    pub fn parse(text: &str) -> Result<Timestamp, CorruptTimestamp> {
        parse_ts(text)
            .filter(|t| format_ts(*t) == text)
            .map(Timestamp)
            .ok_or_else(|| CorruptTimestamp(text.chars().take(64).collect()))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
        Timestamp::new(at)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_ts(self.0))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("horodatage illisible en base : « {0} »")]
pub struct CorruptTimestamp(pub String);

impl sqlx::Type<sqlx::Any> for Timestamp {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<sqlx::Any>>::type_info()
    }
    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for Timestamp {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <String as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
        Ok(Timestamp::parse(&text)?)
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Any> for Timestamp {
    fn encode_by_ref(
        &self,
        buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <String as sqlx::Encode<'q, sqlx::Any>>::encode(format_ts(self.0), buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn round_trips() {
        let t = Utc.with_ymd_and_hms(2021, 6, 1, 7, 0, 0).unwrap();
        assert_eq!(format_ts(t), "2021-06-01T07:00:00.000000Z");
        assert_eq!(parse_ts(&format_ts(t)), Some(t));
        assert_eq!(
            Timestamp::parse("2021-06-01T07:00:00.000000Z")
                .unwrap()
                .instant(),
            t
        );
    }

    #[test]
    fn a_corrupt_timestamp_is_an_error() {
        for bad in [
            "",
            "hier",
            "2021-06-01 07:00:00",
            "2021-06-01T07:00:00Z",
            "2021-13-01T07:00:00.000000Z",
        ] {
            let e = Timestamp::parse(bad).unwrap_err();
            assert!(e.to_string().contains("horodatage illisible"), "{bad}: {e}");
        }
    }
}
