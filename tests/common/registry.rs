//! A real OCI registry for the image tests: Debian's `docker-registry` (the CNCF distribution
//! server) on a free loopback port, started once per test binary, holding the suite's own small
//! stand-in for Lambda's base image, built with `umoci` and pushed with `skopeo` (tools independent
//! of the code under test).
//!
//! The stand-in has what Lambda's `provided` images have where this tool relies on it: a glibc
//! (copied from the build host: x86_64 from `/lib`, arm64 from Debian's cross package), a shell
//! (busybox, x86_64 only: Debian has no static arm64 busybox), `/lambda-entrypoint.sh` that execs
//! `/var/runtime/bootstrap`, the entrypoint and the `LAMBDA_TASK_ROOT`/`LAMBDA_RUNTIME_DIR` env.
//! Tags: `lambda/provided:al2023-x86_64`, `lambda/provided:al2023-arm64` (single images, as AWS
//! tags them) and `lambda/provided:al2023` (an image index holding both).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// Where the registry keeps its data (and its config).
    pub dir: PathBuf,
}

impl Registry {
    /// `<host>/<repository>:<tag>`, e.g. `reference("lambda/provided:al2023-x86_64")`.
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.host)
    }

    /// The base image's reference for an architecture (`x86_64` or `arm64`).
    pub fn base(&self, arch: &str) -> String {
        self.reference(&format!("lambda/provided:al2023-{arch}"))
    }
}

/// The registry of this test binary, started (and the base image pushed) on first use. It lives
/// as long as the test process: the kernel stops it when the process exits.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("lambda-pack-registry-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let host = start_registry(&dir);
        let registry = Registry { host, dir };
        push_base_images(&registry);
        registry
    })
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().unwrap().port()
}

/// Starts `docker-registry serve` on a free port and waits until `/v2/` answers. A port taken
/// between choosing and binding it is retried with another.
fn start_registry(dir: &Path) -> String {
    start_registry_with(dir, "")
}

/// A second registry that demands credentials (htpasswd, bcrypt): user `pusher`, password
/// [`AUTH_PASSWORD`]. Distribution accepts basic auth over plain HTTP on loopback.
pub fn auth_registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("lambda-pack-auth-registry-")
            .tempdir()
            .expect("temp dir")
            .keep();
        // bcrypt through the system's crypt(3) (libxcrypt), from Python's standard library.
        let hash = run(Command::new("python3").args([
            "-W",
            "ignore",
            "-c",
            &format!(
                "import crypt; print(crypt.crypt({AUTH_PASSWORD:?}, crypt.mksalt(crypt.METHOD_BLOWFISH)))"
            ),
        ]));
        let htpasswd = dir.join("htpasswd");
        std::fs::write(&htpasswd, format!("pusher:{}\n", hash.trim())).unwrap();
        let host = start_registry_with(
            &dir,
            &format!(
                "auth:\n  htpasswd:\n    realm: lambda-pack-tests\n    path: {}\n",
                htpasswd.display()
            ),
        );
        Registry { host, dir }
    })
}

pub const AUTH_PASSWORD: &str = "not-a-real-s3cret";

// The registry that answers is left running on purpose: it serves the whole test binary, and
// PR_SET_PDEATHSIG stops it with the process.
#[allow(clippy::zombie_processes)]
fn start_registry_with(dir: &Path, extra_config: &str) -> String {
    for _ in 0..5 {
        let port = free_port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n{extra_config}",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let mut child = spawn_tied_to_process(
            Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        );
        let host = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            // 401 is a registry demanding credentials: up as well.
            if http_get(&host, "/v2/").is_some_and(|(status, _)| status == 200 || status == 401) {
                return host;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!(
        "docker-registry did not start (installed by scripts/setup.sh, Debian package `docker-registry`); log in {}",
        dir.join("registry.log").display()
    );
}

/// Spawns `command` from a thread that lives as long as the process, with `PR_SET_PDEATHSIG`, so
/// the child is killed when the test process ends (the signal fires when the spawning *thread*
/// exits, hence the dedicated thread that never does).
fn spawn_tied_to_process(command: &mut Command) -> Child {
    use std::os::unix::process::CommandExt;
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let mut command = std::mem::replace(command, Command::new("true"));
    std::thread::spawn(move || {
        tx.send(command.spawn().expect("spawn docker-registry"))
            .unwrap();
        loop {
            std::thread::park();
        }
    });
    rx.recv().unwrap()
}

/// A plain HTTP/1.1 GET on a loopback address: `(status, body)`, or `None` if nothing listens.
pub fn http_get(host: &str, path: &str) -> Option<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(host).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&response[..head_end]);
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, response[head_end + 4..].to_vec()))
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e} (installed by scripts/setup.sh)"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Files of the host's glibc copied into the stand-in, per architecture: `(source, destination)`.
fn glibc_files(arch: &str) -> Vec<(PathBuf, String)> {
    let (dir, loader, loader_dest) = match arch {
        "x86_64" => (
            "/lib/x86_64-linux-gnu",
            "ld-linux-x86-64.so.2",
            "lib64/ld-linux-x86-64.so.2",
        ),
        _ => (
            "/usr/aarch64-linux-gnu/lib",
            "ld-linux-aarch64.so.1",
            "lib/ld-linux-aarch64.so.1",
        ),
    };
    let mut files = vec![(Path::new(dir).join(loader), loader_dest.to_string())];
    for lib in [
        "libc.so.6",
        "libm.so.6",
        "libgcc_s.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
    ] {
        files.push((Path::new(dir).join(lib), format!("lib64/{lib}")));
    }
    files
}

