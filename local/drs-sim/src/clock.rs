//! Wall-clock timestamps in the formats DRS and AWS use, without a date-time dependency.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A UTC instant with microsecond resolution. Job log items of a fast (scaled) job land
/// within milliseconds of each other, so their `logDateTime` needs sub-millisecond digits to
/// sort in the order they happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    micros_since_epoch: i64,
}

impl Timestamp {
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self {
            micros_since_epoch: i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX),
        }
    }

    pub fn minus(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self {
            micros_since_epoch: self.micros_since_epoch.saturating_sub(micros),
        }
    }

    pub fn plus(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self {
            micros_since_epoch: self.micros_since_epoch.saturating_add(micros),
        }
    }

    /// Whole seconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn seconds_since(self, earlier: Timestamp) -> u64 {
        u64::try_from((self.micros_since_epoch - earlier.micros_since_epoch) / 1_000_000)
            .unwrap_or(0)
    }

    fn parts(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let seconds = self.micros_since_epoch.div_euclid(1_000_000);
        let micros = self.micros_since_epoch.rem_euclid(1_000_000) as u32;
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        (
            year,
            month,
            day,
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60,
            micros,
        )
    }

    /// DRS's ISO8601DatetimeString, e.g. `2024-05-01T12:00:00.123456Z`.
    pub fn iso8601(self) -> String {
        let (y, mo, d, h, mi, s, micros) = self.parts();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z")
    }

    /// Whole seconds, as EventBridge events carry `time`: `2024-05-01T12:00:00Z`.
    pub fn iso8601_seconds(self) -> String {
        let (y, mo, d, h, mi, s, _) = self.parts();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }

    /// SigV4's `X-Amz-Date` (`20240501T120000Z`) and credential-scope date (`20240501`).
    pub fn amz_date_and_day(self) -> (String, String) {
        let (y, mo, d, h, mi, s, _) = self.parts();
        (
            format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"),
            format!("{y:04}{mo:02}{d:02}"),
        )
    }

    /// Parses DRS's ISO8601DatetimeString (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`); also accepts
    /// a `+00:00` suffix, which some clients send for UTC.
    pub fn parse_iso8601(text: &str) -> Option<Self> {
        let body = text
            .strip_suffix('Z')
            .or_else(|| text.strip_suffix("+00:00"))?;
        let (date, time) = body.split_once('T')?;
        let mut date_parts = date.splitn(3, '-');
        let year: i64 = date_parts.next()?.parse().ok()?;
        let month: u32 = date_parts.next()?.parse().ok()?;
        let day: u32 = date_parts.next()?.parse().ok()?;
        let (clock, fraction) = match time.split_once('.') {
            Some((clock, fraction)) => (clock, fraction),
            None => (time, ""),
        };
        let mut clock_parts = clock.splitn(3, ':');
        let hour: i64 = clock_parts.next()?.parse().ok()?;
        let minute: i64 = clock_parts.next()?.parse().ok()?;
        let second: i64 = clock_parts.next()?.parse().ok()?;
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut micros: i64 = 0;
        for (position, digit) in fraction.bytes().take(6).enumerate() {
            micros += i64::from(digit - b'0') * 10_i64.pow(5 - position as u32);
        }
        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
        Some(Self {
            micros_since_epoch: seconds.checked_mul(1_000_000)?.checked_add(micros)?,
        })
    }
}

/// An ISO-8601 duration as DRS writes lagDuration: `PT0S`, `PT5M`, `PT1H2M3S`, `P2DT1H`.
pub fn iso8601_duration(total_seconds: u64) -> String {
    if total_seconds == 0 {
        return "PT0S".to_owned();
    }
    let days = total_seconds / 86_400;
    let hours = total_seconds / 3600 % 24;
    let minutes = total_seconds / 60 % 60;
    let seconds = total_seconds % 60;
    let mut text = String::from("P");
    if days > 0 {
        text.push_str(&format!("{days}D"));
    }
    if hours + minutes + seconds > 0 {
        text.push('T');
        if hours > 0 {
            text.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            text.push_str(&format!("{minutes}M"));
        }
        if seconds > 0 {
            text.push_str(&format!("{seconds}S"));
        }
    }
    text
}

// Howard Hinnant's days-from-civil algorithms (public domain), proleptic Gregorian calendar.
fn civil_from_days(days_since_epoch: i64) -> (i64, u32, u32) {
    let z = days_since_epoch + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_index = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let day_of_year = (153 * month_index + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let parsed = Timestamp::parse_iso8601("2024-02-29T23:59:58.250Z");
        assert_eq!(
            parsed.map(Timestamp::iso8601).as_deref(),
            Some("2024-02-29T23:59:58.250000Z")
        );
        let epoch = Timestamp::parse_iso8601("1970-01-01T00:00:00Z");
        assert_eq!(
            epoch,
            Some(Timestamp {
                micros_since_epoch: 0
            })
        );
        assert_eq!(
            Timestamp::parse_iso8601("2001-09-09T01:46:40+00:00").map(|t| t.micros_since_epoch),
            Some(1_000_000_000_000_000)
        );
        assert_eq!(Timestamp::parse_iso8601("2024-13-01T00:00:00Z"), None);
        assert_eq!(Timestamp::parse_iso8601("yesterday"), None);
    }

    #[test]
    fn durations_read_like_drs() {
        assert_eq!(iso8601_duration(0), "PT0S");
        assert_eq!(iso8601_duration(300), "PT5M");
        assert_eq!(iso8601_duration(3723), "PT1H2M3S");
        assert_eq!(iso8601_duration(2 * 86_400 + 3600), "P2DT1H");
    }

    #[test]
    fn amz_date_has_sigv4_shape() {
        let instant = Timestamp::parse_iso8601("2024-05-01T12:03:04Z");
        let dates = instant.map(Timestamp::amz_date_and_day);
        assert_eq!(
            dates,
            Some(("20240501T120304Z".to_owned(), "20240501".to_owned()))
        );
    }
}
