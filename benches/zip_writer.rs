//! Throughput of the ZIP writer (`emit::zip::write_zip`) on a large, binary-like `bootstrap`.
//!
//! Harness: divan rather than criterion. divan builds in a fraction of criterion's time (no
//! plotters, rayon or serde stack to compile on a 2-core machine, and `cargo test --all-targets`
//! compiles every bench), takes per-benchmark `sample_count`/`args` in the attribute, and prints
//! the median and throughput that `scripts/bench.sh` reads back.
//!
//! Inputs:
//! - `synthetic_elf`: a deterministic 32 MiB file shaped like a Rust release binary (x86-64-ish
//!   code, mangled-symbol string table, symbol table, unwind tables, read-only strings and tables,
//!   high-entropy constants and alignment padding). It deflates to about the same ratio as a real
//!   binary; neither all zeros nor all random.
//! - `real_binary`: the file named by `LAMBDA_PACK_BENCH_BINARY`, or this bench's own executable
//!   (a real optimised binary) when the variable is unset.
//!
//! With `LAMBDA_PACK_BENCH_OUT=DIR`, the inputs and one archive of each are also written to DIR
//! (`synthetic_elf.bin`, `synthetic_elf.zip`, `real_binary.zip`) so that other tools can be run
//! on the very same bytes and the sizes compared.

use std::fs::File;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cargo_lambda_pack::{BOOTSTRAP, Entry, MODE_EXECUTABLE};
use cargo_lambda_pack::{ZipTimestamp, write_zip};
use divan::Bencher;
use divan::counter::BytesCount;

/// Size of the synthetic binary.
const SYNTHETIC_BYTES: usize = 32 << 20;

fn main() {
    if let Some(dir) = std::env::var_os("LAMBDA_PACK_BENCH_OUT") {
        export(Path::new(&dir));
    }
    divan::main();
}

/// Scratch directory holding the inputs and the archives written while measuring.
fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("create a temporary directory"))
}

fn synthetic_input() -> &'static (PathBuf, u64) {
    static INPUT: OnceLock<(PathBuf, u64)> = OnceLock::new();
    INPUT.get_or_init(|| {
        let path = scratch().path().join("synthetic_elf.bin");
        let bytes = elf_like(SYNTHETIC_BYTES, 0x5eed_1a3b_da00_0001);
        std::fs::write(&path, &bytes).expect("write the synthetic binary");
        (path, bytes.len() as u64)
    })
}

fn real_input() -> &'static (PathBuf, u64) {
    static INPUT: OnceLock<(PathBuf, u64)> = OnceLock::new();
    INPUT.get_or_init(|| {
        let path = match std::env::var_os("LAMBDA_PACK_BENCH_BINARY") {
            Some(path) => PathBuf::from(path),
            None => std::env::current_exe().expect("locate the bench executable"),
        };
        let size = std::fs::metadata(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .len();
        (path, size)
    })
}

fn entries(source: &Path, size: u64) -> Vec<Entry> {
    vec![Entry {
        path: BOOTSTRAP.to_string(),
        mode: MODE_EXECUTABLE,
        source: Some(source.to_path_buf()),
        size,
    }]
}

fn bench_archive(bencher: Bencher, input: &(PathBuf, u64)) {
    let (source, size) = input;
    let entries = entries(source, *size);
    bencher
        .counter(BytesCount::new(*size))
        .with_inputs(|| tempfile::tempfile_in(scratch().path()).expect("create the output file"))
        .bench_local_values(|out| {
            write_zip(&entries, ZipTimestamp::DOS_EPOCH, &out).expect("write the archive")
        });
}

/// A 32 MiB ELF-like file through the writer, as `cargo lambda-pack` compresses a `bootstrap`.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn synthetic_elf(bencher: Bencher) {
    bench_archive(bencher, synthetic_input());
}

/// A real binary (`LAMBDA_PACK_BENCH_BINARY`, else this executable) through the writer.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn real_binary(bencher: Bencher) {
    bench_archive(bencher, real_input());
}

