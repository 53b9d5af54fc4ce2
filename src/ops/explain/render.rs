//! `--explain` as text: one line per layer (the base's layers on one), each built layer's
//! reasons under it. Pure; the command prints the lines.

use liftoff_core::quote;

use super::compare::{Changes, Reason};
use super::{Explain, LayerOrigin};

/// The lines for a build's layers, given as `(created_by, explain)` in image order.
pub fn lines<'a>(layers: impl IntoIterator<Item = (&'a str, &'a Explain)>) -> Vec<String> {
    let mut out = vec![
        "why each layer is what it is (against this project's last build on this machine):"
            .to_string(),
    ];
    let mut base = 0;
    let mut rest = Vec::new();
    for (created_by, e) in layers {
        if e.origin == LayerOrigin::Base {
            base += 1;
            continue;
        }
        let label = match e.origin {
            LayerOrigin::Base => "base",
            LayerOrigin::LocalCache => "local cache",
            LayerOrigin::SharedCache => "shared cache",
            LayerOrigin::Built => "built",
        };
        let at =
            e.at.as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default();
        let instruction = quote::token(&liftoff_core::secret::redact(created_by));
        rest.push(format!("  {label:<12} {instruction}{at}"));
        for r in &e.reasons {
            for text in reason_lines(r) {
                rest.push(format!("  {:<12}   - {text}", ""));
            }
        }
    }
    if base > 0 {
        out.push(format!(
            "  {:<12} {base} layer{} of the base image",
            "base",
            if base == 1 { "" } else { "s" }
        ));
    }
    out.extend(rest);
    out
}

/// One reason as sentences (files: one per kind of change).
pub fn reason_lines(r: &Reason) -> Vec<String> {
    match r {
        Reason::Files {
            added,
            removed,
            changed,
        } => [("added", added), ("removed", removed), ("changed", changed)]
            .into_iter()
            .filter(|(_, c)| c.count > 0)
            .map(|(what, c)| {
                let files = if c.count == 1 { "file" } else { "files" };
                format!("{} {files} {what}: {}", c.count, paths(c))
            })
            .collect(),
        other => vec![reason_text(other)],
    }
}

/// One reason as a sentence.
pub fn reason_text(r: &Reason) -> String {
    match r {
        Reason::NoEarlierBuild => "no earlier build of this project on this machine".into(),
        Reason::UnreadableRecord => {
            "the record of this project's last build is unreadable (torn, corrupt or from another liftoff version)".into()
        }
        Reason::NewInstruction => "a new instruction: the last build had no layer for it".into(),
        Reason::Instruction { was } => format!(
            "the instruction in this place was `{}` in the last build",
            quote::token(was)
        ),
        Reason::Files { .. } => reason_lines(r).join("; "),
        Reason::Lock { path, was, now } => {
            format!("{} changed{}", quote::token(path), from_to(was, now))
        }
        Reason::Base { was, now } => format!("the base image changed{}", from_to(was, now)),
        Reason::BuildArg { name, change } => {
            format!("build argument {} {change}", quote::token(name))
        }
        Reason::Parents => "a layer below it changed".into(),
        Reason::Writer { what, was, now } => format!(
            "the layer writer's {} changed{}",
            quote::token(what),
            from_to(was, now)
        ),
        Reason::Setting { what, was, now } => {
            format!("{} changed{}", quote::token(what), from_to(was, now))
        }
        Reason::CacheEntryMissing => {
            "its inputs are the last build's, but its cache entry is gone (`liftoff cache prune`, or the last build stopped before storing it)".into()
        }
    }
}

/// `/a, /b and 3 more`.
fn paths(c: &Changes) -> String {
    let shown: Vec<String> = c.first.iter().map(|p| quote::token(p)).collect();
    let more = c.count - c.first.len();
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// ` (was → now)`, digests shortened; what is missing on a side is said so.
fn from_to(was: &Option<String>, now: &Option<String>) -> String {
    let show = |v: &Option<String>| match v {
        Some(v) => short(v),
        None => "none".into(),
    };
    format!(" ({} → {})", show(was), show(now))
}

/// A digest as its first 12 hex digits; other text quoted as a token.
fn short(v: &str) -> String {
    match v.strip_prefix("sha256:").and_then(|hex| hex.get(..12)) {
        Some(head) if v.len() > "sha256:".len() + 12 => format!("sha256:{head}"),
        _ => quote::token(v),
    }
}
