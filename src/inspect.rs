//! Facts read from a binary's own bytes, and the checks that hold them against a Lambda runtime.
//!
//! [`inspect_bytes`] / [`inspect_file`] parse an ELF file with the `object` crate (no external
//! tools) into [`BinaryFacts`]: class, machine, file kind, linkage and interpreter, libc, the
//! `DT_NEEDED` list, the `GLIBC_x.y` symbol versions it needs, and whether it is stripped.
//! [`check_binary`] is pure: it compares those facts with the architecture, runtime and libc a
//! binary is meant for and returns [`Finding`]s that quote the error Lambda would print.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{Dyn, ElfFile, FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, Object, ObjectSymbol};
use serde::Serialize;

use crate::regular_file::{self, InputError, Mapped};
use crate::target::{Arch, GlibcVersion, Libc};

/// Why a file could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is {what}, not a regular file", .path.display())]
    NotRegular { path: PathBuf, what: &'static str },
    #[error(
        "`{}` is {size} bytes, more than the {MAX_INPUT_BYTES} bytes (10 GiB) of Lambda's largest artifact, a container image",
        .path.display()
    )]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{} is empty, not an ELF binary", subject(.path))]
    Empty { path: Option<PathBuf> },
    #[error("{} is not an ELF binary: it looks like {found}", subject(.path))]
    NotElf {
        path: Option<PathBuf>,
        found: String,
    },
    #[error("{} is a truncated or malformed ELF file: {reason}", subject(.path))]
    Malformed {
        path: Option<PathBuf>,
        reason: String,
    },
}

impl InspectError {
    /// The file the error is about, when the input came from a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            InspectError::Read { path, .. }
            | InspectError::NotRegular { path, .. }
            | InspectError::TooLarge { path, .. } => Some(path),
            InspectError::Empty { path }
            | InspectError::NotElf { path, .. }
            | InspectError::Malformed { path, .. } => path.as_deref(),
        }
    }

    fn with_path(mut self, file: &Path) -> Self {
        match &mut self {
            InspectError::Read { .. }
            | InspectError::NotRegular { .. }
            | InspectError::TooLarge { .. } => {}
            InspectError::Empty { path }
            | InspectError::NotElf { path, .. }
            | InspectError::Malformed { path, .. } => *path = Some(file.to_path_buf()),
        }
        self
    }
}

fn subject(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!("`{}`", path.display()),
        None => "the input".to_string(),
    }
}

/// What kind of ELF file it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ElfKind {
    /// `ET_EXEC`: a position-dependent executable.
    Executable,
    /// `ET_DYN` marked `DF_1_PIE`, or with an interpreter and no soname.
    PieExecutable,
    /// `ET_DYN` that is a library.
    SharedObject,
    /// `ET_REL`: an object file, not linked.
    Relocatable,
    /// `ET_CORE`: a core dump.
    Core,
    /// Any other `e_type`.
    Other,
}

impl ElfKind {
    /// Whether the kernel can start a file of this kind as a program.
    pub fn is_executable(self) -> bool {
        matches!(self, ElfKind::Executable | ElfKind::PieExecutable)
    }

    fn describe(self) -> &'static str {
        match self {
            ElfKind::Executable => "an executable",
            ElfKind::PieExecutable => "a position-independent executable",
            ElfKind::SharedObject => "a shared library",
            ElfKind::Relocatable => "an unlinked object file",
            ElfKind::Core => "a core dump",
            ElfKind::Other => "an ELF file of unknown type",
        }
    }
}

/// Whether the binary needs the dynamic loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Linkage {
    /// No interpreter and no `DT_NEEDED`: runs on its own (static and static-pie binaries).
    Static,
    /// Has an interpreter (`PT_INTERP`) or needs shared libraries.
    Dynamic,
}

/// Byte order of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ByteOrder {
    Little,
    Big,
}

