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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn round_trips() {
        let t = Utc.with_ymd_and_hms(2021, 6, 1, 7, 0, 0).unwrap();
        assert_eq!(format_ts(t), "2021-06-01T07:00:00.000000Z");
        assert_eq!(parse_ts(&format_ts(t)), Some(t));
    }
}
