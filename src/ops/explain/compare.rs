//! Why a layer was built: its inputs compared with the project's last build. Pure.
//!
//! A layer of this build is matched with the last build's layer of the same instruction (the
//! n-th layer of an instruction text with the n-th); failing that, with the last build's layer
//! at the same place if no other layer took it (the instruction was edited). Then its key's
//! parts are compared by name, and its entries, sorted by path on both sides, in one linear
//! pass.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::store::build_record::{BuildRecord, FileFp, Input, LayerInputs, Part, Value};

/// How many paths of each kind of change a reason names (the rest are counted).
pub const MAX_SHOWN: usize = 5;

/// What is known of the project's last build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Earlier {
    /// None on this machine (or its record was pruned).
    None,
    /// A record that is torn, corrupt or of another format version.
    Unreadable,
    Record(BuildRecord),
}

/// Paths of one kind of change: how many, and the first few in path order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub count: usize,
    /// At most [`MAX_SHOWN`], as absolute paths in the image.
    pub first: Vec<String>,
}

impl Changes {
    fn push(&mut self, path: &str) {
        self.count += 1;
        if self.first.len() < MAX_SHOWN {
            self.first.push(format!("/{path}"));
        }
    }
}

/// One reason a layer was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// No earlier build of this project on this machine.
    NoEarlierBuild,
    /// The record of the last build could not be read (torn, corrupt, another version).
    UnreadableRecord,
    /// The last build had no layer for this instruction.
    NewInstruction,
    /// The last build had another instruction in this place (URL credentials masked).
    Instruction { was: String },
    /// The layer's files: added, removed, changed (content, mode, owner or kind).
    Files {
        added: Changes,
        removed: Changes,
        changed: Changes,
    },
    /// A lock file (by its path in the project), by the digest of its text.
    Lock {
        path: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        was: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        now: Option<String>,
    },
    /// The base image, by its manifest digest.
    Base {
        #[serde(skip_serializing_if = "Option::is_none")]
        was: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        now: Option<String>,
    },
    /// A build argument (its values are never shown): `added`, `removed` or `changed`.
    BuildArg { name: String, change: &'static str },
    /// A layer below this one changed (what a `RUN` ran on).
    Parents,
    /// The layer writer: format version, compressor, `SOURCE_DATE_EPOCH`, media type.
    Writer {
        what: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        was: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        now: Option<String>,
    },
    /// Another part of the layer's key, named.
    Setting {
        what: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        was: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        now: Option<String>,
    },
    /// Every input is the last build's: the layer's cache entry is gone (pruned, or the last
    /// build stopped before storing it).
    CacheEntryMissing,
}

impl Reason {
    /// The order reasons are listed in: what the user changed first, the writer last.
    fn rank(&self) -> u8 {
        match self {
            Reason::NoEarlierBuild | Reason::UnreadableRecord => 0,
            Reason::NewInstruction | Reason::Instruction { .. } => 1,
            Reason::Files { .. } => 2,
            Reason::Lock { .. } => 3,
            Reason::Base { .. } => 4,
            Reason::BuildArg { .. } => 5,
            Reason::Parents => 6,
            Reason::Setting { .. } => 7,
            Reason::Writer { .. } => 8,
            Reason::CacheEntryMissing => 9,
        }
    }
}

/// For each layer of `new` (in order), why it was built: empty where `built` is false.
pub fn reasons(earlier: &Earlier, new: &BuildRecord, built: &[bool]) -> Vec<Vec<Reason>> {
    let old = match earlier {
        Earlier::Record(r) => r,
        Earlier::None | Earlier::Unreadable => {
            let why = if *earlier == Earlier::None {
                Reason::NoEarlierBuild
            } else {
                Reason::UnreadableRecord
            };
            return built
                .iter()
                .map(|b| if *b { vec![why.clone()] } else { Vec::new() })
                .collect();
        }
    };
    let matched = match_layers(old, new);
    let args = changed_args(&old.build_args, &new.build_args);
    new.layers
        .iter()
        .zip(built)
        .zip(matched)
        .map(|((layer, built), m)| {
            if !built {
                return Vec::new();
            }
            let mut out = match m {
                Match::Same(j) => layer_changes(&old.layers[j], layer),
                Match::Edited(j) => {
                    let was = &old.layers[j];
                    let mut out = vec![Reason::Instruction {
                        was: liftoff_core::secret::redact(&was.instruction),
                    }];
                    if !was.files.is_empty() || !layer.files.is_empty() {
                        out.extend(files_changed(&was.files, &layer.files));
                    }
                    out
                }
                Match::New => vec![Reason::NewInstruction],
            };
            for (name, change) in &args {
                let reported = out
                    .iter()
                    .any(|r| matches!(r, Reason::BuildArg { name: n, .. } if n == name));
                if !reported && references(&layer.instruction, name) {
                    out.push(Reason::BuildArg {
                        name: name.clone(),
                        change,
                    });
                }
            }
            if out.is_empty() {
                out.push(Reason::CacheEntryMissing);
            }
            out.sort_by_key(Reason::rank);
            out
        })
        .collect()
}

