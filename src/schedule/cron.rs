//! [`CronSchedule`]: a cron expression read in an IANA time zone, and the
//! slots (instants, ms since the Unix epoch) it names. Parsing and the
//! calendar walk are [croner](https://docs.rs/croner)'s; the time zone
//! rules are [jiff](https://docs.rs/jiff)'s copy of the IANA database,
//! bundled into the module, so every runtime computes the same slots
//! whatever time zone data its platform has (a browser or workerd has no
//! zoneinfo directory).
//!
//! Daylight saving time follows croner's rules (the Open Cron Pattern
//! Specification, as Vixie cron does): a fixed-time expression (numbers in
//! its second, minute and hour fields, e.g. `30 2 * * *`) whose time falls
//! in a spring-forward gap fires once, at the first instant after the
//! gap, and once (the first pass) when a fall-back repeats its time; an
//! interval expression (`*` or a step in those fields, e.g. `*/15 * * * *`)
//! skips the slots in the gap and fires in both passes of a repeated hour.

use crate::error::{Error, Result};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// Longest cron expression accepted, bytes.
pub const MAX_CRON_BYTES: usize = 256;

/// A parsed cron expression and its time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    tz: TimeZone,
}

impl CronSchedule {
    /// Parses `expression` — five fields (minute hour day-of-month month
    /// day-of-week), an optional leading seconds field, or a nickname
    /// (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
    /// `@midnight`, `@hourly`) — read in the IANA zone `timezone` (e.g.
    /// `"Europe/Berlin"`, `"UTC"`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an expression croner rejects, one longer
    /// than [`MAX_CRON_BYTES`], a zone the IANA database does not name, or an
    /// expression that matches no instant from `now` on (`0 0 30 2 *`).
    pub fn parse(expression: &str, timezone: &str, now: i64) -> Result<CronSchedule> {
        if expression.len() > MAX_CRON_BYTES {
            return Err(Error::invalid(format!(
                "cron expression is {} bytes; at most {MAX_CRON_BYTES}",
                expression.len()
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| Error::invalid(format!("cron expression {expression:?}: {e}")))?;
        let tz = jiff::tz::db().get(timezone).map_err(|_| {
            Error::invalid(format!(
                "unknown time zone {timezone:?}: use an IANA name such as \"UTC\" or \"Europe/Berlin\""
            ))
        })?;
        let s = CronSchedule { cron, tz };
        if s.next_after(now).is_none() {
            return Err(Error::invalid(format!(
                "cron expression {expression:?} matches no time from now on"
            )));
        }
        Ok(s)
    }

    fn at(&self, ms: i64) -> Option<Zoned> {
        Some(
            Timestamp::from_millisecond(ms)
                .ok()?
                .to_zoned(self.tz.clone()),
        )
    }

    /// The first slot strictly after `ms`; `None` if there is none before
    /// croner's search limit (the year 5000).
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        let t = self.at(ms)?;
        let next = self.cron.find_next_occurrence(&t, false).ok()?;
        Some(next.timestamp().as_millisecond())
    }

    /// The last slot at or before `ms`, if any.
    pub fn latest_at_or_before(&self, ms: i64) -> Option<i64> {
        let t = self.at(ms)?;
        let prev = self.cron.find_previous_occurrence(&t, true).ok()?;
        Some(prev.timestamp().as_millisecond())
    }

    /// The last slot strictly before `ms`, if any.
    pub fn previous_before(&self, ms: i64) -> Option<i64> {
        let t = self.at(ms)?;
        let prev = self.cron.find_previous_occurrence(&t, false).ok()?;
        Some(prev.timestamp().as_millisecond())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    /// The slots in [from, to].
    fn slots(expr: &str, tz: &str, from: i64, to: i64) -> Vec<i64> {
        let s = CronSchedule::parse(expr, tz, from).unwrap();
        let mut out = Vec::new();
        let mut t = from - 1;
        while let Some(n) = s.next_after(t) {
            if n > to {
                break;
            }
            out.push(n);
            t = n;
        }
        out
    }

    fn utc(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
        jiff::civil::date(y, mo, d)
            .at(h, mi, 0, 0)
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    #[test]
    fn five_fields_seconds_and_nicknames() {
        assert_eq!(slots("* * * * *", "UTC", T0, T0 + 3_599_999).len(), 60);
        assert_eq!(slots("*/5 * * * * *", "UTC", T0, T0 + 59_999).len(), 12);
        assert_eq!(slots("@hourly", "UTC", T0, T0 + 86_399_999).len(), 24);
        assert_eq!(slots("@daily", "UTC", T0, T0 + 7 * 86_400_000 - 1).len(), 7);
        // Slots are whole seconds, strictly after the start.
        let s = CronSchedule::parse("* * * * *", "UTC", T0).unwrap();
        assert_eq!(s.next_after(T0), Some(T0 + 60_000));
        assert_eq!(s.next_after(T0 + 1), Some(T0 + 60_000));
        assert_eq!(s.latest_at_or_before(T0 + 59_999), Some(T0));
        assert_eq!(s.previous_before(T0), Some(T0 - 60_000));
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        for bad in [
            "",
            "* * * *",
            "61 * * * *",
            "* * * * * * *",
            "@often",
            "0 0 30 2 *",
        ] {
            let e = CronSchedule::parse(bad, "UTC", T0).unwrap_err();
            assert_eq!(e.code(), "DURQ_INVALID_INPUT", "{bad:?}");
        }
        let e = CronSchedule::parse("* * * * *", "Mars/Olympus", T0).unwrap_err();
        assert!(e.to_string().contains("unknown time zone"), "{e}");
        let long = "*".repeat(MAX_CRON_BYTES + 1);
        assert!(CronSchedule::parse(&long, "UTC", T0).is_err());
    }

    #[test]
    fn daylight_saving_in_berlin() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z); 2026-10-25:
        // 03:00 CEST falls back to 02:00 CET (01:00Z).
        let spring = (utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0));
        // A fixed time in the gap fires once, just after it.
        let daily = slots("30 2 * * *", "Europe/Berlin", spring.0, spring.1);
        assert_eq!(daily, vec![utc(2026, 3, 29, 1, 0)]);
        // The day has 23 hours.
        assert_eq!(
            slots("0 * * * *", "Europe/Berlin", spring.0, spring.1 - 1).len(),
            23
        );
        let autumn = (utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0));
        // A repeated fixed time fires once, in the first pass.
        let daily = slots("30 2 * * *", "Europe/Berlin", autumn.0, autumn.1);
        assert_eq!(daily, vec![utc(2026, 10, 25, 0, 30)]);
        // An interval fires in both passes: the day has 25 hours.
        assert_eq!(
            slots("0 * * * *", "Europe/Berlin", autumn.0, autumn.1 - 1).len(),
            25
        );
    }

    #[test]
    fn daylight_saving_in_new_york() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z); 2026-11-01:
        // 02:00 EDT falls back to 01:00 EST (06:00Z).
        let spring = (utc(2026, 3, 8, 5, 0), utc(2026, 3, 9, 4, 0));
        assert_eq!(
            slots("30 2 * * *", "America/New_York", spring.0, spring.1),
            vec![utc(2026, 3, 8, 7, 0)]
        );
        assert_eq!(
            slots("*/30 * * * *", "America/New_York", spring.0, spring.1 - 1).len(),
            46
        );
        let autumn = (utc(2026, 11, 1, 4, 0), utc(2026, 11, 2, 5, 0));
        assert_eq!(
            slots("30 1 * * *", "America/New_York", autumn.0, autumn.1),
            vec![utc(2026, 11, 1, 5, 30)]
        );
        assert_eq!(
            slots("*/30 * * * *", "America/New_York", autumn.0, autumn.1 - 1).len(),
            50
        );
    }
}
