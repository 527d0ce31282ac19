//! `verify -v`: everything the function's processes wrote, for the human output on stderr
//! (stdout stays the data: the JSON report, which carries the same text in `stdout`/`stderr`).

use super::RunReport;

/// One block per process and stream that wrote anything, each line prefixed with `| `.
pub(super) fn render_output(report: &RunReport, lines: &mut Vec<String>) {
    let processes = report.runtime.iter().map(|p| ("runtime", p)).chain(
        report
            .extensions
            .iter()
            .filter(|e| !e.internal)
            .map(|e| (e.name.as_str(), &e.process)),
    );
    let mut wrote_anything = false;
    for (name, process) in processes {
        for (stream, text) in [("stdout", &process.stdout), ("stderr", &process.stderr)] {
            let text = text.trim_end_matches('\n');
            if text.trim().is_empty() {
                continue;
            }
            wrote_anything = true;
            let mut block = format!("{stream} of {name}:");
            for line in text.lines() {
                block.push_str(&format!("\n| {line}"));
            }
            lines.push(block);
        }
        if process.output_truncated {
            lines.push(format!(
                "output of {name} was cut at the capture limit (the JSON report has the same text)"
            ));
        }
    }
    if !wrote_anything {
        lines.push("output: the processes wrote nothing to stdout or stderr".into());
    }
}
