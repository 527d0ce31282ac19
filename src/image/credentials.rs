//! Registry credentials where Docker and Podman users already have them.
//!
//! Looked up in order, first match wins:
//! 1. `$REGISTRY_AUTH_FILE` (Podman/skopeo's `auth.json`: an `auths` map);
//! 2. the Docker config, `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`:
//!    `credHelpers[<registry>]` (e.g. `ecr-login` runs `docker-credential-ecr-login get`), then
//!    `auths[<registry>]` (`auth` = base64 `user:password`, or `username`/`password`, or an
//!    `identitytoken`), then `credsStore` (a helper for every registry);
//! 3. none: anonymous.
//!
//! Secrets never leave this module except inside the `RegistryAuth` handed to the client: the
//! description of where a credential came from names the file and key, never the value.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use oci_client::secrets::RegistryAuth;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};

/// A credential and where it was found (for error messages; holds no secret).
pub struct Credential {
    pub auth: RegistryAuth,
    pub source: String,
}

/// `auths` keys are written many ways (`https://host/v1/`, `host`, `http://host`): the host part.
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// Docker Hub's registry is `docker.io` in references and `index.docker.io` in config files.
fn same_registry(key: &str, registry: &str) -> bool {
    let host = key_host(key);
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    host == registry || (hub(host) && hub(registry))
}

fn docker_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = env("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(Path::new(&dir).join("config.json"));
    }
    env("HOME").map(|home| Path::new(&home).join(".docker/config.json"))
}

fn read_config(path: &Path) -> Result<Option<Value>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::config(format!(
                "{}: not a JSON credentials file: {e}",
                path.display()
            ))
            .with_help("fix or remove the file (it is read for registry credentials)")
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::read(path, &err)),
    }
}

/// The credential from one `auths` entry.
fn from_auths_entry(entry: &Value) -> Option<RegistryAuth> {
    if let Some(encoded) = entry["auth"].as_str().filter(|s| !s.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return Some(RegistryAuth::Basic(user.to_string(), password.to_string()));
    }
    if let (Some(user), Some(password)) = (entry["username"].as_str(), entry["password"].as_str()) {
        return Some(RegistryAuth::Basic(user.to_string(), password.to_string()));
    }
    // An identity token is exchanged for a bearer token by the `<token>` username convention.
    entry["identitytoken"]
        .as_str()
        .map(|token| RegistryAuth::Basic("<token>".to_string(), token.to_string()))
}

fn find_auths(config: &Value, registry: &str) -> Option<(String, RegistryAuth)> {
    let auths = config["auths"].as_object()?;
    auths
        .iter()
        .filter(|(key, _)| same_registry(key, registry))
        .find_map(|(key, entry)| from_auths_entry(entry).map(|auth| (key.clone(), auth)))
}

/// Runs `docker-credential-<helper> get` for `registry`, as Docker does.
fn from_helper(helper: &str, registry: &str, source: &str) -> Result<Option<RegistryAuth>> {
    let program = format!("docker-credential-{helper}");
    let failed = |why: String| {
        Error::new(
            ErrorKind::Registry,
            format!("credential helper `{program}` ({source}) failed for {registry}: {why}"),
        )
        .with_help(format!(
            "install `{program}` on PATH or fix its setup, or remove it from the Docker config"
        ))
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        // Helpers answer "credentials not found" this way; that is not an error, just no match.
        let message = String::from_utf8_lossy(&output.stdout).to_lowercase();
        if message.contains("not found") {
            return Ok(None);
        }
        return Err(failed(format!("exit status {}", output.status)));
    }
    helper_answer(&output.stdout).map(Some).map_err(failed)
}

/// A credential helper's answer to `get`: `{"ServerURL": …, "Username": …, "Secret": …}`.
pub fn helper_answer(stdout: &[u8]) -> std::result::Result<RegistryAuth, String> {
    let answer: Value =
        serde_json::from_slice(stdout).map_err(|_| "its answer is not JSON".to_string())?;
    let user = answer["Username"].as_str().unwrap_or_default();
    let secret = answer["Secret"].as_str().unwrap_or_default();
    Ok(RegistryAuth::Basic(user.to_string(), secret.to_string()))
}

/// Runs credential helper `helper` for `registry`; `source` says where it was configured.
pub type HelperRunner<'a> = &'a dyn Fn(&str, &str, &str) -> Result<Option<RegistryAuth>>;

