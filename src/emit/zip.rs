//! Reproducible ZIP archives in the shape Lambda accepts.
//!
//! Every entry gets the same timestamp, "version made by" Unix (so the mode in the high 16 bits of
//! the external attributes is honoured), an explicit mode, Deflate for files and Stored for
//! directories, and no extra fields: the same inputs give the same bytes on any machine. Files
//! are deflated by libdeflate at level 8 (see [`deflate`] for how), except files of a few bytes,
//! which the zip crate's own Deflate (zlib-rs) writes smaller; the zip crate writes the archive.

mod deflate;

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::Path;

use libdeflater::Compressor;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

use crate::plan::Entry;

pub use crate::plan::ZipTimestamp;

fn zip_time(timestamp: ZipTimestamp) -> DateTime {
    DateTime::from_date_and_time(
        timestamp.year,
        timestamp.month,
        timestamp.day,
        timestamp.hour,
        timestamp.minute,
        timestamp.second,
    )
    .unwrap_or_default()
}

/// Writes `entries` (already sorted by the plan) to `out`. Returns the total bytes written.
///
/// Each file is read whole into memory and deflated in one call: writing it takes about its size
/// plus its compressed size in memory, one file at a time (per archive being written).
pub fn write_zip(entries: &[Entry], timestamp: ZipTimestamp, out: &File) -> io::Result<u64> {
    let mut writer = ZipWriter::new(BufWriter::with_capacity(1 << 20, out));
    let time = zip_time(timestamp);
    let base = SimpleFileOptions::default()
        .system(System::Unix)
        .last_modified_time(time);
    let mut compressor = Compressor::new(deflate::LEVEL);
    let tiny = deflate::passthrough_len(deflate::LEVEL);
    for entry in entries {
        match &entry.source {
            None => {
                let options = base
                    .compression_method(CompressionMethod::Stored)
                    .unix_permissions(entry.mode);
                writer.add_directory(entry.path.trim_end_matches('/'), options)?;
            }
            Some(source) => {
                let data = read_file(source)?;
                let (path, mode) = (entry.path.as_str(), entry.mode);
                if data.len() > tiny {
                    deflate::add_deflated(&mut writer, &mut compressor, path, &data, time, mode)?;
                } else {
                    // libdeflate would copy these few bytes into a stored block (5 bytes more);
                    // the zip crate's own Deflate (zlib-rs) writes them as it always has.
                    let options = base
                        .compression_method(CompressionMethod::Deflated)
                        .compression_level(Some(9))
                        .unix_permissions(mode);
                    writer.start_file(path, options)?;
                    writer.write_all(&data)?;
                }
            }
        }
    }
    let mut buffered = writer.finish()?;
    buffered.flush()?;
    let length = buffered.stream_position()?;
    Ok(length)
}

