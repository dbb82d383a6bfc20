//! Calendar dates without a clock: the caller hands in `now` (epoch seconds) and gets the date in
//! China Standard Time (UTC+8, no daylight saving), the zone in which birth dates are written.

/// A proleptic Gregorian calendar date.
/// What is wrong with a date ("no 30 February in 2023").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DateError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

const CST_OFFSET_SECS: i64 = 8 * 3600;

impl Date {
    /// The date in China Standard Time at `now` (epoch seconds).
    pub fn cst_from_epoch(now: i64) -> Self {
        let days = (now + CST_OFFSET_SECS).div_euclid(86_400);
        civil_from_days(days)
    }

    /// A real calendar date, or what is wrong with it ("no 30 February").
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self, DateError> {
        if !(1..=12).contains(&month) {
            return Err(DateError(format!("month {month:02} does not exist")));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(DateError(format!(
                "no {day} {} in {year}",
                MONTHS[usize::from(month) - 1]
            )));
        }
        Ok(Self { year, month, day })
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `epoch` (seconds) as RFC 3339 in China Standard Time: `2026-11-28T09:13:45+08:00`.
pub fn rfc3339(epoch: i64) -> String {
    let local = epoch + CST_OFFSET_SECS;
    let d = civil_from_days(local.div_euclid(86_400));
    let secs = local.rem_euclid(86_400);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+08:00",
        d.year,
        d.month,
        d.day,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `epoch` (seconds) as RFC 3339 in UTC: `2026-11-28T01:13:45Z` (SAML 2.0 Core §1.3.3: time values
/// "MUST be expressed in UTC form, with no time zone component").
pub fn rfc3339_utc(epoch: i64) -> String {
    let d = civil_from_days(epoch.div_euclid(86_400));
    let secs = epoch.rem_euclid(86_400);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year,
        d.month,
        d.day,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

pub fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// Epoch seconds of 00:00 China Standard Time on this date.
    pub fn cst_midnight_epoch(self) -> i64 {
        days_from_civil(self) * 86_400 - CST_OFFSET_SECS
    }

    /// `YYYY-MM-DD`.
    pub fn parse_iso(raw: &str) -> Result<Self, DateError> {
        let parts: Vec<&str> = raw.split('-').collect();
        let [y, m, d] = parts.as_slice() else {
            return Err(DateError(format!("{raw:?} is not a date (YYYY-MM-DD)")));
        };
        let bad = || DateError(format!("{raw:?} is not a date (YYYY-MM-DD)"));
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        Self::new(
            y.parse().map_err(|_| bad())?,
            m.parse().map_err(|_| bad())?,
            d.parse().map_err(|_| bad())?,
        )
    }
}

/// A civil date to days since 1970-01-01 (inverse of [`civil_from_days`]).
fn days_from_civil(date: Date) -> i64 {
    let y = i64::from(date.year) - i64::from(date.month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(date.month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(date.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a civil date (H. Hinnant's algorithm, exact for every i64 day count
/// that fits an i32 year).
fn civil_from_days(z: i64) -> Date {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    Date { year, month, day }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_utc_has_no_offset() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_796_000_025), "2026-11-30T00:53:45Z");
    }

    #[test]
    fn rfc3339_is_written_in_china_standard_time() {
        assert_eq!(rfc3339(0), "1970-01-01T08:00:00+08:00");
        assert_eq!(rfc3339(1_795_828_425), "2026-11-28T09:13:45+08:00");
        assert_eq!(rfc3339(-1), "1970-01-01T07:59:59+08:00");
    }

    #[test]
    fn epoch_seconds_become_china_standard_time_dates() {
        assert_eq!(
            Date::cst_from_epoch(0),
            Date {
                year: 1970,
                month: 1,
                day: 1
            }
        );
        // 2000-02-28T16:00:00Z is 2000-02-29 00:00 in Beijing.
        assert_eq!(
            Date::cst_from_epoch(951_753_600),
            Date {
                year: 2000,
                month: 2,
                day: 29
            }
        );
        assert_eq!(
            Date::cst_from_epoch(951_753_599),
            Date {
                year: 2000,
                month: 2,
                day: 28
            }
        );
        assert_eq!(
            Date::cst_from_epoch(-1),
            Date {
                year: 1970,
                month: 1,
                day: 1
            }
        );
        assert_eq!(
            Date::cst_from_epoch(-28_801),
            Date {
                year: 1969,
                month: 12,
                day: 31
            }
        );
    }

    #[test]
    fn days_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 10_957, 11_016, 20_000, 2_932_896] {
            let date = civil_from_days(days);
            assert_eq!(days_from_civil(date), days, "{date:?}");
        }
        let d = Date::parse_iso("2027-01-01").unwrap();
        assert_eq!(Date::cst_from_epoch(d.cst_midnight_epoch()), d);
        assert_eq!(Date::cst_from_epoch(d.cst_midnight_epoch() - 1).day, 31);
        assert!(Date::parse_iso("2027-02-30").is_err());
        assert!(Date::parse_iso("27-01-01").is_err());
    }

    #[test]
    fn impossible_dates_say_why() {
        assert_eq!(
            Date::new(1990, 2, 30).unwrap_err().to_string(),
            "no 30 February in 1990"
        );
        assert_eq!(
            Date::new(1900, 2, 29).unwrap_err().to_string(),
            "no 29 February in 1900"
        );
        Date::new(2000, 2, 29).unwrap();
        assert_eq!(
            Date::new(1990, 13, 1).unwrap_err().to_string(),
            "month 13 does not exist"
        );
    }
}
