//! Durations in request bodies (a key's lifetime, a rotation's overlap, a
//! ban, a token's lifetime): humantime's grammar (`90d`, `1h 30m`, `250ms`),
//! read by one function so every body accepts the same strings, and
//! lowered to [`LONGEST`] so that adding one to the clock cannot overflow.
//! The document describes them with [`schemas::Duration`](super::schemas::Duration).

use std::time::Duration;

use serde::Deserialize;

/// The longest duration a body may ask for: 100 years (of 365.25 days).
/// A longer one is lowered to it.
pub const LONGEST: Duration = Duration::from_secs(100 * 31_557_600);

/// A duration, or `None` when the field is absent (with `#[serde(default)]`).
pub fn optional<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| parse(&text).map_err(serde::de::Error::custom))
        .transpose()
}

/// `Some(None)` for `null`, `Some(Some(d))` for a duration (the field
/// absent is `None`, by `#[serde(default)]`).
pub fn nullable<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Duration>>, D::Error> {
    optional(d).map(Some)
}

/// Reads `text`, lowered to [`LONGEST`].
fn parse(text: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(text)
        .map(|d| d.min(LONGEST))
        .map_err(|e| format!("{text:?} is not a duration like 90d, 12h or 1h 30m: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_humantime_and_are_lowered_to_a_hundred_years() {
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("999999999y 999999999y"), Ok(LONGEST));
        for bad in ["", "soon", "5", "1h 5", "-1s"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
