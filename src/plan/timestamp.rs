//! Reproducibility: the one timestamp every ZIP entry carries, from `SOURCE_DATE_EPOCH`. A plan
//! decision (the same inputs give the same archive), carried out by emit's ZIP writer.

use serde::Serialize;

/// The timestamp stored in every entry (MS-DOS date and time, no time zone, 2-second steps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ZipTimestamp {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl ZipTimestamp {
    /// The earliest time a ZIP can hold, used when `SOURCE_DATE_EPOCH` is not set.
    pub const DOS_EPOCH: ZipTimestamp = ZipTimestamp {
        year: 1980,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };

    /// Converts `SOURCE_DATE_EPOCH` (UTC seconds) to the ZIP's range, clamped to 1980–2107.
    pub fn from_epoch(epoch: Option<u64>) -> ZipTimestamp {
        let Some(seconds) = epoch else {
            return ZipTimestamp::DOS_EPOCH;
        };
        let days = (seconds / 86_400) as i64;
        let rem = seconds % 86_400;
        let (year, month, day) = civil_from_days(days);
        if year < 1980 {
            return ZipTimestamp::DOS_EPOCH;
        }
        if year > 2107 {
            return ZipTimestamp {
                year: 2107,
                month: 12,
                day: 31,
                hour: 23,
                minute: 59,
                second: 58,
            };
        }
        ZipTimestamp {
            year: year as u16,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            // DOS time counts seconds in steps of two; round down so every reader agrees.
            second: (rem % 60) as u8 & !1,
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after Howard Hinnant's
/// `civil_from_days`, which is exact for every day in range. Also verify's, for log stream names
/// and telemetry times.
pub(crate) fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn days_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_416), (2025, 11, 24));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
