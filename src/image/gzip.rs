//! The gzip stream of an image layer: deterministic, and cheap on data deflate cannot shrink.
//!
//! The tar is cut into 1 MiB blocks, each deflated on its own (a fresh compressor ending in a
//! sync flush, so the blocks join into one valid deflate stream) — unless a 64 KiB sample of the
//! block does not shrink by a tenth, in which case the block is written as stored deflate blocks,
//! a plain copy. Random or already-compressed data (media, archives, model weights) thus costs a
//! copy instead of a futile deflate pass; what a layer becomes depends only on its bytes, so the
//! same layer gives the same blob on every machine. The header has no name, no time and OS 255.

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress};

const BLOCK: usize = 1 << 20;
const SAMPLE: usize = 64 << 10;
const LEVEL: u32 = 6;
/// Magic, deflate, no flags, mtime 0, no extra flags, OS "unknown".
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

pub struct GzipBlocks<W: Write> {
    inner: W,
    pending: Vec<u8>,
    crc: Crc,
    started: bool,
}

impl<W: Write> GzipBlocks<W> {
    pub fn new(inner: W) -> Self {
        GzipBlocks {
            inner,
            pending: Vec::with_capacity(BLOCK),
            crc: Crc::new(),
            started: false,
        }
    }

    /// Writes what is pending, the final (empty) block and the trailer; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.start()?;
        if !self.pending.is_empty() {
            let block = std::mem::take(&mut self.pending);
            self.write_block(&block)?;
        }
        // A final stored block of length 0 closes the deflate stream.
        self.inner.write_all(&[1, 0, 0, 0xff, 0xff])?;
        self.inner.write_all(&self.crc.sum().to_le_bytes())?;
        self.inner.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.inner)
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.inner.write_all(&HEADER)?;
            self.started = true;
        }
        Ok(())
    }

    fn write_block(&mut self, block: &[u8]) -> io::Result<()> {
        self.crc.update(block);
        let sample = &block[..block.len().min(SAMPLE)];
        if deflate(sample)?.len() * 10 >= sample.len() * 9 {
            for piece in block.chunks(u16::MAX as usize) {
                let len = piece.len() as u16;
                self.inner.write_all(&[0])?;
                self.inner.write_all(&len.to_le_bytes())?;
                self.inner.write_all(&(!len).to_le_bytes())?;
                self.inner.write_all(piece)?;
            }
        } else {
            let compressed = deflate(block)?;
            self.inner.write_all(&compressed)?;
        }
        Ok(())
    }
}

/// `data` deflated on its own, ending in a sync flush (byte-aligned, not final).
fn deflate(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(Compression::new(LEVEL), false);
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 64);
    loop {
        let consumed = compress.total_in() as usize;
        compress
            .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        if compress.total_in() as usize == data.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        out.reserve(64 * 1024);
    }
}

impl<W: Write> Write for GzipBlocks<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.start()?;
        let room = BLOCK - self.pending.len();
        let taken = buf.len().min(room);
        self.pending.extend_from_slice(&buf[..taken]);
        if self.pending.len() == BLOCK {
            let block = std::mem::replace(&mut self.pending, Vec::with_capacity(BLOCK));
            self.write_block(&block)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut writer = GzipBlocks::new(Vec::new());
        writer.write_all(data).unwrap();
        writer.finish().unwrap()
    }

    #[test]
    fn any_reader_gets_the_bytes_back_and_noise_is_stored_not_deflated() {
        let mut state: u64 = 1;
        let noise: Vec<u8> = (0..3 * BLOCK + 12_345)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let text = b"a function's data, a function's data ".repeat(80_000);
        for data in [
            &noise[..],
            &text[..],
            &[][..],
            &[&text[..], &noise[..]].concat()[..],
        ] {
            let blob = gzip(data);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&blob[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
            assert_eq!(blob, gzip(data), "the same bytes every time");
        }
        // Noise costs its size plus a few bytes per 64 KiB; text still shrinks.
        assert!(gzip(&noise).len() < noise.len() + noise.len() / 1000 + 64);
        assert!(gzip(&text).len() < text.len() / 20);
        // Python's zlib (an independent reader) agrees.
        let blob = gzip(&[&text[..], &noise[..]].concat());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.gz");
        std::fs::write(&path, &blob).unwrap();
        let output = std::process::Command::new("python3")
            .args([
                "-c",
                "import gzip, sys; print(len(gzip.open(sys.argv[1]).read()))",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            (text.len() + noise.len()).to_string()
        );
    }
}