/// Writes the inputs and one archive of each into `dir` for comparison with other tools.
fn export(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    let (synthetic, synthetic_size) = synthetic_input();
    std::fs::copy(synthetic, dir.join("synthetic_elf.bin")).expect("copy the synthetic binary");
    for (name, (source, size)) in [
        ("synthetic_elf", (synthetic, *synthetic_size)),
        ("real_binary", (&real_input().0, real_input().1)),
    ] {
        let path = dir.join(format!("{name}.zip"));
        let mut out = File::create(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        write_zip(&entries(source, size), ZipTimestamp::DOS_EPOCH, &out)
            .expect("write the archive");
        out.flush().expect("flush the archive");
        let written = out.stream_position().expect("archive length");
        eprintln!(
            "{name}: {size} bytes in, {written} bytes zipped -> {}",
            path.display()
        );
    }
}

/// splitmix64: small, fast and deterministic; the generator must give the same bytes everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Skewed towards small indices, as real code reuses a few idioms far more than the rest.
    fn skewed(&mut self, n: usize) -> usize {
        let a = self.below(n);
        let b = self.below(n);
        a.min(b).min(self.below(n))
    }
}

/// Builds `len` bytes laid out like a Rust release binary's sections, in their usual
/// proportions: `.text` about 60%, `.strtab` 15%, `.rodata` 8%, `.eh_frame` 6%, `.symtab` 5%,
/// `.gcc_except_table` 3%, high-entropy constants 2%, the rest alignment padding.
fn elf_like(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(len + 4096);
    // ELF header: 64-bit, little-endian, x86-64, executable.
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0\x3e\0\x01\0\0\0");
    out.resize(4096, 0);

    let words = identifiers(&mut rng);
    let snippets = code_snippets(&mut rng);
    let mut section = 0usize;
    while out.len() < len {
        // Sections in runs of ~256 kB each, so the compressor sees each kind in long stretches.
        let chunk = 256 * 1024 + rng.below(64 * 1024);
        let start = out.len();
        let end = (start + chunk).min(len);
        match section % 40 {
            0..=23 => text(&mut out, end, &snippets, &mut rng),
            24..=29 => strtab(&mut out, end, &words, &mut rng),
            30..=32 => rodata(&mut out, end, &words, &mut rng),
            33..=34 => eh_frame(&mut out, end, &mut rng),
            35..=36 => symtab(&mut out, end, &mut rng),
            37 => except_table(&mut out, end, &mut rng),
            38 => random(&mut out, end.min(start + chunk / 2), &mut rng),
            _ => out.resize(end.min(start + chunk / 4), 0),
        }
        // Page-align the next section, as the linker does.
        let aligned = out.len().div_ceil(64) * 64;
        out.resize(aligned.min(len), 0);
        section += 1;
    }
    out.truncate(len);
    out
}

/// A vocabulary of identifiers such as a crate graph provides.
fn identifiers(rng: &mut Rng) -> Vec<String> {
    const SYLLABLES: [&str; 32] = [
        "core", "fmt", "io", "read", "write", "buf", "str", "vec", "iter", "map", "into", "from",
        "poll", "fut", "task", "hyper", "tokio", "serde", "de", "ser", "http", "body", "conn",
        "alloc", "raw", "drop", "clone", "next", "handle", "event", "lambda", "runtime",
    ];
    (0..1500)
        .map(|_| {
            let parts = 1 + rng.below(3);
            (0..parts)
                .map(|_| SYLLABLES[rng.skewed(SYLLABLES.len())])
                .collect::<Vec<_>>()
                .join("_")
        })
        .collect()
}

/// Instruction-like byte sequences: prologues, moves, calls and jumps with short immediates.
fn code_snippets(rng: &mut Rng) -> Vec<Vec<u8>> {
    const OPCODES: [&[u8]; 16] = [
        b"\x48\x89",
        b"\x48\x8b",
        b"\x4c\x89",
        b"\x4c\x8b",
        b"\x48\x8d",
        b"\x48\x83",
        b"\x0f\xb6",
        b"\x41\x57",
        b"\x41\x56",
        b"\x53",
        b"\x55",
        b"\xc3",
        b"\x0f\x84",
        b"\x75",
        b"\x74",
        b"\x48\x85",
    ];
    (0..4000)
        .map(|_| {
            let mut snippet = Vec::new();
            for _ in 0..1 + rng.below(6) {
                snippet.extend_from_slice(OPCODES[rng.skewed(OPCODES.len())]);
                // ModRM/SIB and a small displacement.
                snippet.push(0x40 | (rng.next() as u8 & 0x3f));
                if rng.below(3) == 0 {
                    snippet.push((rng.below(16) * 8) as u8);
                }
            }
            snippet
        })
        .collect()
}

