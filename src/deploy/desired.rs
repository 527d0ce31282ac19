//! What the account should hold, from the manifest and the deploy keys of the metadata: the
//! layers to have (name, architecture, ZIP, CodeSha256) and the functions to have (name, code,
//! the configuration this tool owns). Every ZIP is found through `manifest_paths::resolve` and
//! hashed again before anything talks to AWS: its SHA-256 and CodeSha256 are computed from the
//! file, compared with the manifest's (a mismatch is refused, naming the file), and only the
//! computed ones are used from then on, for the plan's comparisons and the S3 key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::settings::{Capacity, FunctionSettings, function_tags, layer_description, workspace_id};
use super::url::{URL_TAG, UrlWanted};
use crate::cli::DeployArgs;
use crate::error::{Error, Result};
use crate::files::{hex, sha256_file};
use crate::manifest::{Format, Manifest, ManifestArtifact, Upload};
use crate::metadata::{DeployKeys, Role};
use crate::settings::Options;
use crate::target::{Arch, Runtime};
use crate::workspace::Workspace;

/// The handler of a function whose manifest entry has none (written before `handler` existed).
pub const HANDLER: &str = "bootstrap";

/// A ZIP to send: inline, or through S3 when too large.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZipCode {
    pub path: PathBuf,
    /// Hex SHA-256 of the file, as computed by this run; the S3 key is named after it, and the
    /// bytes sent are checked against it again.
    pub sha256: String,
    pub size: u64,
    /// Where an `upload: "s3"` ZIP goes; `None` for a ZIP sent inline.
    pub s3_bucket: Option<String>,
}