const ENTRYPOINT_SCRIPT: &str = "#!/bin/sh\n\
# The suite's stand-in for Lambda's entrypoint: the handler (CMD) goes to _HANDLER, then the\n\
# runtime runs.\n\
if [ $# -gt 0 ]; then export _HANDLER=\"$1\"; fi\n\
exec /var/runtime/bootstrap\n";

/// Builds the stand-in for one architecture as tag `arch` of the OCI layout at `layout`.
fn build_base(layout: &Path, work: &Path, arch: &str) {
    let image = format!("{}:{arch}", layout.display());
    run(Command::new("umoci").args(["new", "--image", &image]));
    let bundle = work.join(format!("bundle-{arch}"));
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image", &image])
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    for dir in [
        "bin",
        "lib",
        "lib64",
        "tmp",
        "var/task",
        "var/runtime",
        "opt",
    ] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    for (source, dest) in glibc_files(arch) {
        std::fs::copy(&source, rootfs.join(&dest)).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (libc6-arm64-cross and libgcc-s1-arm64-cross are installed by scripts/setup.sh)",
                source.display()
            )
        });
    }
    if arch == "x86_64" {
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("/bin/busybox (Debian package busybox-static, installed by scripts/setup.sh)");
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    }
    let script = rootfs.join("lambda-entrypoint.sh");
    std::fs::write(&script, ENTRYPOINT_SCRIPT).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    let oci_arch = if arch == "x86_64" { "amd64" } else { "arm64" };
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--architecture",
        oci_arch,
        "--os",
        "linux",
        "--config.entrypoint",
        "/lambda-entrypoint.sh",
        "--config.workingdir",
        "/var/task",
        "--config.env",
        "LAMBDA_TASK_ROOT=/var/task",
        "--config.env",
        "LAMBDA_RUNTIME_DIR=/var/runtime",
        "--config.env",
        "LD_LIBRARY_PATH=/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
        "--config.env",
        "PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin",
    ]));
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Builds both stand-ins and pushes them, then an image index holding both.
fn push_base_images(registry: &Registry) {
    let work = registry.dir.join("base");
    std::fs::create_dir_all(&work).unwrap();
    let layout = work.join("layout");
    run(Command::new("umoci")
        .arg("init")
        .arg("--layout")
        .arg(&layout));
    for arch in ["x86_64", "arm64"] {
        build_base(&layout, &work, arch);
        run(Command::new("skopeo").args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            &format!("oci:{}:{arch}", layout.display()),
            &format!("docker://{}", registry.base(arch)),
        ]));
    }
    // The index: written by hand into the layout (its manifests are already there), then copied
    // with `--all` so skopeo pushes it as the index it is.
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let mut manifests = Vec::new();
    for entry in index["manifests"].as_array().unwrap() {
        let tag = entry["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap();
        let oci_arch = if tag == "x86_64" { "amd64" } else { "arm64" };
        let mut descriptor = entry.clone();
        descriptor.as_object_mut().unwrap().remove("annotations");
        descriptor["platform"] = serde_json::json!({"architecture": oci_arch, "os": "linux"});
        manifests.push(descriptor);
    }
    let multi = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .unwrap();
    let digest = sha256_hex(&multi);
    std::fs::write(layout.join("blobs/sha256").join(&digest), &multi).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{digest}"),
            "size": multi.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{}", registry.reference("lambda/provided:al2023")),
    ]));
}

/// `skopeo inspect` of a reference (`oci:<layout>`, `docker://...`), as JSON.
pub fn skopeo_inspect(reference: &str, raw: bool) -> serde_json::Value {
    let mut command = Command::new("skopeo");
    command.args(["inspect", "--tls-verify=false"]);
    if raw {
        command.arg("--raw");
    }
    serde_json::from_str(&run(command.arg(reference))).unwrap()
}

/// How many blob uploads the registry has completed (its access log's PUTs to `/blobs/uploads/`).
pub fn blob_puts(registry: &Registry) -> usize {
    std::fs::read_to_string(registry.dir.join("registry.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"PUT /v2/") && l.contains("/blobs/uploads/"))
        .count()
}

/// Fills a workspace's base-image cache (`<target>/lambda-pack-cache/oci`, an OCI layout) with
/// skopeo, as the error message of `--offline` tells users to: `source` from the suite's
/// registry, stored under the name `as_reference` (e.g. AWS's default base), so a pack with
/// `--offline` uses it without any network.
pub fn fill_cache(target_dir: &Path, source: &str, as_reference: &str) {
    let cache = target_dir.join("lambda-pack-cache/oci");
    std::fs::create_dir_all(&cache).unwrap();
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{source}"),
        &format!("oci:{}:{as_reference}", cache.display()),
    ]));
}
