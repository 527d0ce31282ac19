//! File entries deflated by libdeflate, handed to the zip crate as a one-entry archive.
//!
//! Why this exists: libdeflate compresses a whole buffer at once, and at level 8 it writes smaller
//! archives than Info-ZIP `zip -9` in less time than `zip -6` (ARCHITECTURE.md), which the zip
//! crate's streaming backends at level 9 do not. The zip crate still writes the archive (entry
//! order, central directory, ZIP64 decisions, modes), but version 9 has no public way to add data
//! that is already compressed: the entry point taking CRC and sizes (`ZipRawValues`) is
//! crate-private. What it does offer is `ZipWriter::raw_copy_file_touch`, which copies an entry of
//! another archive without recompressing it and sets its timestamp and mode. So each file is
//! deflated straight into a minimal in-memory ZIP holding just that entry (libdeflate writes
//! right after the local header, so the compressed bytes are never moved), and copied from there.
//!
//! The one-entry archive is written by hand after PKWARE's APPNOTE.TXT (version 6.3.x): a local
//! file header (4.3.7), the file data (4.3.8), one central directory file header (4.3.12) and the
//! end of central directory record (4.3.16), with the fields of 4.4. It holds only what the zip
//! crate's reader needs and what the copy carries over: method 8 (Deflate), CRC-32, sizes, "made
//! by" Unix with the mode in the external attributes, the UTF-8 flag exactly when the zip crate
//! would set it, and no extra fields, data descriptor or comments. The copy then writes the entry
//! with the zip crate's own headers, as `ZipWriter::start_file` would.
//!
//! This file uses nothing from the rest of the crate, so `scripts/bench.sh` can build it into its
//! deflate-backend comparison unchanged.

use std::io::{self, Cursor, Seek, Write};

use libdeflater::{CompressionLvl, Compressor};
use zip::{DateTime, ZipArchive, ZipWriter};

/// The libdeflate level file entries are written at (ARCHITECTURE.md says why 8). Changing it
/// changes the archives' bytes: change `WRITER_ID` in src/emit/mod.rs with it.
pub const LEVEL: CompressionLvl = match CompressionLvl::new(8) {
    Ok(level) => level,
    Err(_) => panic!("libdeflate levels are 0 to 12"),
};

/// The longest input libdeflate at `level` (1 to 12) writes as a stored block without trying to
/// compress it: `max_passthrough_size`, 55 - 4 × level in its lib/deflate_compress.c (23 bytes at
/// level 8). A stored block costs 5 bytes more than its input, where zlib's static Huffman block
/// for an empty file takes 2, so such tiny files are better left to the zip crate's compressor.
pub fn passthrough_len(level: CompressionLvl) -> usize {
    usize::try_from(55 - 4 * i32::from(level)).unwrap_or(0)
}

/// Sizes and offsets must stay below this: 0xFFFF_FFFF in a 4-byte field means "see the ZIP64
/// extra field" (APPNOTE 4.4.8, 4.4.9, 4.4.16, 4.4.24), which this writer never writes.
const ZIP64_MARKER: u64 = u32::MAX as u64;

/// Local file header without its name (APPNOTE 4.3.7).
const LOCAL_HEADER_LEN: usize = 30;
/// Central directory file header without its name (APPNOTE 4.3.12).
const CENTRAL_HEADER_LEN: usize = 46;
/// End of central directory record without a comment (APPNOTE 4.3.16).
const END_LEN: usize = 22;

/// Deflates `data` with `compressor` and adds it to `writer` as the file entry `name`, with
/// last-modified time `time` and permissions `mode`, exactly as `ZipWriter::start_file` with
/// Deflate and those options would, except for the compressed bytes. Fails with
/// [`io::ErrorKind::FileTooLarge`] for 4 GiB or more, which would need ZIP64.
pub fn add_deflated<W: Write + Seek>(
    writer: &mut ZipWriter<W>,
    compressor: &mut Compressor,
    name: &str,
    data: &[u8],
    time: DateTime,
    mode: u32,
) -> io::Result<()> {
    let single = single_entry_zip(compressor, name, data, time, mode)?;
    let mut archive = ZipArchive::new(Cursor::new(single))?;
    writer.raw_copy_file_touch(archive.by_index_raw(0)?, time, Some(mode))?;
    Ok(())
}