/// The whole content of `source`. Refuses files of 4 GiB or more before reading them: their
/// entries would need ZIP64 sizes, which [`deflate`] does not write (and Lambda takes at most
/// 250 MB unzipped anyway).
fn read_file(source: &Path) -> io::Result<Vec<u8>> {
    let with_path =
        |err: io::Error| io::Error::new(err.kind(), format!("{}: {err}", source.display()));
    let mut file = File::open(source).map_err(with_path)?;
    let len = file.metadata().map_err(with_path)?.len();
    if len >= u64::from(u32::MAX) {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "{}: {len} bytes: files of 4 GiB or more are not supported in a ZIP (they would need ZIP64)",
                source.display()
            ),
        ));
    }
    let mut data = Vec::with_capacity(len as usize);
    file.read_to_end(&mut data).map_err(with_path)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::path::PathBuf;

    use zip::ZipArchive;

    use super::*;

    /// One directory and files of every kind the writer meets: compressible, empty, tiny (left to
    /// the zip crate's Deflate), a name that is not ASCII (the UTF-8 flag), modes without the
    /// executable bits.
    fn sample_entries(dir: &Path) -> Vec<(Entry, Vec<u8>)> {
        let mut bootstrap = Vec::new();
        for i in 0u32..40_000 {
            bootstrap.extend_from_slice(
                format!("fn handler_{}() -> u32 {{ {i} }}\n", i % 97).as_bytes(),
            );
            bootstrap.extend_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
        }
        let files: [(&str, u32, Vec<u8>); 5] = [
            ("bootstrap", 0o755, bootstrap),
            ("lib/empty", 0o644, Vec::new()),
            ("lib/na\u{ef}ve.txt", 0o644, b"caf\xc3\xa9\n".repeat(3)),
            ("lib/tiny", 0o600, vec![0x5a]),
            ("lib/x", 0o600, (0u8..=255).cycle().take(1000).collect()),
        ];
        let mut entries = vec![(
            Entry {
                path: "lib/".to_string(),
                mode: 0o755,
                source: None,
                size: 0,
            },
            Vec::new(),
        )];
        for (index, (path, mode, content)) in files.into_iter().enumerate() {
            let source = dir.join(format!("source-{index}"));
            std::fs::write(&source, &content).unwrap();
            let entry = Entry {
                path: path.to_string(),
                mode,
                source: Some(source),
                size: content.len() as u64,
            };
            entries.push((entry, content));
        }
        entries.sort_by(|a, b| a.0.path.cmp(&b.0.path));
        entries
    }

    fn zip_bytes(entries: &[Entry], timestamp: ZipTimestamp) -> Vec<u8> {
        let mut out = tempfile::tempfile().unwrap();
        let written = write_zip(entries, timestamp, &out).unwrap();
        let mut bytes = Vec::new();
        out.rewind().unwrap();
        out.read_to_end(&mut bytes).unwrap();
        assert_eq!(written, bytes.len() as u64);
        bytes
    }

    /// CRC-32 (ISO-HDLC, as ZIP uses), bit by bit: independent of both libdeflate and the zip crate.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
            }
        }
        !crc
    }

    #[test]
    fn entries_round_trip_through_the_zip_crate_reader() {
        let dir = tempfile::tempdir().unwrap();
        let sample = sample_entries(dir.path());
        let entries: Vec<Entry> = sample.iter().map(|(entry, _)| entry.clone()).collect();
        let timestamp = ZipTimestamp::from_epoch(Some(1_700_000_000));
        let bytes = zip_bytes(&entries, timestamp);
        let mut archive = ZipArchive::new(Cursor::new(&bytes)).unwrap();
        assert_eq!(archive.len(), sample.len());
        for (index, (entry, content)) in sample.iter().enumerate() {
            let mut file = archive.by_index(index).unwrap();
            assert_eq!(file.name().unwrap(), entry.path);
            assert_eq!(
                file.last_modified(),
                Some(zip_time(timestamp)),
                "{}",
                entry.path
            );
            assert_eq!(file.extra_data_fields().count(), 0, "{}", entry.path);
            if entry.source.is_none() {
                assert!(file.is_dir());
                assert_eq!(file.compression(), CompressionMethod::Stored);
                assert_eq!(file.unix_mode(), Some(0o040_000 | entry.mode));
                continue;
            }
            assert_eq!(
                file.compression(),
                CompressionMethod::Deflated,
                "{}",
                entry.path
            );
            assert_eq!(
                file.unix_mode(),
                Some(0o100_000 | entry.mode),
                "{}",
                entry.path
            );
            assert_eq!(file.size(), content.len() as u64);
            assert_eq!(file.crc32(), crc32(content), "{}", entry.path);
            // Reading to the end also checks the CRC against the inflated bytes.
            let mut read = Vec::new();
            file.read_to_end(&mut read).unwrap();
            assert_eq!(&read, content, "{}", entry.path);
        }
        // Empty: the 2-byte static block zlib-rs writes, not libdeflate's 5-byte stored block.
        assert_eq!(archive.by_name("lib/empty").unwrap().compressed_size(), 2);
        let bootstrap = archive.by_name("bootstrap").unwrap();
        let (compressed, size) = (bootstrap.compressed_size(), bootstrap.size());
        assert!(compressed * 2 < size, "{compressed} of {size} bytes");
    }

    /// The headers libdeflate's entries end up with are byte for byte those the zip crate writes
    /// when it compresses a file itself: only the compressed sizes and offsets differ.
    #[test]
    fn headers_match_the_zip_crates_own() {
        let dir = tempfile::tempdir().unwrap();
        let sample = sample_entries(dir.path());
        let entries: Vec<Entry> = sample.iter().map(|(entry, _)| entry.clone()).collect();
        let timestamp = ZipTimestamp::from_epoch(Some(1_709_208_001));
        let ours = zip_bytes(&entries, timestamp);

        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let base = SimpleFileOptions::default()
            .system(System::Unix)
            .last_modified_time(zip_time(timestamp));
        for (entry, content) in &sample {
            if entry.source.is_none() {
                let options = base
                    .compression_method(CompressionMethod::Stored)
                    .unix_permissions(entry.mode);
                writer
                    .add_directory(entry.path.trim_end_matches('/'), options)
                    .unwrap();
            } else {
                let options = base
                    .compression_method(CompressionMethod::Deflated)
                    .unix_permissions(entry.mode);
                writer.start_file(entry.path.as_str(), options).unwrap();
                writer.write_all(content).unwrap();
            }
        }
        let reference = writer.finish().unwrap().into_inner();

        let (ours, reference) = (headers(&ours), headers(&reference));
        assert_eq!(ours.len(), sample.len());
        assert_eq!(ours, reference);
    }

    /// Every local and central header of `zip`, with the compressed size and the local header
    /// offset zeroed (APPNOTE 4.3.7, 4.3.12, 4.3.16; no ZIP64, no archive comment).
    fn headers(zip: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let u16_at = |at: usize| usize::from(u16::from_le_bytes([zip[at], zip[at + 1]]));
        let u32_at = |at: usize| u32::from_le_bytes(zip[at..at + 4].try_into().unwrap()) as usize;
        let end = zip.len() - 22;
        assert_eq!(u32_at(end), 0x0605_4b50);
        let (count, mut at) = (u16_at(end + 10), u32_at(end + 16));
        let mut out = Vec::new();
        for _ in 0..count {
            assert_eq!(u32_at(at), 0x0201_4b50);
            let len = 46 + u16_at(at + 28) + u16_at(at + 30) + u16_at(at + 32);
            let mut central = zip[at..at + len].to_vec();
            let local_at = u32_at(at + 42);
            central[20..24].fill(0);
            central[42..46].fill(0);
            assert_eq!(u32_at(local_at), 0x0403_4b50);
            let local_len = 30 + u16_at(local_at + 26) + u16_at(local_at + 28);
            let mut local = zip[local_at..local_at + local_len].to_vec();
            local[18..22].fill(0);
            out.push((local, central));
            at += len;
        }
        out
    }

    #[test]
    fn output_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<Entry> = sample_entries(dir.path())
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        let timestamp = ZipTimestamp::from_epoch(Some(1_700_000_000));
        assert_eq!(
            zip_bytes(&entries, timestamp),
            zip_bytes(&entries, timestamp)
        );
    }

    /// Archives written at another level must not count as unchanged (`inputs_sha256`).
    #[test]
    fn writer_id_names_the_deflate_level() {
        let level = i32::from(deflate::LEVEL);
        assert!(crate::emit::WRITER_ID.ends_with(&format!(" zip libdeflate-{level}")));
    }

    #[test]
    fn files_of_4_gib_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let source: PathBuf = dir.path().join("huge");
        // Sparse: takes no disk space, and is never read.
        File::create(&source)
            .unwrap()
            .set_len(u64::from(u32::MAX))
            .unwrap();
        let entries = [Entry {
            path: "huge".to_string(),
            mode: 0o644,
            source: Some(source),
            size: u64::from(u32::MAX),
        }];
        let out = tempfile::tempfile().unwrap();
        let err = write_zip(&entries, ZipTimestamp::DOS_EPOCH, &out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(err.to_string().contains("4 GiB"), "{err}");
    }

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