/// The credential for `registry` (`host[:port]`); `env` looks up environment variables.
pub fn for_registry(registry: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Credential> {
    for_registry_with(registry, env, &from_helper)
}

/// [`for_registry`] with the helpers run by `run_helper` (the fuzz target answers for them).
pub fn for_registry_with(
    registry: &str,
    env: &dyn Fn(&str) -> Option<String>,
    run_helper: HelperRunner<'_>,
) -> Result<Credential> {
    if let Some(file) = env("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        let path = PathBuf::from(file);
        if let Some(config) = read_config(&path)?
            && let Some((key, auth)) = find_auths(&config, registry)
        {
            return Ok(Credential {
                auth,
                source: format!("REGISTRY_AUTH_FILE {} auths[\"{key}\"]", path.display()),
            });
        }
    }
    if let Some(path) = docker_config_path(env)
        && let Some(config) = read_config(&path)?
    {
        let helper = config["credHelpers"]
            .as_object()
            .and_then(|h| h.iter().find(|(key, _)| same_registry(key, registry)))
            .and_then(|(key, helper)| helper.as_str().map(|h| (key.clone(), h.to_string())));
        if let Some((key, helper)) = helper {
            let source = format!("{} credHelpers[\"{key}\"] = {helper}", path.display());
            if let Some(auth) = run_helper(&helper, registry, &source)? {
                return Ok(Credential { auth, source });
            }
        }
        if let Some((key, auth)) = find_auths(&config, registry) {
            return Ok(Credential {
                auth,
                source: format!("{} auths[\"{key}\"]", path.display()),
            });
        }
        if let Some(store) = config["credsStore"].as_str().filter(|s| !s.is_empty()) {
            let source = format!("{} credsStore = {store}", path.display());
            if let Some(auth) = run_helper(store, registry, &source)? {
                return Ok(Credential { auth, source });
            }
        }
    }
    Ok(Credential {
        auth: RegistryAuth::Anonymous,
        source: "anonymous: no credentials in $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json or ~/.docker/config.json".into(),
    })
}

/// [`for_registry`] with the process's environment.
pub fn lookup(registry: &str) -> Result<Credential> {
    for_registry(registry, &|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn auths_entries_match_however_the_key_is_written() {
        let dir = tempfile::tempdir().unwrap();
        // A password with dashes: a temporary directory's random name (in `source`) cannot hold it.
        let encoded = base64::engine::general_purpose::STANDARD.encode("user:pass-word-1");
        std::fs::write(
            dir.path().join("config.json"),
            format!(
                r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{encoded}"}},
                   "http://127.0.0.1:5000": {{"username": "u2", "password": "p2"}}}}}}"#
            ),
        )
        .unwrap();
        let env = env_of(vec![("DOCKER_CONFIG", dir.path().display().to_string())]);
        let hub = for_registry("docker.io", &env).unwrap();
        assert!(
            matches!(hub.auth, RegistryAuth::Basic(ref u, ref p) if u == "user" && p == "pass-word-1")
        );
        assert!(
            hub.source
                .contains("auths[\"https://index.docker.io/v1/\"]")
        );
        assert!(
            !hub.source.contains("pass-word-1"),
            "no secret in the source"
        );
        let local = for_registry("127.0.0.1:5000", &env).unwrap();
        assert!(matches!(local.auth, RegistryAuth::Basic(ref u, _) if u == "u2"));
        let none = for_registry("registry.example", &env).unwrap();
        assert!(matches!(none.auth, RegistryAuth::Anonymous));
    }

    #[test]
    fn registry_auth_file_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        let auth_file = dir.path().join("auth.json");
        std::fs::write(
            &auth_file,
            r#"{"auths": {"127.0.0.1:5000": {"username": "podman", "password": "x"}}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {"127.0.0.1:5000": {"username": "docker", "password": "y"}}}"#,
        )
        .unwrap();
        let env = env_of(vec![
            ("DOCKER_CONFIG", dir.path().display().to_string()),
            ("REGISTRY_AUTH_FILE", auth_file.display().to_string()),
        ]);
        let found = for_registry("127.0.0.1:5000", &env).unwrap();
        assert!(matches!(found.auth, RegistryAuth::Basic(ref u, _) if u == "podman"));
        assert!(found.source.starts_with("REGISTRY_AUTH_FILE"));
    }
}
