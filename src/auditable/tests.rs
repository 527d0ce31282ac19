use std::ffi::OsString;
use std::io::Read;

use object::{Object, ObjectSection, ObjectSymbol};

use super::*;

#[test]
fn the_object_holds_the_compressed_json_under_the_symbol_for_both_architectures() {
    let json = br#"{"packages":[{"name":"fn-a","version":"0.1.0","source":"local","root":true}]}"#;
    for architecture in [Architecture::X86_64, Architecture::Aarch64] {
        let bytes = object_file(&compress(json), architecture).unwrap();
        assert_eq!(bytes, object_file(&compress(json), architecture).unwrap());
        let file = object::File::parse(&*bytes).unwrap();
        assert_eq!(file.architecture(), architecture);
        let section = file.section_by_name(".dep-v0").expect("a .dep-v0 section");
        let mut inflated = Vec::new();
        flate2::read::ZlibDecoder::new(section.data().unwrap())
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, json);
        let symbol = file.symbol_by_name(SYMBOL).expect("the symbol");
        assert_eq!(symbol.section_index(), Some(section.index()));
    }
}

#[test]
fn rustc_arguments_are_read_in_both_spellings() {
    let args: Vec<OsString> = [
        "--crate-name",
        "fn_a",
        "--crate-type=bin",
        "-C",
        "extra-filename=-abc",
        "-Clinker=/usr/bin/rust-lld",
        "--out-dir",
        "/t/deps",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    assert_eq!(values(&args, "--crate-type"), ["bin"]);
    assert_eq!(rustc_arg(&args, "--out-dir").as_deref(), Some("/t/deps"));
    assert_eq!(codegen(&args, "extra-filename").as_deref(), Some("-abc"));
    assert!(bare_linker(&codegen(&args, "linker").unwrap()));
    assert!(!bare_linker("/t/zigcc-x86_64.sh"));
}