/// A complete ZIP holding one Deflate entry `name` with the content `data`.
fn single_entry_zip(
    compressor: &mut Compressor,
    name: &str,
    data: &[u8],
    time: DateTime,
    mode: u32,
) -> io::Result<Vec<u8>> {
    let size = below_zip64(data.len(), name, "bytes")?;
    let name_len = u16::try_from(name.len())
        .map_err(|_| io::Error::other(format!("{name}: name too long")))?;
    let data_start = LOCAL_HEADER_LEN + name.len();
    // Zeroed, so the pages libdeflate does not reach are never touched: what stays resident is
    // the headers and the compressed bytes, not the worst-case bound.
    let bound = compressor.deflate_compress_bound(data.len());
    let mut zip = vec![0u8; data_start + bound + CENTRAL_HEADER_LEN + name.len() + END_LEN];
    let compressed_len = compressor
        .deflate_compress(data, &mut zip[data_start..data_start + bound])
        .map_err(io::Error::other)?;
    zip.truncate(data_start + compressed_len);
    let compressed_size = below_zip64(compressed_len, name, "compressed bytes")?;
    let central_start = below_zip64(zip.len(), name, "bytes of local header and data")?;

    // The fields the local and central headers share, from "version needed to extract" to
    // "extra field length" (APPNOTE 4.3.7 and 4.3.12, described in 4.4.3 to 4.4.11).
    let mut common = Vec::with_capacity(26);
    common.extend_from_slice(&20u16.to_le_bytes()); // version needed: 2.0, Deflate (4.4.3.2)
    // General purpose flags (4.4.4): only bit 11, "name is UTF-8", and only for names that are
    // not ASCII, as the zip crate sets it; no data descriptor (bit 3): sizes and CRC are known.
    let flags: u16 = if name.is_ascii() { 0 } else { 1 << 11 };
    common.extend_from_slice(&flags.to_le_bytes());
    common.extend_from_slice(&8u16.to_le_bytes()); // compression method: Deflate (4.4.5)
    common.extend_from_slice(&time.timepart().to_le_bytes()); // MS-DOS time (4.4.6)
    common.extend_from_slice(&time.datepart().to_le_bytes()); // MS-DOS date (4.4.6)
    common.extend_from_slice(&libdeflater::crc32(data).to_le_bytes()); // CRC-32 (4.4.7)
    common.extend_from_slice(&compressed_size.to_le_bytes()); // 4.4.8
    common.extend_from_slice(&size.to_le_bytes()); // 4.4.9
    common.extend_from_slice(&name_len.to_le_bytes()); // 4.4.10
    common.extend_from_slice(&0u16.to_le_bytes()); // extra field length (4.4.11)

    // Local file header (4.3.7), in front of the data libdeflate wrote.
    zip[..4].copy_from_slice(&0x0403_4b50u32.to_le_bytes());
    zip[4..LOCAL_HEADER_LEN].copy_from_slice(&common);
    zip[LOCAL_HEADER_LEN..data_start].copy_from_slice(name.as_bytes());

    // Central directory file header (4.3.12).
    zip.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    // Version made by (4.4.2): upper byte 3 = UNIX, so readers honour the mode in the external
    // attributes; lower byte 20 = APPNOTE 2.0.
    zip.extend_from_slice(&0x0314u16.to_le_bytes());
    zip.extend_from_slice(&common);
    zip.extend_from_slice(&0u16.to_le_bytes()); // file comment length (4.4.12)
    zip.extend_from_slice(&0u16.to_le_bytes()); // disk number start (4.4.13)
    zip.extend_from_slice(&0u16.to_le_bytes()); // internal file attributes (4.4.14)
    // External file attributes (4.4.15): for UNIX, st_mode in the high 16 bits (a regular file).
    const S_IFREG: u32 = 0o100_000;
    zip.extend_from_slice(&((S_IFREG | (mode & 0o7777)) << 16).to_le_bytes());
    zip.extend_from_slice(&0u32.to_le_bytes()); // offset of the local header (4.4.16)
    zip.extend_from_slice(name.as_bytes());
    let central_len = (CENTRAL_HEADER_LEN + name.len()) as u32; // name: at most u16::MAX bytes

    // End of central directory record (4.3.16): one disk, one entry, no comment.
    zip.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes()); // number of this disk
    zip.extend_from_slice(&0u16.to_le_bytes()); // disk where the central directory starts
    zip.extend_from_slice(&1u16.to_le_bytes()); // entries on this disk
    zip.extend_from_slice(&1u16.to_le_bytes()); // entries in total
    zip.extend_from_slice(&central_len.to_le_bytes());
    zip.extend_from_slice(&central_start.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes()); // comment length
    Ok(zip)
}

/// `len` as a 4-byte ZIP field, or an error naming the entry when it would need ZIP64.
fn below_zip64(len: usize, name: &str, what: &str) -> io::Result<u32> {
    match u32::try_from(len) {
        Ok(value) if u64::from(value) < ZIP64_MARKER => Ok(value),
        _ => Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("{name}: {len} {what}: 4 GiB or more would need ZIP64, which is not written"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_from_0xffff_ffff_need_zip64() {
        assert_eq!(below_zip64(0, "a", "bytes").unwrap(), 0);
        assert_eq!(below_zip64(0xffff_fffe, "a", "bytes").unwrap(), 0xffff_fffe);
        let err = below_zip64(0xffff_ffff, "a", "bytes").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(below_zip64(usize::MAX, "a", "bytes").is_err());
    }

    /// Fails when a libdeflate update moves its threshold, so that `passthrough_len` follows.
    #[test]
    fn passthrough_len_matches_libdeflate() {
        let mut compressor = Compressor::new(LEVEL);
        let len = passthrough_len(LEVEL);
        assert_eq!(len, 23);
        let mut out = vec![0; 1024];
        let stored = compressor
            .deflate_compress(&vec![0; len], &mut out)
            .unwrap();
        assert_eq!(stored, len + 5, "a stored block");
        let compressed = compressor
            .deflate_compress(&vec![0; len + 1], &mut out)
            .unwrap();
        assert!(compressed < len, "{compressed} bytes: compressed");
    }

    #[test]
    fn single_entry_zip_is_read_back_by_the_zip_crate() {
        let mut compressor = Compressor::new(LEVEL);
        let data = b"hello hello hello hello\n".repeat(100);
        let time = DateTime::from_date_and_time(2024, 2, 29, 12, 0, 0).unwrap();
        let zip = single_entry_zip(&mut compressor, "dir/h\u{e9}.txt", &data, time, 0o640).unwrap();
        let mut archive = ZipArchive::new(Cursor::new(zip)).unwrap();
        let mut file = archive.by_index(0).unwrap();
        assert_eq!(file.name().unwrap(), "dir/h\u{e9}.txt");
        assert_eq!(file.compression(), zip::CompressionMethod::Deflated);
        assert_eq!(file.last_modified(), Some(time));
        assert_eq!(file.unix_mode(), Some(0o100_640));
        assert!(file.compressed_size() < 100);
        let mut read = Vec::new();
        io::Read::read_to_end(&mut file, &mut read).unwrap();
        assert_eq!(read, data);
    }
}