/// Everything the checks need to know about one binary, read from its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BinaryFacts {
    /// 32 or 64 (`EI_CLASS`).
    pub elf_class: u8,
    pub byte_order: ByteOrder,
    /// `e_machine`.
    pub machine: u16,
    /// The `EM_*` name of `e_machine` (`EM_X86_64`, `EM_AARCH64`, ...), or `EM_<number>`.
    pub machine_name: String,
    /// The Lambda architecture `e_machine` stands for, if Lambda has it.
    pub arch: Option<Arch>,
    pub kind: ElfKind,
    pub linkage: Linkage,
    /// The `PT_INTERP` path, e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interpreter: Option<String>,
    /// The C library the binary was linked against, when the file shows it.
    pub libc: Option<Libc>,
    /// What the `libc` guess rests on, e.g. `interpreter /lib/ld-musl-x86_64.so.1`.
    pub libc_evidence: Option<String>,
    /// Every `DT_NEEDED` soname, in file order.
    pub needed: Vec<String>,
    /// `DT_SONAME`, for libraries.
    pub soname: Option<String>,
    /// The newest glibc the binary needs, from its `GLIBC_*` version needs.
    pub max_glibc: Option<GlibcVersion>,
    /// Every `GLIBC_*` version it needs, oldest first: `GLIBC_2.2.5`, `GLIBC_2.3`, ...
    /// `GLIBC_2.34`. `GLIBC_ABI_DT_RELR` counts as 2.36; `GLIBC_PRIVATE` is left out.
    pub glibc_versions: Vec<String>,
    /// No `.symtab` section.
    pub stripped: bool,
    /// Has a `.debug_info` section.
    pub debug_info: bool,
    /// File size in bytes.
    pub size: u64,
    /// The file holds the string `AWS_LAMBDA_RUNTIME_API`: the variable every Lambda runtime
    /// client and extension reads to find its API. A program without it never speaks to Lambda.
    pub runtime_api: bool,
    /// The file holds `Lambda-Extension-Name`, the header a process registers with the
    /// Extensions API under: extensions have it, functions do not (unless they run an extension
    /// in their own process).
    pub extension_api: bool,
}

impl BinaryFacts {
    /// The `GLIBC_*` version name that sets [`BinaryFacts::max_glibc`].
    pub fn max_glibc_name(&self) -> Option<&str> {
        self.glibc_versions.last().map(String::as_str)
    }
}

/// The most bytes of one file that are inspected: Lambda's largest artifact, a container image
/// of 10 GiB (`plan::MAX_IMAGE_BYTES`); a binary cannot be larger and still run there.
pub const MAX_INPUT_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// Reads and inspects one file. Errors name the file.
pub fn inspect_file(path: &Path) -> Result<BinaryFacts, InspectError> {
    inspect_mapped(path).map(|(facts, _)| facts)
}

/// Inspects one file, and hands back its bytes for further reading (the dependency list). Only a
/// regular file of at most [`MAX_INPUT_BYTES`] is read: a FIFO or a device is refused without
/// blocking, and the bytes are mapped, not copied into memory.
pub fn inspect_mapped(path: &Path) -> Result<(BinaryFacts, Mapped), InspectError> {
    let bytes = regular_file::map_capped(path, MAX_INPUT_BYTES).map_err(|err| match err {
        InputError::Io(source) => InspectError::Read {
            path: path.to_path_buf(),
            source,
        },
        InputError::NotRegular(what) => InspectError::NotRegular {
            path: path.to_path_buf(),
            what,
        },
        InputError::TooLarge(size) => InspectError::TooLarge {
            path: path.to_path_buf(),
            size,
        },
    })?;
    let facts = inspect_bytes(&bytes).map_err(|error| error.with_path(path))?;
    Ok((facts, bytes))
}

/// Inspects an ELF file held in memory.
pub fn inspect_bytes(bytes: &[u8]) -> Result<BinaryFacts, InspectError> {
    if bytes.is_empty() {
        return Err(InspectError::Empty { path: None });
    }
    if !bytes.starts_with(&elf::ELFMAG) {
        return Err(InspectError::NotElf {
            path: None,
            found: describe_non_elf(bytes),
        });
    }
    let malformed = |reason: String| InspectError::Malformed { path: None, reason };
    // `e_ident[EI_CLASS]`
    match bytes.get(4).copied().map(elf::FileClass) {
        Some(elf::ELFCLASS64) => inspect_elf::<elf::FileHeader64<Endianness>>(bytes),
        Some(elf::ELFCLASS32) => inspect_elf::<elf::FileHeader32<Endianness>>(bytes),
        Some(other) => Err(malformed(format!("unknown ELF class {}", other.0))),
        None => Err(malformed(format!(
            "only {} bytes, shorter than an ELF header",
            bytes.len()
        ))),
    }
}

