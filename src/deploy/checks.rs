//! Everything a deploy is about to send, checked again before its first AWS call with the rules
//! the pack applies (`lambda_rules`, one place for both; the layer count of `plan`): the manifest is a file anyone can edit,
//! and what Lambda would refuse half way through a deploy (after layers were published) is better
//! refused whole, up front, naming the artifact. The ZIPs' hashes are recomputed in
//! `desired.rs`, where each file is found.

use std::path::Path;

use super::desired::{Desired, FunctionCode};
use crate::error::{Error, Result};
use crate::lambda_rules::{self, NameKind};
use crate::metadata::{ARN_SHAPE, LAMBDA_RUNTIME_IDS, MAX_COMPATIBLE_RUNTIMES, arn_problem};
use crate::plan::MAX_LAYERS;

/// Refuses the first value of `desired` that Lambda would refuse (exit 3, nothing called).
pub fn check(desired: &Desired, manifest_path: &Path) -> Result<()> {
    let refused = |what: String, why: String| {
        Error::config(format!(
            "{what} in `{}` cannot be deployed: {why}",
            manifest_path.display()
        ))
        .with_note("nothing was sent to AWS")
        .with_help(
            "the manifest is written by the pack: fix the metadata and pack again (or deploy \
             with --build); never edit manifest.json by hand",
        )
    };
    for layer in &desired.layers {
        let what = || format!("layer `{}` ({})", layer.name, layer.arch);
        lambda_rules::check_name(NameKind::Layer, &layer.name)
            .map_err(|why| refused(what(), why))?;
        if let Some(id) = layer
            .compatible_runtimes
            .iter()
            .find(|id| !LAMBDA_RUNTIME_IDS.contains(&id.as_str()))
        {
            return Err(refused(
                what(),
                format!("its compatible runtimes list \"{id}\", which Lambda has no runtime of"),
            ));
        }
        if layer.compatible_runtimes.len() > MAX_COMPATIBLE_RUNTIMES {
            return Err(refused(
                what(),
                format!(
                    "it lists {} compatible runtimes; PublishLayerVersion takes at most {MAX_COMPATIBLE_RUNTIMES}",
                    layer.compatible_runtimes.len()
                ),
            ));
        }
    }
    for function in &desired.functions {
        let what = || {
            if function.function_name == function.artifact {
                format!("function `{}` ({})", function.artifact, function.arch)
            } else {
                format!(
                    "function `{}` ({}, deployed as `{}`)",
                    function.artifact, function.arch, function.function_name
                )
            }
        };
        lambda_rules::check_name(NameKind::Function, &function.function_name)
            .map_err(|why| refused(what(), why))?;
        if let FunctionCode::Zip(_) = function.code {
            // An image's handler is its command; only a ZIP's is sent.
            lambda_rules::check_handler(&function.handler).map_err(|why| {
                refused(what(), format!("its handler `{}`: {why}", function.handler))
            })?;
        }
        let layer_count = function.layers.len() + function.arn_layers.len();
        if layer_count > MAX_LAYERS {
            return Err(refused(
                what(),
                format!("it attaches {layer_count} layers; Lambda allows at most {MAX_LAYERS}"),
            ));
        }
        for (_, arn) in &function.arn_layers {
            if let Some(problem) = arn_problem(arn) {
                return Err(refused(
                    what(),
                    format!(
                        "it attaches \"{arn}\", which is not a layer version ARN ({ARN_SHAPE}): {problem}"
                    ),
                ));
            }
        }
        if let Some(env) = &function.env {
            lambda_rules::check_env(env)
                .map_err(|why| refused(what(), format!("its environment: {why}")))?;
        }
        if let Some(memory) = function.memory {
            lambda_rules::check_memory(memory).map_err(|why| refused(what(), why))?;
        }
        if let Some(timeout) = function.timeout {
            lambda_rules::check_timeout(timeout).map_err(|why| refused(what(), why))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::deploy::desired::{DesiredFunction, DesiredLayer, ZipCode};
    use crate::target::{Arch, Runtime};

    fn zip() -> ZipCode {
        ZipCode {
            path: PathBuf::from("/out/x86_64/f.zip"),
            sha256: "00".repeat(32),
            size: 1,
            s3_bucket: None,
        }
    }

    fn function() -> DesiredFunction {
        DesiredFunction {
            artifact: "orders".into(),
            function_name: "orders".into(),
            arch: Arch::X86_64,
            runtime: Runtime::ProvidedAl2023,
            code: FunctionCode::Zip(zip()),
            code_sha256: "AAAA".into(),
            layers: Vec::new(),
            arn_layers: Vec::new(),
            handler: "bootstrap".into(),
            memory: Some(128),
            timeout: Some(900),
            env: Some(BTreeMap::from([("STAGE".into(), "prod".into())])),
            iam_role: None,
            settings: Default::default(),
        }
    }

    fn refusal(desired: &Desired) -> String {
        check(desired, Path::new("/out/manifest.json"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn what_lambda_would_refuse_is_refused_naming_the_artifact_and_the_rule() {
        let ok = Desired {
            layers: vec![DesiredLayer {
                name: "tools".into(),
                arch: Arch::X86_64,
                code: zip(),
                code_sha256: "AAAA".into(),
                compatible_runtimes: vec!["provided.al2023".into()],
                description: String::new(),
            }],
            functions: vec![function()],
            ..Desired::default()
        };
        check(&ok, Path::new("/out/manifest.json")).unwrap();

        let with = |edit: &dyn Fn(&mut DesiredFunction)| {
            let mut desired = ok.clone();
            edit(&mut desired.functions[0]);
            refusal(&desired)
        };
        let big = with(&|f| f.env = Some(BTreeMap::from([("BIG".into(), "x".repeat(5 * 1024))])));
        assert!(
            big.starts_with("function `orders` (x86_64) in `/out/manifest.json` cannot be deployed: its environment: the variables take 5130 bytes as Lambda measures them (the JSON object {\"KEY\":\"value\",...}); Lambda allows 4096 bytes"),
            "{big}"
        );
        assert!(big.contains("nothing was sent to AWS"), "{big}");
        assert!(
            big.contains("help: the manifest is written by the pack"),
            "{big}"
        );
        let reserved =
            with(&|f| f.env = Some(BTreeMap::from([("AWS_REGION".into(), "eu-west-1".into())])));
        assert!(reserved.contains("`AWS_REGION` is reserved"), "{reserved}");
        let handler = with(&|f| f.handler = "a handler ".repeat(21));
        assert!(handler.contains("210 characters"), "{handler}");
        let name = with(&|f| f.function_name = "bad name!/../x".into());
        assert!(
            name.contains("function `orders` (x86_64, deployed as `bad name!/../x`)"),
            "{name}"
        );
        assert!(name.contains("1 to 64 characters"), "{name}");
        let memory = with(&|f| f.memory = Some(20_000));
        assert!(memory.contains("from 128 to 10240"), "{memory}");
        let layers = with(&|f| f.layers = (1..=6).map(|n| format!("l{n}")).collect());
        assert!(
            layers.contains("it attaches 6 layers; Lambda allows at most 5"),
            "{layers}"
        );
        // ARN layers count in the limit, and a hand-edited ARN is refused before any call.
        let arn = "arn:aws:lambda:eu-west-1:753240598075:layer:Adapter:25".to_string();
        let mixed = with(&|f| {
            f.layers = (1..=4).map(|n| format!("l{n}")).collect();
            f.arn_layers = vec![(0, arn.clone()), (5, arn.clone())];
        });
        assert!(mixed.contains("it attaches 6 layers"), "{mixed}");
        let bad =
            with(&|f| f.arn_layers = vec![(0, "arn:aws:lambda:eu-west-1:1:layer:x:1".into())]);
        assert!(bad.contains("12-digit account"), "{bad}");
        let timeout = with(&|f| f.timeout = Some(0));
        assert!(timeout.contains("from 1 to 900"), "{timeout}");
        // An image's handler is not sent, so not checked.
        let mut image = ok.clone();
        image.functions[0].code = FunctionCode::Image("r@sha256:00".into());
        image.functions[0].handler = "not sent".into();
        check(&image, Path::new("/out/manifest.json")).unwrap();

        let mut layer = ok.clone();
        layer.layers[0].name = "my.layer".into();
        let refused = refusal(&layer);
        assert!(
            refused.starts_with(
                "layer `my.layer` (x86_64) in `/out/manifest.json` cannot be deployed"
            ),
            "{refused}"
        );
        layer.layers[0].name = "tools".into();
        layer.layers[0].compatible_runtimes = vec!["python9".into()];
        assert!(refusal(&layer).contains("\"python9\""));
    }
}
