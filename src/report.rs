//! What a run tells its users: the JSON manifest (for scripts) and the summary table and plan
//! listing (for people). Rendering only; printing goes through [`crate::output::Shell`].

use std::path::Path;

use serde::Serialize;

use crate::manifest::{Format, LayerType, Manifest, Upload};
use crate::plan::{Plan, PlannedArtifact, finding_line, human_bytes};

/// The summary table printed on stderr after a pack.
pub fn summary_table(manifest: &Manifest, out_dir: &Path) -> String {
    let header = ["artifact", "kind", "arch", "zipped", "unzipped", "path"];
    let mut rows: Vec<[String; 6]> = vec![header.map(str::to_string)];
    for artifact in &manifest.artifacts {
        let mut path = out_dir.join(&artifact.path).display().to_string();
        if artifact.upload == Some(Upload::S3) {
            path.push_str("  (upload via S3)");
        }
        // The manifest's build command runs from the manifest's directory; shown here with the
        // context's full path so it can be pasted anywhere.
        if let Some(command) = &artifact.build_command {
            let program = command
                .strip_suffix(artifact.path.as_str())
                .unwrap_or(command);
            path.push_str(&format!(
                "  (image: {program}{})",
                out_dir.join(&artifact.path).display()
            ));
        }
        if let (Some(sbom), Some(components)) = (&artifact.sbom, artifact.sbom_components) {
            path.push_str(&format!(
                "  (SBOM: {}, {components} component(s))",
                out_dir.join(sbom).display()
            ));
        }
        rows.push([
            artifact.name.clone(),
            if artifact.format == Format::Image {
                format!("{} image", artifact.kind)
            } else if artifact.layer_type == Some(LayerType::Runtime) {
                "runtime layer".to_string()
            } else {
                artifact.kind.to_string()
            },
            artifact.arch.to_string(),
            if artifact.format == Format::Image {
                "-".to_string()
            } else {
                human_bytes(artifact.size_zipped)
            },
            human_bytes(artifact.size_unzipped),
            path,
        ]);
    }
    render_table(&rows)
}

fn render_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// The human rendering of a plan: builds, then each artifact with its entries and reasons.
pub fn plan_listing(plan: &Plan, out_dir: &Path) -> String {
    let mut text = String::new();
    for build in &plan.builds {
        // Only the kinds of target the build has: an example-only build listed `bins ` empty.
        let mut line = format!(
            "build {}: packages {}",
            build.describe(),
            build.packages.join(", ")
        );
        for (kind, names) in [
            ("bins", &build.bins),
            ("examples", &build.examples),
            ("cdylibs", &build.cdylibs),
        ] {
            if !names.is_empty() {
                line.push_str(&format!("; {kind} {}", names.join(", ")));
            }
        }
        text.push_str(&line);
        text.push('\n');
    }
    for artifact in &plan.artifacts {
        text.push_str(&artifact_listing(artifact, out_dir));
    }
    for stale in &plan.stale {
        text.push_str(&format!(
            "remove {} (no longer produced)\n",
            out_dir.join(stale).display()
        ));
    }
    text
}

fn artifact_listing(artifact: &PlannedArtifact, out_dir: &Path) -> String {
    let mut text = format!(
        "{}: {}{} {} {} -> {}\n",
        artifact.name,
        if artifact.layer_type == Some(LayerType::Runtime) {
            "runtime "
        } else {
            ""
        },
        artifact.kind,
        artifact.format,
        artifact.arch,
        out_dir.join(&artifact.path).display()
    );
    for reason in &artifact.reasons {
        text.push_str(&format!("    {reason}\n"));
    }
    if let Some(sbom) = &artifact.sbom {
        text.push_str(&format!(
            "    SBOM -> {} ({} component(s))\n",
            out_dir.join(&sbom.path).display(),
            sbom.components
        ));
    }
    if !artifact.layers.is_empty() {
        text.push_str(&format!(
            "    layers, in merge order: {}\n",
            artifact.layers.join(", ")
        ));
    }
    for finding in &artifact.findings {
        let label = if finding.is_blocking() {
            "error"
        } else {
            "warning"
        };
        text.push_str(&format!(
            "    {label}: {}\n",
            finding_line(artifact, finding)
        ));
    }
    for entry in &artifact.entries {
        text.push_str(&format!(
            "    {:o} {:>10} {}\n",
            entry.mode,
            human_bytes(entry.size),
            entry.path
        ));
    }
    text
}

