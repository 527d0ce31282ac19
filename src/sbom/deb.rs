//! The Debian package a bundled shared library came from, when the build host's dpkg knows it:
//! `dpkg -S <file>` names the package, `dpkg-query` its version, `/etc/os-release` the
//! distribution (for the purl's namespace). On a host without dpkg, or for a file no package
//! owns, there is none and the SBOM lists the library by soname and hash alone.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DebPackage {
    /// `debian`, `ubuntu`, ... (`ID` of /etc/os-release).
    pub distro: String,
    pub name: String,
    pub version: String,
    /// dpkg's architecture (`amd64`, `arm64`).
    pub arch: String,
}

impl DebPackage {
    /// `pkg:deb/<distro>/<name>@<version>?arch=<arch>`, as the purl spec writes Debian packages.
    pub fn purl(&self) -> String {
        format!(
            "pkg:deb/{}/{}@{}?arch={}",
            self.distro,
            self.name,
            percent_encode(&self.version),
            self.arch
        )
    }
}

/// purl versions escape `:` (epochs) and `+`.
fn percent_encode(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace(':', "%3A")
        .replace('+', "%2B")
}

/// The package owning `file`, asked of dpkg under each name the file may be registered as
/// (usrmerge: `/lib/...` is also `/usr/lib/...`).
pub fn lookup(file: &Path) -> Option<DebPackage> {
    let mut candidates: Vec<PathBuf> = vec![file.to_path_buf()];
    if let Ok(real) = file.canonicalize() {
        candidates.push(real);
    }
    for path in candidates.clone() {
        if let Ok(rest) = path.strip_prefix("/usr") {
            candidates.push(Path::new("/").join(rest));
        } else if path.is_absolute() {
            candidates.push(Path::new("/usr").join(path.strip_prefix("/").ok()?));
        }
    }
    let owner = candidates.iter().find_map(|path| {
        let output = Command::new("dpkg").arg("-S").arg(path).output().ok()?;
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&output.stdout);
        // `libsqlite3-0:amd64: /usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6`
        let line = text.lines().next()?;
        let (package, _) = line.split_once(": ")?;
        Some(package.split(',').next()?.trim().to_string())
    })?;
    let output = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package}\t${Version}\t${Architecture}"])
        .arg(&owner)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.lines().next()?.split('\t');
    let (name, version, arch) = (fields.next()?, fields.next()?, fields.next()?);
    Some(DebPackage {
        distro: distro().unwrap_or_else(|| "debian".to_string()),
        name: name.to_string(),
        version: version.to_string(),
        arch: arch.to_string(),
    })
}

fn distro() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("ID="))
        .map(|id| id.trim_matches('"').to_string())
}