fn text(out: &mut Vec<u8>, end: usize, snippets: &[Vec<u8>], rng: &mut Rng) {
    while out.len() < end {
        match rng.below(10) {
            // call/jmp rel32: the target offsets are the incompressible part of code.
            0..=1 => {
                out.push(if rng.below(2) == 0 { 0xe8 } else { 0xe9 });
                let rel = (rng.next() % 0x40_0000) as u32;
                out.extend_from_slice(&rel.wrapping_neg().to_le_bytes());
            }
            // mov with a 32-bit immediate or RIP-relative displacement.
            2 => {
                out.extend_from_slice(b"\x48\x8d\x05");
                out.extend_from_slice(&((rng.next() % 0x10_0000) as u32).to_le_bytes());
            }
            // Function padding between functions.
            3 if rng.below(8) == 0 => {
                let pad = rng.below(16);
                out.extend(std::iter::repeat_n(0xcc, pad));
            }
            _ => out.extend_from_slice(&snippets[rng.skewed(snippets.len())]),
        }
    }
}

fn strtab(out: &mut Vec<u8>, end: usize, words: &[String], rng: &mut Rng) {
    while out.len() < end {
        // _ZN<len><ident>...17h<16 hex digits>E, the legacy mangling of Rust symbols.
        out.extend_from_slice(b"_ZN");
        for _ in 0..2 + rng.below(4) {
            let word = &words[rng.skewed(words.len())];
            out.extend_from_slice(word.len().to_string().as_bytes());
            out.extend_from_slice(word.as_bytes());
        }
        out.extend_from_slice(b"17h");
        out.extend_from_slice(format!("{:016x}", rng.next()).as_bytes());
        out.extend_from_slice(b"E\0");
    }
}

fn rodata(out: &mut Vec<u8>, end: usize, words: &[String], rng: &mut Rng) {
    while out.len() < end {
        if rng.below(3) == 0 {
            // Lookup tables of small integers.
            for _ in 0..32 {
                out.extend_from_slice(&(rng.skewed(4096) as u32).to_le_bytes());
            }
        } else {
            // Panic messages, format strings and source paths.
            for _ in 0..3 + rng.below(8) {
                out.extend_from_slice(words[rng.skewed(words.len())].as_bytes());
                out.push(if rng.below(4) == 0 { b'/' } else { b' ' });
            }
            out.extend_from_slice(b".rs");
        }
    }
}

fn eh_frame(out: &mut Vec<u8>, end: usize, rng: &mut Rng) {
    let mut pc = 0x40_0000u32;
    while out.len() < end {
        // An FDE: length, CIE pointer, pc begin, pc range, then a few call-frame instructions.
        out.extend_from_slice(&(20 + rng.below(4) as u32 * 4).to_le_bytes());
        out.extend_from_slice(&(out.len() as u32).to_le_bytes());
        pc += 16 + rng.below(2000) as u32;
        out.extend_from_slice(&pc.to_le_bytes());
        out.extend_from_slice(&(rng.below(2000) as u32).to_le_bytes());
        out.extend_from_slice(b"\0\x41\x0e\x10\x86\x02\x43\x0d\x06");
        out.resize(out.len().div_ceil(4) * 4, 0);
    }
}

fn symtab(out: &mut Vec<u8>, end: usize, rng: &mut Rng) {
    let mut name = 1u32;
    let mut value = 0x40_0000u64;
    while out.len() < end {
        // Elf64_Sym: st_name, st_info, st_other, st_shndx, st_value, st_size.
        name += 40 + rng.below(80) as u32;
        value += 16 + rng.below(4000) as u64;
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(&[0x12, 0x02]);
        out.extend_from_slice(&14u16.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
        out.extend_from_slice(&(rng.skewed(4000) as u64).to_le_bytes());
    }
}

fn except_table(out: &mut Vec<u8>, end: usize, rng: &mut Rng) {
    while out.len() < end {
        out.extend_from_slice(b"\xff\x9b");
        for _ in 0..2 + rng.below(6) {
            // ULEB128 call-site ranges.
            out.push(rng.below(128) as u8);
            out.push(rng.below(64) as u8);
            out.push(0);
            out.push(rng.below(4) as u8);
        }
    }
}

fn random(out: &mut Vec<u8>, end: usize, rng: &mut Rng) {
    while out.len() < end {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
}