/// Which of the last build's layers a layer of this build is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// The layer of the same instruction.
    Same(usize),
    /// The layer in the same place, of another instruction no layer of this build has.
    Edited(usize),
    New,
}

fn match_layers(old: &BuildRecord, new: &BuildRecord) -> Vec<Match> {
    let mut by_text: BTreeMap<&str, VecDeque<usize>> = BTreeMap::new();
    for (j, l) in old.layers.iter().enumerate() {
        by_text.entry(&l.instruction).or_default().push_back(j);
    }
    let mut taken = BTreeSet::new();
    let mut out: Vec<Match> = new
        .layers
        .iter()
        .map(|l| {
            match by_text
                .get_mut(l.instruction.as_str())
                .and_then(VecDeque::pop_front)
            {
                Some(j) => {
                    taken.insert(j);
                    Match::Same(j)
                }
                None => Match::New,
            }
        })
        .collect();
    for (i, m) in out.iter_mut().enumerate() {
        if *m == Match::New && i < old.layers.len() && taken.insert(i) {
            *m = Match::Edited(i);
        }
    }
    out
}

/// The reasons between a layer of the last build and this build's layer of one instruction.
fn layer_changes(old: &LayerInputs, new: &LayerInputs) -> Vec<Reason> {
    let mut out = Vec::new();
    out.extend(files_changed(&old.files, &new.files));
    let old_parts: BTreeMap<&Input, &Value> =
        old.parts.iter().map(|p| (&p.input, &p.value)).collect();
    let new_inputs: BTreeSet<&Input> = new.parts.iter().map(|p| &p.input).collect();
    for Part { input, value } in &new.parts {
        match old_parts.get(input) {
            Some(v) if *v == value => {}
            was => out.push(part_reason(input, was.copied(), Some(value))),
        }
    }
    for Part { input, value } in &old.parts {
        if !new_inputs.contains(input) {
            out.push(part_reason(input, Some(value), None));
        }
    }
    out
}

fn part_reason(input: &Input, was: Option<&Value>, now: Option<&Value>) -> Reason {
    let (was, now) = (was.map(Value::shown), now.map(Value::shown));
    match input {
        Input::Writer(what) => Reason::Writer {
            what: what.clone(),
            was,
            now,
        },
        Input::Base => Reason::Base { was, now },
        Input::Lock(path) => Reason::Lock {
            path: path.clone(),
            was,
            now,
        },
        Input::BuildArg(name) => Reason::BuildArg {
            name: name.clone(),
            change: match (&was, &now) {
                (None, _) => "added",
                (_, None) => "removed",
                _ => "changed",
            },
        },
        Input::Parents => Reason::Parents,
        Input::Setting(what) => Reason::Setting {
            what: what.clone(),
            was,
            now,
        },
    }
}

/// The files added, removed and changed from `old` to `new` (both sorted by path, one entry
/// per path), or nothing when they are the same.
fn files_changed(old: &[FileFp], new: &[FileFp]) -> Option<Reason> {
    let (mut added, mut removed, mut changed) =
        (Changes::default(), Changes::default(), Changes::default());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) if o.path == n.path => {
                if o != n {
                    changed.push(&n.path);
                }
                i += 1;
                j += 1;
            }
            (Some(o), Some(n)) if o.path < n.path => {
                removed.push(&o.path);
                i += 1;
            }
            (Some(o), None) => {
                removed.push(&o.path);
                i += 1;
            }
            (_, Some(n)) => {
                added.push(&n.path);
                j += 1;
            }
            (None, None) => break,
        }
    }
    if added.count + removed.count + changed.count == 0 {
        return None;
    }
    Some(Reason::Files {
        added,
        removed,
        changed,
    })
}

/// The `--build-arg`s added, removed or changed between two builds.
fn changed_args(
    old: &[(String, liftoff_layers::Digest)],
    new: &[(String, liftoff_layers::Digest)],
) -> Vec<(String, &'static str)> {
    let old: BTreeMap<&str, _> = old.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let new: BTreeMap<&str, _> = new.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let names: BTreeSet<&str> = old.keys().chain(new.keys()).copied().collect();
    names
        .into_iter()
        .filter_map(|k| match (old.get(k), new.get(k)) {
            (None, Some(_)) => Some((k.to_string(), "added")),
            (Some(_), None) => Some((k.to_string(), "removed")),
            (Some(a), Some(b)) if a != b => Some((k.to_string(), "changed")),
            _ => None,
        })
        .collect()
}

/// Whether `text` names the variable `name` as `$name` or `${name...}`.
fn references(text: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        if let Some(braced) = rest.strip_prefix('{') {
            if let Some(after) = braced.strip_prefix(name)
                && after.starts_with(['}', ':'])
            {
                return true;
            }
        } else if let Some(after) = rest.strip_prefix(name)
            && !after.starts_with(word)
        {
            return true;
        }
    }
    false
}
