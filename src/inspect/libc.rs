//! Which libc a binary was linked against, the newest glibc symbol version it needs, and what a
//! file that is not ELF looks like.

use super::*;

/// A `GLIBC_*` version need: the numeric parts of `GLIBC_2.2.5`, or the glibc release that
/// introduced a marker such as `GLIBC_ABI_DT_RELR`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct GlibcNeed(Vec<u32>);

impl GlibcNeed {
    pub(super) fn effective(&self) -> GlibcVersion {
        GlibcVersion::new(
            self.0.first().copied().unwrap_or(0),
            self.0.get(1).copied().unwrap_or(0),
        )
    }
}

/// Parses a version-need name. `GLIBC_PRIVATE` and names that are not glibc's give `None`.
pub(super) fn glibc_version_need(name: &str) -> Option<GlibcNeed> {
    let rest = name.strip_prefix("GLIBC_")?;
    if rest == "ABI_DT_RELR" {
        // Binaries linked with `-z pack-relative-relocs` need the loader from glibc 2.36.
        return Some(GlibcNeed(vec![2, 36]));
    }
    let parts: Option<Vec<u32>> = rest.split('.').map(|part| part.parse().ok()).collect();
    let parts = parts?;
    (parts.len() >= 2).then_some(GlibcNeed(parts))
}

pub(super) fn compare_glibc_needs(a: &(GlibcNeed, String), b: &(GlibcNeed, String)) -> Ordering {
    // On a tie (GLIBC_2.36 and GLIBC_ABI_DT_RELR) the numeric name sorts last, so it is the
    // one reported as the newest.
    a.0.cmp(&b.0).then_with(|| {
        let a_marker = a.1.starts_with("GLIBC_ABI_");
        let b_marker = b.1.starts_with("GLIBC_ABI_");
        b_marker.cmp(&a_marker).then_with(|| a.1.cmp(&b.1))
    })
}

/// The libc a dynamically linked file uses, from its interpreter, needs and versions.
pub(super) fn guess_libc(
    interpreter: Option<&str>,
    needed: &[String],
    has_glibc_versions: bool,
) -> Option<(Libc, String)> {
    if let Some(interpreter) = interpreter {
        let file_name = interpreter.rsplit('/').next().unwrap_or(interpreter);
        if file_name.starts_with("ld-musl-") {
            return Some((Libc::Musl, format!("interpreter {interpreter}")));
        }
        if file_name.starts_with("ld-linux") || file_name.starts_with("ld64.so") {
            return Some((Libc::Gnu, format!("interpreter {interpreter}")));
        }
    }
    for soname in needed {
        if soname == "libc.so.6" {
            return Some((Libc::Gnu, format!("needs {soname}")));
        }
        if soname == "libc.so" || soname.starts_with("libc.musl-") {
            return Some((Libc::Musl, format!("needs {soname}")));
        }
    }
    if has_glibc_versions {
        return Some((Libc::Gnu, "needs GLIBC_* symbol versions".to_string()));
    }
    None
}

/// Symbols only one libc's static start-up code defines.
const MUSL_SYMBOLS: [&[u8]; 2] = [b"__init_libc", b"__libc_start_init"];
const GLIBC_SYMBOLS: [&[u8]; 2] = [b"__libc_setup_tls", b"_dl_aux_init"];

/// The libc of a file without dynamic evidence: glibc's start files add an `NT_GNU_ABI_TAG`
/// note, and an unstripped binary names each libc's start-up functions. A stripped static
/// musl binary shows nothing certain, and gets `None`.
pub(super) fn static_libc_evidence<Elf: FileHeader<Endian = Endianness>>(
    file: &ElfFile<'_, Elf>,
    bytes: &[u8],
) -> Result<Option<(Libc, String)>, InspectError> {
    let endian = file.endian();
    for section in file.elf_section_table().iter() {
        if let Some(mut notes) = section.notes(endian, bytes).map_err(read_error)? {
            while let Some(note) = notes.next().map_err(read_error)? {
                if note.name() == elf::ELF_NOTE_GNU && note.n_type(endian) == elf::NT_GNU_ABI_TAG {
                    return Ok(Some((Libc::Gnu, "GNU ABI tag note".to_string())));
                }
            }
        }
    }
    for symbol in file.symbols() {
        let Ok(name) = symbol.name_bytes() else {
            continue;
        };
        if MUSL_SYMBOLS.contains(&name) {
            let name = String::from_utf8_lossy(name);
            return Ok(Some((Libc::Musl, format!("symbol {name}"))));
        }
        if GLIBC_SYMBOLS.contains(&name) {
            let name = String::from_utf8_lossy(name);
            return Ok(Some((Libc::Gnu, format!("symbol {name}"))));
        }
    }
    Ok(None)
}

/// A short description of what a non-ELF file looks like, for the error message.
pub(super) fn describe_non_elf(bytes: &[u8]) -> String {
    const MACH_O: [[u8; 4]; 4] = [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xcf, 0xfa, 0xed, 0xfe],
    ];
    let found = if MACH_O.iter().any(|magic| bytes.starts_with(magic)) {
        "a Mach-O binary (macOS); Lambda runs Linux ELF binaries"
    } else if bytes.starts_with(&[0xca, 0xfe, 0xba, 0xbe]) {
        "a universal Mach-O binary (macOS) or a Java class file"
    } else if bytes.starts_with(b"MZ") {
        "a PE executable (Windows); Lambda runs Linux ELF binaries"
    } else if bytes.starts_with(b"\0asm") {
        "a WebAssembly module"
    } else if bytes.starts_with(b"#!") {
        "a script (it starts with #!)"
    } else if bytes.starts_with(b"PK\x03\x04") {
        "a ZIP archive"
    } else if bytes.starts_with(b"!<arch>\n") {
        "an ar archive (a static library)"
    } else if bytes.first() == Some(&0x7f) || !looks_like_text(bytes) {
        let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return format!("unrecognised data (first bytes {})", head.join(" "));
    } else {
        "a text file"
    };
    found.to_string()
}

/// Whether the start of `bytes` is UTF-8 text without control characters other than whitespace.
pub(super) fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A multi-byte character cut at the 4096-byte boundary is still text.
        Err(error) if error.error_len().is_none() => {
            std::str::from_utf8(&head[..error.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    text.chars()
        .all(|c| !c.is_control() || c.is_ascii_whitespace())
}
