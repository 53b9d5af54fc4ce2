//! Word expansion as `sh` does it, without pathname expansion: tilde, parameters, command
//! substitution (through the caller), field splitting on IFS whitespace, quote removal.

use super::{Part, Script, Word};

/// One field of an expanded word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub text: String,
    /// Whether the field holds an unquoted `*`, `?` or `[` (from the text or from an unquoted
    /// expansion): the shell would try it as a pathname pattern, which is not done here.
    pub glob: bool,
}

/// Why a word was not expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// The shell runs with `-u`: expanding an unset variable stops it.
    #[error("variable `{0}` is unset")]
    Unset(String),
    /// The caller's `subst` refused a command substitution.
    #[error("a command substitution that is not carried out without a shell")]
    Substitution,
    /// `~user`: a home folder from the account database, which the caller must look up.
    #[error("`~{0}`: another user's home folder")]
    TildeUser(String),
    /// `~` with `HOME` unset: the shell would look the user up in the account database.
    #[error("`~` with HOME unset")]
    NoHome,
    /// Field splitting with an `IFS` other than space, tab and newline.
    #[error("field splitting with IFS set to something other than space, tab and newline")]
    Ifs,
    /// A redirect target that is not exactly one field without pattern characters (`sh` would
    /// not split it, `bash` would refuse it or match it against file names).
    #[error("a redirect target that does not expand to one plain field")]
    Redirect,
}

/// The value of one part, before splitting.
struct Piece {
    text: String,
    /// From an unquoted `$X` or `$( … )`: split into fields, pattern characters kept active.
    split: bool,
    /// Literal text outside quotes: not split, pattern characters active.
    unquoted: bool,
}

/// The fields `word` expands to (see the module). An unquoted expansion that is empty adds
/// no field; `""` is one empty field.
pub fn expand(
    word: &Word,
    var: &dyn Fn(&str) -> Option<String>,
    subst: &mut dyn FnMut(&Script) -> Option<String>,
) -> Result<Vec<Field>, ExpandError> {
    let pieces = pieces(word, var, subst)?;
    fields(&pieces, var)
}

/// [`expand`] for each word, the fields concatenated in order.
pub fn expand_all(
    words: &[Word],
    var: &dyn Fn(&str) -> Option<String>,
    subst: &mut dyn FnMut(&Script) -> Option<String>,
) -> Result<Vec<Field>, ExpandError> {
    let mut out = Vec::new();
    for word in words {
        out.extend(expand(word, var, subst)?);
    }
    Ok(out)
}

/// An assignment's value: expanded like a word but neither split nor matched against file
/// names, so `A=$X` keeps the spaces and `*` of `$X`.
pub fn expand_assignment(
    word: &Word,
    var: &dyn Fn(&str) -> Option<String>,
    subst: &mut dyn FnMut(&Script) -> Option<String>,
) -> Result<String, ExpandError> {
    Ok(pieces(word, var, subst)?
        .into_iter()
        .map(|piece| piece.text)
        .collect())
}

/// A redirect target: `sh` expands it without splitting, `bash` splits it and refuses more
/// than one field, and may match patterns. The text only when both agree on a plain name:
/// exactly one field, without pattern characters, equal to the unsplit expansion.
pub fn expand_redirect(
    word: &Word,
    var: &dyn Fn(&str) -> Option<String>,
    subst: &mut dyn FnMut(&Script) -> Option<String>,
) -> Result<String, ExpandError> {
    let pieces = pieces(word, var, subst)?;
    let whole: String = pieces.iter().map(|piece| piece.text.as_str()).collect();
    match fields(&pieces, var)?.as_slice() {
        [field] if !field.glob && field.text == whole => Ok(whole),
        _ => Err(ExpandError::Redirect),
    }
}

/// Each part's value: variables looked up, substitutions run, tildes replaced.
fn pieces(
    word: &Word,
    var: &dyn Fn(&str) -> Option<String>,
    subst: &mut dyn FnMut(&Script) -> Option<String>,
) -> Result<Vec<Piece>, ExpandError> {
    let mut out = Vec::with_capacity(word.parts.len());
    for part in &word.parts {
        let (text, split, unquoted) = match part {
            Part::Literal { text, quoted } => (text.clone(), false, !quoted),
            Part::Tilde { user } if user.is_empty() => {
                (var("HOME").ok_or(ExpandError::NoHome)?, false, false)
            }
            Part::Tilde { user } => return Err(ExpandError::TildeUser(user.clone())),
            Part::Param { name, quoted } => (
                var(name).ok_or_else(|| ExpandError::Unset(name.clone()))?,
                !quoted,
                false,
            ),
            Part::Subst { script, quoted } => {
                let mut output = subst(script).ok_or(ExpandError::Substitution)?;
                output.truncate(output.trim_end_matches('\n').len());
                (output, !quoted, false)
            }
        };
        out.push(Piece {
            text,
            split,
            unquoted,
        });
    }
    Ok(out)
}

/// Whether `c` is a pattern character.
fn is_glob(c: char) -> bool {
    matches!(c, '*' | '?' | '[')
}

/// Field splitting of the pieces (IFS whitespace only) and quote removal.
fn fields(
    pieces: &[Piece],
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Field>, ExpandError> {
    if pieces.iter().any(|piece| piece.split) && var("IFS").is_some_and(|ifs| ifs != " \t\n") {
        return Err(ExpandError::Ifs);
    }
    let mut out = Vec::new();
    // The field being built, `None` until something (even an empty quoted string) starts it.
    let mut current: Option<Field> = None;
    for piece in pieces {
        if piece.split {
            for c in piece.text.chars() {
                if matches!(c, ' ' | '\t' | '\n') {
                    out.extend(current.take());
                } else {
                    let field = current.get_or_insert_with(empty_field);
                    field.text.push(c);
                    field.glob |= is_glob(c);
                }
            }
        } else if !(piece.unquoted && piece.text.is_empty()) {
            let field = current.get_or_insert_with(empty_field);
            field.text.push_str(&piece.text);
            field.glob |= piece.unquoted && piece.text.contains(is_glob);
        }
    }
    out.extend(current);
    Ok(out)
}

fn empty_field() -> Field {
    Field {
        text: String::new(),
        glob: false,
    }
}