fn inspect_elf<Elf: FileHeader<Endian = Endianness>>(
    bytes: &[u8],
) -> Result<BinaryFacts, InspectError> {
    let malformed = |reason: String| InspectError::Malformed { path: None, reason };
    let file = ElfFile::<Elf>::parse(bytes).map_err(read_error)?;
    let endian = file.endian();
    let header = file.elf_header();
    let size = bytes.len() as u64;

    // `object` checks the header tables, not that every segment and section lies inside the
    // file; a cut-off download fails here rather than later with a confusing reason.
    for (index, segment) in file.elf_program_headers().iter().enumerate() {
        let (offset, length) = segment.file_range(endian);
        if offset.checked_add(length).is_none_or(|end| end > size) {
            return Err(malformed(format!(
                "segment {index} needs bytes {offset}..{} but the file has {size} bytes",
                offset.saturating_add(length)
            )));
        }
    }
    let sections = file.elf_section_table();
    for (index, section) in sections.iter().enumerate() {
        if let Some((offset, length)) = section.file_range(endian)
            && offset.checked_add(length).is_none_or(|end| end > size)
        {
            return Err(malformed(format!(
                "section {index} needs bytes {offset}..{} but the file has {size} bytes",
                offset.saturating_add(length)
            )));
        }
    }

    let elf_class = if header.is_class_64() { 64 } else { 32 };
    let byte_order = if header.is_little_endian() {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    let machine = header.e_machine(endian);
    let machine_name = machine
        .name()
        .map_or_else(|| format!("EM_{}", machine.0), str::to_string);
    let arch = Arch::ALL
        .into_iter()
        .find(|arch| arch.elf_machine() == machine.0);

    let mut interpreter = None;
    for segment in file.elf_program_headers() {
        if let Some(path) = segment.interpreter(endian, bytes).map_err(read_error)? {
            interpreter = Some(String::from_utf8_lossy(path).into_owned());
        }
    }

    let dynamic = if sections
        .dynamic_table(endian, bytes)
        .map_err(read_error)?
        .is_empty()
    {
        // No section headers (e.g. after `sstrip`): read what the loader reads instead.
        dynamic_from_segments(&file, bytes)?
    } else {
        dynamic_from_sections(&file, bytes)?
    };
    let DynamicInfo {
        needed,
        soname,
        flags_1,
        mut glibc,
    } = dynamic;
    glibc.sort_by(compare_glibc_needs);
    glibc.dedup_by(|a, b| a.1 == b.1);
    let max_glibc = glibc.last().map(|(version, _)| version.effective());
    let glibc_versions: Vec<String> = glibc.into_iter().map(|(_, name)| name).collect();

    let kind = match header.e_type(endian) {
        elf::ET_EXEC => ElfKind::Executable,
        elf::ET_DYN => {
            if flags_1 & elf::DF_1_PIE.0 != 0 {
                ElfKind::PieExecutable
            } else if soname.is_none() && interpreter.is_some() {
                // Linkers before binutils 2.31 did not mark PIEs.
                ElfKind::PieExecutable
            } else {
                ElfKind::SharedObject
            }
        }
        elf::ET_REL => ElfKind::Relocatable,
        elf::ET_CORE => ElfKind::Core,
        _ => ElfKind::Other,
    };
    let linkage = if interpreter.is_some() || !needed.is_empty() {
        Linkage::Dynamic
    } else {
        Linkage::Static
    };

    let stripped = sections.section_by_name(endian, b".symtab").is_none();
    let debug_info = sections.section_by_name(endian, b".debug_info").is_some()
        || sections.section_by_name(endian, b".zdebug_info").is_some();

    let (libc, libc_evidence) =
        match guess_libc(interpreter.as_deref(), &needed, !glibc_versions.is_empty()) {
            Some((libc, evidence)) => (Some(libc), Some(evidence)),
            None => match static_libc_evidence(&file, bytes)? {
                Some((libc, evidence)) => (Some(libc), Some(evidence)),
                None => (None, None),
            },
        };

    Ok(BinaryFacts {
        elf_class,
        byte_order,
        machine: machine.0,
        machine_name,
        arch,
        kind,
        linkage,
        interpreter,
        libc,
        libc_evidence,
        needed,
        soname,
        max_glibc,
        glibc_versions,
        stripped,
        debug_info,
        size,
        runtime_api: memchr::memmem::find(bytes, RUNTIME_API_VARIABLE.as_bytes()).is_some(),
        extension_api: memchr::memmem::find(bytes, EXTENSION_NAME_HEADER.as_bytes()).is_some(),
    })
}

/// What Lambda names its Runtime API's address in, for every runtime and extension.
pub const RUNTIME_API_VARIABLE: &str = "AWS_LAMBDA_RUNTIME_API";

/// The header an extension sends to register (`POST /2020-01-01/extension/register`).
pub const EXTENSION_NAME_HEADER: &str = "Lambda-Extension-Name";

/// What the dynamic table and the version needs say.
#[derive(Default)]
struct DynamicInfo {
    needed: Vec<String>,
    soname: Option<String>,
    flags_1: u64,
    glibc: Vec<(GlibcNeed, String)>,
}

impl DynamicInfo {
    fn add_version_need(&mut self, name: &[u8]) {
        let name = String::from_utf8_lossy(name);
        if let Some(version) = glibc_version_need(&name) {
            self.glibc.push((version, name.into_owned()));
        }
    }
}

fn read_error(error: object::read::Error) -> InspectError {
    InspectError::Malformed {
        path: None,
        reason: error.to_string(),
    }
}

/// Reads `SHT_DYNAMIC` and `SHT_GNU_VERNEED` through the section headers.
fn dynamic_from_sections<Elf: FileHeader<Endian = Endianness>>(
    file: &ElfFile<'_, Elf>,
    bytes: &[u8],
) -> Result<DynamicInfo, InspectError> {
    let endian = file.endian();
    let sections = file.elf_section_table();
    let mut info = DynamicInfo::default();
    let dynamic = file.elf_dynamic_table().map_err(read_error)?;
    for entry in dynamic.dynamics() {
        let tag = entry.tag(endian);
        if tag == elf::DT_NULL {
            break;
        }
        if tag == elf::DT_NEEDED || tag == elf::DT_SONAME {
            let name = entry
                .string(endian, *dynamic.strings())
                .map_err(read_error)?;
            let name = String::from_utf8_lossy(name).into_owned();
            if tag == elf::DT_NEEDED {
                info.needed.push(name);
            } else {
                info.soname = Some(name);
            }
        } else if tag == elf::DT_FLAGS_1 {
            info.flags_1 = entry.val(endian);
        }
    }
    if let Some((mut verneeds, link)) = sections.gnu_verneed(endian, bytes).map_err(read_error)? {
        let strings = sections.strings(endian, bytes, link).map_err(read_error)?;
        while let Some((_, mut aux)) = verneeds.next().map_err(read_error)? {
            while let Some(vernaux) = aux.next().map_err(read_error)? {
                info.add_version_need(vernaux.name(endian, strings).map_err(read_error)?);
            }
        }
    }
    Ok(info)
}

/// Reads `PT_DYNAMIC`, and the string table and version needs it points at, through the
/// program headers, the way the loader does.
fn dynamic_from_segments<Elf: FileHeader<Endian = Endianness>>(
    file: &ElfFile<'_, Elf>,
    bytes: &[u8],
) -> Result<DynamicInfo, InspectError> {
    let endian = file.endian();
    let malformed = |reason: &str| InspectError::Malformed {
        path: None,
        reason: reason.to_string(),
    };
    let segments = file.elf_program_headers();
    let mut entries = None;
    for segment in segments {
        if let Some(found) = segment.dynamic(endian, bytes).map_err(read_error)? {
            entries = Some(found);
        }
    }
    let Some(entries) = entries else {
        return Ok(DynamicInfo::default());
    };
    // A virtual address inside a loaded segment, as a file offset.
    let file_offset = |address: u64| -> Option<usize> {
        segments.iter().find_map(|segment| {
            if segment.p_type(endian) != elf::PT_LOAD {
                return None;
            }
            let start: u64 = segment.p_vaddr(endian).into();
            let size: u64 = segment.p_filesz(endian).into();
            let offset: u64 = segment.p_offset(endian).into();
            let delta = address.checked_sub(start)?;
            (delta < size).then(|| usize::try_from(offset + delta).ok())?
        })
    };

    let mut info = DynamicInfo::default();
    let (mut strtab, mut strsz, mut verneed, mut verneednum) = (None, None, None, 0u64);
    let mut names = Vec::new();
    for entry in entries {
        let tag = entry.tag(endian);
        let value = entry.val(endian);
        match tag {
            elf::DT_NULL => break,
            elf::DT_NEEDED | elf::DT_SONAME => names.push((tag, value)),
            elf::DT_FLAGS_1 => info.flags_1 = value,
            elf::DT_STRTAB => strtab = Some(value),
            elf::DT_STRSZ => strsz = Some(value),
            elf::DT_VERNEED => verneed = Some(value),
            elf::DT_VERNEEDNUM => verneednum = value,
            _ => {}
        }
    }
    let (Some(strtab), Some(strsz)) = (strtab, strsz) else {
        if names.is_empty() {
            return Ok(info);
        }
        return Err(malformed(
            "dynamic table has names but no DT_STRTAB/DT_STRSZ",
        ));
    };
    let start = file_offset(strtab)
        .ok_or_else(|| malformed("DT_STRTAB is outside every loaded segment"))?;
    let strings = object::read::StringTable::new(bytes, start as u64, start as u64 + strsz);
    let string = |offset: u64| -> Result<String, InspectError> {
        let name = u32::try_from(offset)
            .ok()
            .and_then(|offset| strings.get(offset).ok())
            .ok_or_else(|| malformed("dynamic string offset is out of bounds"))?;
        Ok(String::from_utf8_lossy(name).into_owned())
    };
    for (tag, value) in names {
        if tag == elf::DT_NEEDED {
            info.needed.push(string(value)?);
        } else {
            info.soname = Some(string(value)?);
        }
    }

    if let Some(verneed) = verneed {
        let mut at = file_offset(verneed)
            .ok_or_else(|| malformed("DT_VERNEED is outside every loaded segment"))?;
        let data = object::read::Bytes(bytes);
        for _ in 0..verneednum {
            let need = data
                .read_at::<elf::Verneed<Endianness>>(at)
                .map_err(|()| malformed("version need entry is out of bounds"))?;
            let mut aux_at = at.checked_add(need.vn_aux.get(endian) as usize);
            for _ in 0..need.vn_cnt.get(endian) {
                let aux = aux_at
                    .and_then(|aux_at| data.read_at::<elf::Vernaux<Endianness>>(aux_at).ok())
                    .ok_or_else(|| malformed("version need auxiliary entry is out of bounds"))?;
                let name = string(aux.vna_name.get(endian).into())?;
                info.add_version_need(name.as_bytes());
                let next = aux.vna_next.get(endian) as usize;
                if next == 0 {
                    break;
                }
                aux_at = aux_at.and_then(|aux_at| aux_at.checked_add(next));
            }
            let next = need.vn_next.get(endian) as usize;
            if next == 0 {
                break;
            }
            at = at
                .checked_add(next)
                .ok_or_else(|| malformed("version need entry is out of bounds"))?;
        }
    }
    Ok(info)
}

mod libc;
use libc::*;

mod check;
mod embedded;
pub use embedded::{EmbeddedCrate, embedded_dependencies};

pub use check::{CheckTarget, Finding, Severity, check_binary, codes};

#[cfg(test)]
pub(crate) mod facts_builder;
#[cfg(test)]
mod tests;