impl ZipCode {
    /// The object key a ZIP is uploaded under: its hash, so an upload is skipped when present.
    pub fn s3_key(&self) -> String {
        format!("lambda-pack/{}.zip", self.sha256)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredLayer {
    /// LayerName: the artifact's name.
    pub name: String,
    pub arch: Arch,
    pub code: ZipCode,
    /// Base64 SHA-256 of the ZIP, as Lambda reports `Content.CodeSha256` (computed by this run).
    pub code_sha256: String,
    pub compatible_runtimes: Vec<String>,
    /// Description of a version this run publishes: it records the owner (layers cannot be
    /// tagged).
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FunctionCode {
    Zip(ZipCode),
    /// `<repository>@<digest>`, as pushed.
    Image(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredFunction {
    /// The manifest's artifact name.
    pub artifact: String,
    /// FunctionName in the account.
    pub function_name: String,
    pub arch: Arch,
    pub runtime: Runtime,
    pub code: FunctionCode,
    pub code_sha256: String,
    /// Artifact names of the attached layers, in merge order (all of `arch`).
    pub layers: Vec<String>,
    /// Layer version ARNs attached as they are, each with its place among all the layers
    /// (the manifest's `arn_layers`).
    pub arn_layers: Vec<(usize, String)>,
    /// Handler: the manifest's `handler` (what the runtime gets as `_HANDLER`), `bootstrap`
    /// when the manifest predates the key.
    pub handler: String,
    pub memory: Option<u64>,
    pub timeout: Option<u64>,
    /// The metadata's `env`; owned only when set.
    pub env: Option<BTreeMap<String, String>>,
    /// Needed only to create the function.
    pub iam_role: Option<String>,
    /// Tags (the ownership tag included), ephemeral storage, Managed Instances, tenancy.
    pub settings: FunctionSettings,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    pub layers: Vec<DesiredLayer>,
    pub functions: Vec<DesiredFunction>,
    /// The value of the ownership tag of this workspace's functions and layer versions.
    pub workspace_id: String,
    /// The account names of every function of this workspace in the manifest, whatever this
    /// run selects (`--prune` deletes only owned functions outside this set).
    pub all_function_names: BTreeSet<String>,
}

/// Picks the manifest's artifacts to deploy and reads their deploy keys.
pub fn collect(
    manifest: &Manifest,
    manifest_path: &Path,
    out_dir: &Path,
    workspace: &Workspace,
    args: &DeployArgs,
    options: &Options,
) -> Result<Desired> {
    let mine: Vec<&ManifestArtifact> = manifest
        .artifacts
        .iter()
        .filter(|a| Manifest::belongs_to(a, &workspace.root))
        .filter(|a| options.arch.is_none_or(|arch| a.arch == arch))
        .collect();
    // `-p` selects packages as for a pack: what their functions attach comes along.
    let in_packages = |a: &ManifestArtifact| {
        options.selection.packages.is_empty() || options.selection.packages.contains(&a.package)
    };
    for name in &args.functions {
        if !mine
            .iter()
            .any(|a| &a.name == name && a.kind == Role::Function)
        {
            let names: Vec<&str> = mine
                .iter()
                .filter(|a| a.kind == Role::Function)
                .map(|a| a.name.as_str())
                .collect();
            let mut error = Error::config(format!(
                "`{}` lists no function `{name}` of this workspace to deploy",
                manifest_path.display()
            ))
            .with_note(format!("functions: {}", names.join(", ")));
            if let Some(near) =
                crate::suggest::nearest(name, names.iter().copied(), crate::suggest::NEAR)
            {
                error = error.with_note(format!("did you mean `{near}`?"));
            }
            return Err(error.with_help(
                "name a function the manifest lists, or pack it first (or pass --build)",
            ));
        }
    }
    let functions: Vec<&ManifestArtifact> = mine
        .iter()
        .copied()
        .filter(|a| a.kind == Role::Function && in_packages(a))
        .filter(|a| args.functions.is_empty() || args.functions.contains(&a.name))
        .collect();
    // Every layer and extension the functions attach; without names, also the selection's own.
    let layers: Vec<&ManifestArtifact> = mine
        .iter()
        .copied()
        .filter(|a| a.kind != Role::Function)
        .filter(|layer| {
            (args.functions.is_empty() && in_packages(layer))
                || functions
                    .iter()
                    .any(|f| f.arch == layer.arch && f.layers.contains(&layer.name))
        })
        .collect();

    let mut desired = Desired {
        workspace_id: workspace
            .defaults
            .deploy
            .workspace_id
            .clone()
            .unwrap_or_else(|| workspace_id(&workspace.root)),
        // Whatever -p, --arch and the names select: every function of this workspace.
        all_function_names: manifest
            .artifacts
            .iter()
            .filter(|a| Manifest::belongs_to(a, &workspace.root) && a.kind == Role::Function)
            .map(|a| {
                workspace
                    .deploy_keys(&a.package, a.bin.as_deref())
                    .function_name
                    .unwrap_or_else(|| a.name.clone())
            })
            .collect(),
        ..Desired::default()
    };
    for layer in layers {
        let keys = workspace.deploy_keys(&layer.package, layer.bin.as_deref());
        let (code, code_sha256) = zip_code(layer, out_dir, manifest_path, &keys, args)?;
        desired.layers.push(DesiredLayer {
            name: layer.name.clone(),
            arch: layer.arch,
            code,
            code_sha256,
            compatible_runtimes: layer.compatible_runtimes.clone().unwrap_or_default(),
            description: layer_description(&layer.name, layer.arch, &desired.workspace_id),
        });
    }
    for function in functions {
        let keys = workspace.deploy_keys(&function.package, function.bin.as_deref());
        for name in &function.layers {
            if !desired
                .layers
                .iter()
                .any(|l| &l.name == name && l.arch == function.arch)
            {
                return Err(Error::config(format!(
                    "function `{}` ({}) attaches `{name}`, but `{}` has no {} layer `{name}` of this workspace",
                    function.name, function.arch, manifest_path.display(), function.arch
                ))
                .with_help("pack the workspace again so the manifest lists every attached layer (or pass --build)"));
            }
        }
        let (code, code_sha256) = match function.format {
            Format::Zip => {
                let (zip, code_sha256) = zip_code(function, out_dir, manifest_path, &keys, args)?;
                (FunctionCode::Zip(zip), code_sha256)
            }
            // Nothing of an image is read here: its code is its digest, pinned in `image_uri`.
            Format::Image => (FunctionCode::Image(function.image_uri.clone().ok_or_else(|| {
                Error::config(format!(
                    "function `{}` ({}) is a container image that was not pushed: `{}` has no `image_uri` for it",
                    function.name, function.arch, manifest_path.display()
                ))
                .with_help("set `image_repository` for it and pack with --push (or deploy with --build --push)")
            })?), function.code_sha256.clone()),
        };
        let function_name = keys
            .function_name
            .clone()
            .unwrap_or_else(|| function.name.clone());
        if let Some(other) = desired
            .functions
            .iter()
            .find(|f| f.function_name == function_name)
        {
            return Err(Error::config(format!(
                "`{}` ({}) and `{}` ({}) would both deploy as the function `{function_name}`",
                other.artifact, other.arch, function.name, function.arch
            ))
            .with_note("a Lambda function has one name and one architecture")
            .with_help("deploy one architecture with --arch x86_64|arm64, or give each its own `function_name`"));
        }
        desired.functions.push(DesiredFunction {
            artifact: function.name.clone(),
            function_name,
            arch: function.arch,
            runtime: function.runtime,
            code,
            code_sha256,
            layers: function.layers.clone(),
            arn_layers: function
                .arn_layers
                .iter()
                .map(|a| (a.position, a.arn.clone()))
                .collect(),
            handler: function
                .handler
                .clone()
                .unwrap_or_else(|| HANDLER.to_string()),
            memory: keys.memory,
            timeout: keys.timeout,
            env: (!function.env.is_empty()).then(|| function.env.clone()),
            iam_role: args.iam_role.clone().or(keys.iam_role.clone()),
            settings: function_settings(&keys, function, &desired.workspace_id, args)?,
        });
    }
    if desired.functions.is_empty() && desired.layers.is_empty() {
        return Err(Error::new(
            crate::error::ErrorKind::NothingToPack,
            format!(
                "`{}` lists nothing of this workspace to deploy",
                manifest_path.display()
            ),
        )
        .with_help("pack first (`cargo lambda-pack`, or pass --build), or check -p and --arch"));
    }
    Ok(desired)
}

/// The settings of `keys` for `function`, checked together (a key may come from another level
/// than the key it needs).
fn function_settings(
    keys: &DeployKeys,
    function: &ManifestArtifact,
    workspace_id: &str,
    args: &DeployArgs,
) -> Result<FunctionSettings> {
    let refused = |why: String, help: &str| {
        Error::config(format!(
            "the deploy keys of function `{}` ({}) cannot be deployed: {why}",
            function.name, function.arch
        ))
        .with_note("nothing was sent to AWS")
        .with_help(help.to_string())
    };
    let mut tags = function_tags(&keys.tags, workspace_id)
        .map_err(|why| refused(why, "rename the tag keys in `tags`"))?;
    let url = keys
        .function_url
        .as_ref()
        .and_then(|key| UrlWanted::from_key(key, args.alias.as_deref()));
    if let Some(url) = &url {
        tags.insert(URL_TAG.into(), url.tag_value());
    }
    if (keys.max_concurrency.is_some() || keys.memory_per_vcpu_milli.is_some())
        && keys.capacity_provider.is_none()
    {
        return Err(refused(
            "`max_concurrency` and `memory_per_vcpu` configure Managed Instances, and no `capacity_provider` is set".into(),
            "set `capacity_provider = \"arn:aws:lambda:<region>:<account>:capacity-provider:<name>\"`, or remove them",
        ));
    }
    Ok(FunctionSettings {
        tags,
        ephemeral_storage: keys.ephemeral_storage,
        capacity: keys.capacity_provider.as_ref().map(|arn| Capacity {
            arn: arn.clone(),
            max_concurrency: keys.max_concurrency,
            memory_per_vcpu_milli: keys.memory_per_vcpu_milli,
        }),
        per_tenant: keys.per_tenant,
        url,
    })
}

/// The ZIP of `artifact` and its CodeSha256, both from the file as it is now: its hashes are
/// computed here and must be the manifest's, so a ZIP swapped after the pack (with or without
/// its `sha256` edited to match) is refused by name instead of deployed or called unchanged.
fn zip_code(
    artifact: &ManifestArtifact,
    out_dir: &Path,
    manifest_path: &Path,
    keys: &DeployKeys,
    args: &DeployArgs,
) -> Result<(ZipCode, String)> {
    let path = crate::manifest_paths::resolve(out_dir, &artifact.path).map_err(|refused| {
        Error::config(format!(
            "`{}` ({}) in `{}` has path `{}`, which is refused: {refused}",
            artifact.name,
            artifact.arch,
            manifest_path.display(),
            artifact.path
        ))
        .with_help("pack again to rewrite the manifest; never edit its paths by hand")
    })?;
    let unreadable = |err: std::io::Error| {
        Error::config(format!(
            "cannot read `{}` ({} of `{}`): {err}",
            path.display(),
            artifact.name,
            manifest_path.display()
        ))
        .with_help("pack again (or pass --build)")
    };
    let size = std::fs::metadata(&path).map_err(unreadable)?.len();
    let digest = sha256_file(&path).map_err(unreadable)?;
    let (sha256, code_sha256) = (hex(&digest), base64_sha256(&digest));
    let mismatch = |what: &str, actual: &str, recorded: &str| {
        Error::config(format!(
            "`{}` ({} {}) changed since it was packed: its {what} is {actual}, `{}` says {recorded}",
            path.display(),
            artifact.name,
            artifact.arch,
            manifest_path.display(),
        ))
        .with_note("nothing was sent to AWS")
        .with_help("pack again (or pass --build) so that what is deployed is what was checked")
    };
    if sha256 != artifact.sha256 {
        return Err(mismatch("SHA-256", &sha256, &artifact.sha256));
    }
    if code_sha256 != artifact.code_sha256 {
        return Err(mismatch("CodeSha256", &code_sha256, &artifact.code_sha256));
    }
    if size != artifact.size_zipped {
        return Err(mismatch(
            "size",
            &format!("{size} bytes"),
            &format!("{} bytes", artifact.size_zipped),
        ));
    }
    let s3_bucket = match artifact.upload {
        Some(Upload::S3) => Some(args.s3_bucket.clone().or_else(|| keys.s3_bucket.clone()).ok_or_else(|| {
            Error::config(format!(
                "`{}` ({}) is {} bytes, over the {} bytes Lambda accepts inline, and no bucket is set to upload it through",
                artifact.name,
                artifact.arch,
                artifact.size_zipped,
                crate::plan::MAX_DIRECT_UPLOAD_BYTES
            ))
            .with_help("pass --s3-bucket BUCKET or set `s3_bucket` in the metadata")
        })?),
        _ => None,
    };
    Ok((
        ZipCode {
            path,
            sha256,
            size,
            s3_bucket,
        },
        code_sha256,
    ))
}

/// A SHA-256 digest as Lambda writes `CodeSha256`: standard base64.
pub fn base64_sha256(digest: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(digest)
}
