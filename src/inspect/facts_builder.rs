//! The [`BinaryFacts`] unit tests start from, written out once: a test names only the fields it
//! is about (`FactsBuilder::static_musl(Arch::Arm64).size(500).shared_object().build()`, or
//! `BinaryFacts { needed: ..., ..FactsBuilder::glibc_x86_64().build() }`).

use super::{BinaryFacts, ByteOrder, ElfKind, Linkage};
use crate::target::{Arch, GlibcVersion, Libc};

pub struct FactsBuilder(BinaryFacts);

impl FactsBuilder {
    /// A stripped, dynamically linked glibc PIE executable for x86_64 that needs glibc 2.17
    /// (`libgcc_s.so.1`, `libm.so.6`, `libc.so.6`), 1,000,000 bytes, as the inspector reports a
    /// typical `cargo build --release` binary.
    pub fn glibc_x86_64() -> FactsBuilder {
        FactsBuilder(BinaryFacts {
            elf_class: 64,
            byte_order: ByteOrder::Little,
            machine: 62,
            machine_name: "EM_X86_64".to_string(),
            arch: Some(Arch::X86_64),
            kind: ElfKind::PieExecutable,
            linkage: Linkage::Dynamic,
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".to_string()),
            libc: Some(Libc::Gnu),
            libc_evidence: Some("interpreter /lib64/ld-linux-x86-64.so.2".to_string()),
            needed: vec![
                "libgcc_s.so.1".to_string(),
                "libm.so.6".to_string(),
                "libc.so.6".to_string(),
            ],
            soname: None,
            max_glibc: Some(GlibcVersion::new(2, 17)),
            glibc_versions: vec![
                "GLIBC_2.2.5".to_string(),
                "GLIBC_2.3".to_string(),
                "GLIBC_2.17".to_string(),
            ],
            stripped: true,
            debug_info: false,
            size: 1_000_000,
            runtime_api: true,
            extension_api: false,
        })
    }

    /// A stripped, statically linked musl PIE executable for `arch`, 1,000,000 bytes.
    pub fn static_musl(arch: Arch) -> FactsBuilder {
        let base = FactsBuilder::glibc_x86_64().0;
        FactsBuilder(BinaryFacts {
            machine: arch.elf_machine(),
            machine_name: match arch {
                Arch::X86_64 => "EM_X86_64".to_string(),
                Arch::Arm64 => "EM_AARCH64".to_string(),
            },
            arch: Some(arch),
            kind: ElfKind::PieExecutable,
            linkage: Linkage::Static,
            interpreter: None,
            libc: Some(Libc::Musl),
            libc_evidence: Some("symbol __init_libc".to_string()),
            needed: Vec::new(),
            max_glibc: None,
            glibc_versions: Vec::new(),
            ..base
        })
    }

    /// The file size in bytes.
    pub fn size(mut self, size: u64) -> FactsBuilder {
        self.0.size = size;
        self
    }

    /// A shared object (`ET_DYN` without an interpreter), such as a cdylib.
    pub fn shared_object(mut self) -> FactsBuilder {
        self.0.kind = ElfKind::SharedObject;
        self.0.interpreter = None;
        self
    }

    pub fn build(self) -> BinaryFacts {
        self.0
    }
}
