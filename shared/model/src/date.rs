//! FHIR `date` values with their precision (`1980`, `1980-03`, `1980-03-14`), validated against the
//! calendar, and the date part of FHIR `dateTime`s.
//!
//! Birth dates may be partial (spec-checklist §K.65); dose dates must be full days (§J.55 wants
//! `YYYY-MM-DD`, and a year alone cannot be checked against a schedule). A `dateTime` keeps the
//! date *as written* (local to the source's offset), never converted to UTC: converting
//! `2021-01-01T23:30:00-05:00` would move the dose to the next day.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A FHIR date with year, optional month, optional day (day only with month).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FhirDate {
    year: u16,
    month: Option<u8>,
    day: Option<u8>,
}

impl FhirDate {
    /// Parses a FHIR `date` (surrounding whitespace tolerated). `None` when the format or the
    /// calendar is wrong (`1980-02-30`, `1980-13`, `0000`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let mut parts = s.split('-');
        let year = parse_fixed_u32(parts.next()?, 4)?;
        if year == 0 {
            return None;
        }
        let year = u16::try_from(year).ok()?;
        let month = match parts.next() {
            None => None,
            Some(m) => Some(parse_fixed(m, 2)?),
        };
        let day = match parts.next() {
            None => None,
            Some(d) => Some(parse_fixed(d, 2)?),
        };
        if parts.next().is_some() {
            return None;
        }
        Self::from_parts(year, month, day)
    }

    /// Builds a date from parts, checking the calendar.
    pub fn from_parts(year: u16, month: Option<u8>, day: Option<u8>) -> Option<Self> {
        if year == 0 || year > 9999 {
            return None;
        }
        match (month, day) {
            (None, None) => {}
            (Some(m), None) => {
                if !(1..=12).contains(&m) {
                    return None;
                }
            }
            (Some(m), Some(d)) => {
                let month = time::Month::try_from(m).ok()?;
                time::Date::from_calendar_date(i32::from(year), month, d).ok()?;
            }
            (None, Some(_)) => return None,
        }
        Some(Self { year, month, day })
    }

    /// Parses the date part of a FHIR `dateTime`: a date of any precision, or `YYYY-MM-DDThh:mm…`
    /// whose time part is not interpreted further (lenient: sources omit seconds or the offset).
    pub fn parse_date_time(s: &str) -> Option<Self> {
        let s = s.trim();
        match s.split_once('T') {
            Some((date, time)) if !time.is_empty() => {
                let d = Self::parse(date)?;
                d.is_full().then_some(d)
            }
            Some(_) => None,
            None => Self::parse(s),
        }
    }

    /// Year.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// Month (1–12), if known.
    pub fn month(&self) -> Option<u8> {
        self.month
    }

    /// Day of month, if known.
    pub fn day(&self) -> Option<u8> {
        self.day
    }

    /// Whether the date is precise to the day.
    pub fn is_full(&self) -> bool {
        self.day.is_some()
    }
}

/// Exactly `width` ASCII digits, as a month or day.
fn parse_fixed(s: &str, width: usize) -> Option<u8> {
    parse_fixed_u32(s, width).and_then(|v| u8::try_from(v).ok())
}

/// Exactly `width` ASCII digits.
fn parse_fixed_u32(s: &str, width: usize) -> Option<u32> {
    if s.len() != width || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for FhirDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some(m) = self.month {
            write!(f, "-{m:02}")?;
        }
        if let Some(d) = self.day {
            write!(f, "-{d:02}")?;
        }
        Ok(())
    }
}

impl Serialize for FhirDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FhirDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom("invalid FHIR date"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_and_full_dates_round_trip() {
        for s in ["1980", "1980-03", "1980-03-14", "2024-02-29"] {
            assert_eq!(FhirDate::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            FhirDate::parse(" 1980-03-14 \n").unwrap().to_string(),
            "1980-03-14"
        );
    }

    #[test]
    fn invalid_dates_are_refused() {
        for s in [
            "1980-02-30",
            "1981-02-29",
            "1980-13",
            "1980-00",
            "0000",
            "80-01-01",
            "1980-1-1",
            "1980/01/01",
            "",
            "1980-01-01-01",
            "abcd",
        ] {
            assert!(FhirDate::parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn date_time_keeps_the_local_date() {
        let d = FhirDate::parse_date_time("2021-01-01T23:30:00-05:00").unwrap();
        assert_eq!(d.to_string(), "2021-01-01");
        assert!(FhirDate::parse_date_time("2021-01T10:00").is_none());
        assert!(FhirDate::parse_date_time("2021-02-30T10:00:00Z").is_none());
        assert_eq!(
            FhirDate::parse_date_time("2021-03").unwrap().to_string(),
            "2021-03"
        );
    }
}
