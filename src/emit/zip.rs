//! Reproducible ZIP archives in the shape Lambda accepts.
//!
//! Every entry gets the same timestamp, "version made by" Unix (so the mode in the high 16 bits of
//! the external attributes is honoured), an explicit mode, Deflate for files and Stored for
//! directories, and no extra fields: the same inputs give the same bytes on any machine.

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::Path;

use serde::Serialize;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

use crate::plan::Entry;

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

    fn to_zip(self) -> DateTime {
        DateTime::from_date_and_time(
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        )
        .unwrap_or_default()
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after Howard Hinnant's
/// `civil_from_days`, which is exact for every day in range.
fn civil_from_days(days: i64) -> (i64, u8, u8) {
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

/// Writes `entries` (already sorted by the plan) to `out`. Returns the total bytes written.
pub fn write_zip(entries: &[Entry], timestamp: ZipTimestamp, out: &File) -> io::Result<u64> {
    let mut writer = ZipWriter::new(BufWriter::with_capacity(1 << 20, out));
    let base = SimpleFileOptions::default()
        .system(System::Unix)
        .last_modified_time(timestamp.to_zip());
    for entry in entries {
        match &entry.source {
            None => {
                let options = base
                    .compression_method(CompressionMethod::Stored)
                    .unix_permissions(entry.mode);
                writer.add_directory(entry.path.trim_end_matches('/'), options)?;
            }
            Some(source) => {
                let options = base
                    .compression_method(CompressionMethod::Deflated)
                    .compression_level(Some(9))
                    .unix_permissions(entry.mode)
                    .large_file(entry.size >= u64::from(u32::MAX));
                writer.start_file(entry.path.as_str(), options)?;
                copy_file(source, &mut writer)?;
            }
        }
    }
    let mut buffered = writer.finish()?;
    buffered.flush()?;
    let length = buffered.stream_position()?;
    Ok(length)
}

fn copy_file(source: &Path, writer: &mut impl Write) -> io::Result<()> {
    let mut file = File::open(source)
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", source.display())))?;
    io::copy(&mut file, writer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_conversion_matches_known_dates() {
        assert_eq!(ZipTimestamp::from_epoch(None), ZipTimestamp::DOS_EPOCH);
        assert_eq!(ZipTimestamp::from_epoch(Some(0)), ZipTimestamp::DOS_EPOCH);
        // 2023-11-14T22:13:20Z
        assert_eq!(
            ZipTimestamp::from_epoch(Some(1_700_000_000)),
            ZipTimestamp {
                year: 2023,
                month: 11,
                day: 14,
                hour: 22,
                minute: 13,
                second: 20
            }
        );
        // 2024-02-29T12:00:01Z: a leap day, odd second rounded down.
        assert_eq!(
            ZipTimestamp::from_epoch(Some(1_709_208_001)),
            ZipTimestamp {
                year: 2024,
                month: 2,
                day: 29,
                hour: 12,
                minute: 0,
                second: 0
            }
        );
    }
}