/// What `inspect` reports for one file.
#[derive(Clone, Debug, Serialize)]
pub struct InspectReport {
    pub path: String,
    pub facts: crate::inspect::BinaryFacts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<crate::target::Runtime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<crate::inspect::Finding>>,
    /// The dependency list embedded in the binary (cargo-auditable's `.dep-v0`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<Vec<crate::inspect::EmbeddedCrate>>,
}

/// The human rendering of [`InspectReport`].
pub fn inspect_listing(report: &InspectReport) -> String {
    let facts = &report.facts;
    let mut text = format!("{}\n", report.path);
    let kind = serde_json::to_value(facts.kind)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default();
    let arch = facts
        .arch
        .map(|a| a.to_string())
        .unwrap_or_else(|| "not a Lambda architecture".into());
    text.push_str(&format!(
        "  machine:      {} ({}, {arch}), ELF{}\n",
        facts.machine_name, facts.machine, facts.elf_class
    ));
    text.push_str(&format!("  kind:         {kind}\n"));
    match &facts.interpreter {
        Some(interpreter) => text.push_str(&format!(
            "  linkage:      dynamic, interpreter {interpreter}\n"
        )),
        None => text.push_str("  linkage:      static\n"),
    }
    if let Some(libc) = facts.libc {
        let name = match libc {
            crate::target::Libc::Gnu => "glibc",
            crate::target::Libc::Musl => "musl",
        };
        text.push_str(&format!("  libc:         {name}\n"));
    }
    if !facts.needed.is_empty() {
        text.push_str(&format!("  needed:       {}\n", facts.needed.join(", ")));
    }
    if let Some(soname) = &facts.soname {
        text.push_str(&format!("  soname:       {soname}\n"));
    }
    if let Some(glibc) = facts.max_glibc_name() {
        text.push_str(&format!("  newest glibc: {glibc}\n"));
    }
    text.push_str(&format!(
        "  stripped:     {}{}\n",
        if facts.stripped { "yes" } else { "no" },
        if facts.debug_info {
            ", has debug info"
        } else {
            ""
        }
    ));
    text.push_str(&format!(
        "  size:         {} ({} bytes)\n",
        human_bytes(facts.size),
        facts.size
    ));
    if let Some(dependencies) = &report.dependencies {
        text.push_str(&format!(
            "  dependencies: {} crate(s) embedded (.dep-v0)\n",
            dependencies.len()
        ));
        for krate in dependencies {
            let mut notes = vec![krate.source.clone()];
            if krate.kind != "runtime" {
                notes.push(krate.kind.clone());
            }
            if krate.root {
                notes.push("root".into());
            }
            text.push_str(&format!(
                "    {} {} ({})\n",
                krate.name,
                krate.version,
                notes.join(", ")
            ));
        }
    }
    if let (Some(runtime), Some(findings)) = (report.runtime, &report.findings) {
        if findings.is_empty() {
            text.push_str(&format!("  {runtime}: no findings\n"));
        }
        for finding in findings {
            text.push_str(&format!(
                "  {runtime}: {} [{}] {}\n",
                finding.severity, finding.code, finding.message
            ));
            if let Some(lambda) = &finding.lambda_error {
                text.push_str(&format!("      Lambda would fail with: {lambda}\n"));
            }
            text.push_str(&format!("      help: {}\n", finding.help));
        }
    }
    text
}
