//! The options pip accepts in a requirements file, on their own line (`-i`, `-r`, `--pre`, ...)
//! or after a requirement (`--hash`).

use std::collections::BTreeSet;

use super::{IndexUrl, Origin, RequirementsError, RequirementsFile};
use crate::pep508::normalize_name;
use liftoff_core::quote;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Opt {
    Requirement,
    Constraint,
    Editable,
    IndexUrl,
    ExtraIndexUrl,
    NoIndex,
    FindLinks,
    TrustedHost,
    Pre,
    PreferBinary,
    RequireHashes,
    OnlyBinary,
    NoBinary,
    UseFeature,
    Hash,
}

/// (short, long, option, takes a value)
const OPTIONS: [(Option<&str>, &str, Opt, bool); 15] = [
    (Some("-r"), "--requirement", Opt::Requirement, true),
    (Some("-c"), "--constraint", Opt::Constraint, true),
    (Some("-e"), "--editable", Opt::Editable, true),
    (Some("-i"), "--index-url", Opt::IndexUrl, true),
    (None, "--extra-index-url", Opt::ExtraIndexUrl, true),
    (None, "--no-index", Opt::NoIndex, false),
    (Some("-f"), "--find-links", Opt::FindLinks, true),
    (None, "--trusted-host", Opt::TrustedHost, true),
    (None, "--pre", Opt::Pre, false),
    (None, "--prefer-binary", Opt::PreferBinary, false),
    (None, "--require-hashes", Opt::RequireHashes, false),
    (None, "--only-binary", Opt::OnlyBinary, true),
    (None, "--no-binary", Opt::NoBinary, true),
    (None, "--use-feature", Opt::UseFeature, true),
    (None, "--hash", Opt::Hash, true),
];

/// Splits option tokens into `(option, value)` pairs.
fn tokens(
    opts: &[String],
    origin: &Origin,
) -> Result<Vec<(Opt, Option<String>)>, RequirementsError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        let tok = opts[i].as_str();
        i += 1;
        let found = OPTIONS.iter().find_map(|(short, long, opt, takes)| {
            if let Some(rest) = tok.strip_prefix(long) {
                if rest.is_empty() {
                    return Some((*opt, *takes, None));
                }
                return rest
                    .strip_prefix('=')
                    .map(|v| (*opt, *takes, Some(v.to_string())));
            }
            let short = (*short)?;
            let rest = tok.strip_prefix(short)?;
            match (rest.is_empty(), *takes) {
                (true, _) => Some((*opt, *takes, None)),
                (false, true) => Some((*opt, *takes, Some(rest.to_string()))),
                (false, false) => None,
            }
        });
        let Some((opt, takes, inline)) = found else {
            return Err(unsupported(origin, tok));
        };
        let value = match (takes, inline) {
            (false, _) => None,
            (true, Some(v)) => Some(v),
            (true, None) => match opts.get(i) {
                Some(v) if !v.starts_with('-') => {
                    i += 1;
                    Some(v.clone())
                }
                _ => {
                    return Err(RequirementsError::MissingValue {
                        origin: origin.clone(),
                        option: quote::token(tok),
                    });
                }
            },
        };
        out.push((opt, value));
    }
    Ok(out)
}

fn unsupported(origin: &Origin, option: &str) -> RequirementsError {
    let hint = match option.split('=').next().unwrap_or(option) {
        "--global-option" | "--install-option" | "--config-settings" | "-C" => {
            "build options only apply to source builds; liftoff installs wheels only"
        }
        _ => {
            "remove it; liftoff supports the index, include, --hash, --pre and binary options pip documents"
        }
    };
    RequirementsError::UnsupportedOption {
        origin: origin.clone(),
        option: quote::token(option),
        hint,
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Applies an options-only line to `out`. Returns an include to read: `(path, is_constraint)`.
pub(super) fn apply_line_options(
    opts: &[String],
    origin: &Origin,
    out: &mut RequirementsFile,
) -> Result<Option<(String, bool)>, RequirementsError> {
    let mut include = None;
    for (opt, value) in tokens(opts, origin)? {
        let value = value.unwrap_or_default();
        match opt {
            Opt::Requirement => include = include.or(Some((value, false))),
            Opt::Constraint => include = include.or(Some((value, true))),
            Opt::Editable => {
                return Err(RequirementsError::Editable {
                    origin: origin.clone(),
                    text: quote::token(&format!("-e {value}")),
                });
            }
            Opt::IndexUrl => out.index_url = Some(IndexUrl::new(value)),
            Opt::ExtraIndexUrl => push_unique(&mut out.extra_index_urls, IndexUrl::new(value)),
            Opt::NoIndex => out.no_index = true,
            Opt::FindLinks => push_unique(&mut out.find_links, IndexUrl::new(value)),
            Opt::TrustedHost => push_unique(&mut out.trusted_hosts, value),
            Opt::Pre => out.pre = true,
            Opt::PreferBinary => out.prefer_binary = true,
            Opt::RequireHashes => out.require_hashes = true,
            Opt::OnlyBinary => mutual_excludes(&value, &mut out.only_binary, &mut out.no_binary),
            Opt::NoBinary => mutual_excludes(&value, &mut out.no_binary, &mut out.only_binary),
            Opt::UseFeature => {}
            Opt::Hash => {
                return Err(RequirementsError::UnsupportedOption {
                    origin: origin.clone(),
                    option: "--hash".to_string(),
                    hint: "put --hash on the same line as the requirement it checks",
                });
            }
        }
    }
    Ok(include)
}

/// pip's `handle_mutual_excludes`: `:all:` resets both sets, `:none:` clears the target, a name
/// moves from the other set to the target.
fn mutual_excludes(value: &str, target: &mut BTreeSet<String>, other: &mut BTreeSet<String>) {
    for name in value.split(',') {
        match name {
            ":all:" => {
                other.clear();
                target.clear();
                target.insert(":all:".to_string());
            }
            ":none:" => target.clear(),
            "" => {}
            name => {
                let name = normalize_name(name);
                other.remove(&name);
                target.insert(name);
            }
        }
    }
}

/// The options after a requirement: only `--hash=alg:hex` (sha256, sha384 or sha512).
pub(super) fn requirement_options(
    opts: &[String],
    origin: &Origin,
) -> Result<Vec<String>, RequirementsError> {
    let mut hashes = Vec::new();
    for (opt, value) in tokens(opts, origin)? {
        let value = value.unwrap_or_default();
        if opt != Opt::Hash {
            let name = OPTIONS.iter().find(|o| o.2 == opt).map_or("", |o| o.1);
            return Err(RequirementsError::UnsupportedOption {
                origin: origin.clone(),
                option: name.to_string(),
                hint: "only --hash may follow a requirement on its line; put other options on a line of their own",
            });
        }
        let bad = || RequirementsError::BadHash {
            origin: origin.clone(),
            value: quote::token(&value),
        };
        let (alg, hex) = value.split_once(':').ok_or_else(bad)?;
        let len = match alg {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return Err(bad()),
        };
        if hex.len() != len || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        push_unique(&mut hashes, format!("{alg}:{}", hex.to_ascii_lowercase()));
    }
    Ok(hashes)
}
