//! The fast static check `deploy` runs before anything is built or uploaded: every DAG file
//! parses as Python 3 (of the image's version, when known), and every import its module body
//! runs resolves to the standard library, a distribution installed in the image, or the
//! project's own modules. Each problem names the file, the line and what is wrong.
//!
//! Pure: the caller reads the DAG files, the image's `RECORD`s and the project's file list, and
//! passes them in ([`check`], [`Known`], [`project_modules`]). What it cannot see, it does not
//! guess: an import's submodules and names are not checked, only its top-level module (and,
//! under `airflow.providers`, that the provider is installed: providers are separate
//! distributions sharing one package); running the DAGs (the real parse, pytest) is a separate step.

mod imports;
mod known;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ruff_python_ast::PythonVersion;
use ruff_python_parser::{Mode, ParseOptions, parse_unchecked};

pub use known::{Known, STDLIB_FIRST, STDLIB_LAST};

use imports::Node;

/// The project folders Airflow puts on `sys.path` besides the project root (which the image's
/// working folder, `AIRFLOW_HOME`, is), so a top-level name found in one is importable.
pub const PROJECT_PATH_FOLDERS: [&str; 3] = ["dags", "plugins", "include"];

/// One thing wrong with a DAG file. Shown as `dags/x.py:12: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file as the caller named it (project-relative: `dags/etl.py`).
    pub file: String,
    /// 1-based line.
    pub line: u32,
    pub kind: ProblemKind,
    pub message: String,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
}

/// What kind of problem a [`Problem`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file does not parse as Python 3.
    Syntax,
    /// The file uses syntax the image's Python does not have yet (`match` on 3.9).
    SyntaxTooNew,
    /// A top-level module the module body imports is found nowhere.
    MissingModule { module: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Checks DAG files, given as `(project-relative path, text)`: each must parse as Python 3
/// (the first syntax error of a file is reported, as Python stops at it; with the image's
/// Python in `known`, syntax newer than it is an error too), and each import its module body
/// runs (see the `imports` module: not in functions, not under `if TYPE_CHECKING:`, relative
/// imports skipped) must name a top-level module in `known` or `project_modules`. An import in
/// a `try:` that catches `ImportError` (or `Exception`) may fail; its handler's imports are
/// then checked instead. A missing module is reported once per file, at its first import.
/// Problems come sorted by file, then line.
pub fn check(
    files: &[(&str, &str)],
    known: &Known,
    project_modules: &BTreeSet<String>,
) -> Vec<Problem> {
    // The module an import needs and the image lacks: its top-level module, or the Airflow
    // provider it imports from.
    let lacking = |module: &str| {
        let top = top_level(module);
        if project_modules.contains(top) {
            return None;
        }
        if !known.contains(top) {
            return Some(top.to_string());
        }
        let provider = known.missing_provider(module)?;
        Some(format!("{PROVIDERS_PACKAGE}.{provider}"))
    };
    let mut sorted: Vec<&(&str, &str)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut problems = Vec::new();
    for &&(file, text) in &sorted {
        let lines = LineIndex::new(text);
        let mut options = ParseOptions::from(Mode::Module);
        if let Some(version) = known.python().and_then(parser_version) {
            options = options.with_target_version(version);
        }
        let parsed = parse_unchecked(text, options);
        let problem = |offset: usize, kind, message: String, hint| Problem {
            file: file.to_string(),
            line: lines.line_of(offset),
            kind,
            message,
            hint,
        };
        if let Some(err) = parsed.errors().iter().min_by_key(|e| e.location.start()) {
            let offset = err.location.start().to_usize();
            let message = format!("syntax error: {}", err.error);
            problems.push(problem(offset, ProblemKind::Syntax, message, None));
            continue;
        }
        // Without the image's Python, the parser's default target would judge: not reported.
        let too_new = match known.python() {
            Some(_) => parsed.unsupported_syntax_errors(),
            None => &[],
        };
        if let Some(err) = too_new.iter().min_by_key(|e| e.range.start()) {
            let offset = err.range.start().to_usize();
            let hint = Some(
                "use syntax the image's Python has, or a Runtime version with a newer Python"
                    .to_string(),
            );
            let message = format!("syntax error: {err}");
            problems.push(problem(offset, ProblemKind::SyntaxTooNew, message, hint));
        }
        let Some(module) = parsed.syntax().as_module() else {
            continue;
        };
        let nodes = imports::module_imports(&module.body, known.python());
        // First failing import of each top-level module in this file.
        let mut missing: BTreeMap<String, usize> = BTreeMap::new();
        for (module, offset) in unresolved(&nodes, &lacking) {
            missing.entry(module).or_insert(offset);
        }
        for (module, offset) in missing {
            let (message, hint) = missing_message(&module, known);
            let kind = ProblemKind::MissingModule { module };
            problems.push(problem(offset, kind, message, Some(hint)));
        }
    }
    problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    problems
}

/// The imports among `nodes` that fail and are not optional, as `(missing module, offset)`;
/// `lacking` names what an import lacks, if anything.
fn unresolved(nodes: &[Node], lacking: &dyn Fn(&str) -> Option<String>) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for node in nodes {
        match node {
            Node::Import { module, offset } => {
                if let Some(missing) = lacking(module) {
                    out.push((missing, *offset));
                }
            }
            Node::Optional { body, fallback } => {
                // The handler runs only when the body's imports failed.
                if !unresolved(body, lacking).is_empty() {
                    out.extend(unresolved(fallback, lacking));
                }
            }
        }
    }
    out
}

/// Where Airflow's provider distributions put their modules.
const PROVIDERS_PACKAGE: &str = "airflow.providers";

/// The message and hint for a module found nowhere: a top-level module, or an Airflow
/// provider's package (`airflow.providers.snowflake`).
fn missing_message(module: &str, known: &Known) -> (String, String) {
    if let Some(provider) = module
        .strip_prefix(PROVIDERS_PACKAGE)
        .and_then(|p| p.strip_prefix('.'))
    {
        let message = format!(
            "module `{module}` is not installed in the image (no provider distribution \
             provides it)"
        );
        let dist = format!("apache-airflow-providers-{}", provider.replace('.', "-"));
        let hint = format!("add `{dist}` to requirements.txt (it provides `{module}`)");
        return (message, hint);
    }
    if let (Some((major, minor)), Some(span)) = (known.python(), known::stdlib_span(module)) {
        let message = format!(
            "module `{module}` is not in Python {major}.{minor}'s standard library (it is in \
             Python {span}), and no distribution in the image provides it"
        );
        let hint = format!("use what replaces `{module}`, or a distribution that provides it");
        return (message, hint);
    }
    let message = format!(
        "module `{module}` is not installed in the image (no distribution provides it, and it \
         is not in dags/, plugins/ or include/)"
    );
    let hint = match distribution_of(module) {
        Some(dist) => format!("add `{dist}` to requirements.txt (it provides `{module}`)"),
        None => format!("add the distribution that provides `{module}` to requirements.txt"),
    };
    (message, hint)
}

/// Import names whose distribution is named otherwise (the usual surprises).
const DISTRIBUTIONS: [(&str, &str); 28] = [
    ("Crypto", "pycryptodome"),
    ("MySQLdb", "mysqlclient"),
    ("OpenSSL", "pyOpenSSL"),
    ("PIL", "Pillow"),
    ("attr", "attrs"),
    ("bs4", "beautifulsoup4"),
    ("cv2", "opencv-python"),
    ("dateutil", "python-dateutil"),
    ("dbt", "dbt-core"),
    ("docx", "python-docx"),
    ("dotenv", "python-dotenv"),
    ("fitz", "PyMuPDF"),
    ("git", "GitPython"),
    ("googleapiclient", "google-api-python-client"),
    ("great_expectations", "great-expectations"),
    ("jose", "python-jose"),
    ("jwt", "PyJWT"),
    ("kafka", "kafka-python"),
    ("ldap", "python-ldap"),
    ("magic", "python-magic"),
    ("psycopg2", "psycopg2-binary"),
    ("serial", "pyserial"),
    ("skimage", "scikit-image"),
    ("sklearn", "scikit-learn"),
    ("slugify", "python-slugify"),
    ("snowflake", "snowflake-connector-python"),
    ("yaml", "PyYAML"),
    ("zmq", "pyzmq"),
];

/// The distribution that provides import name `module`, when it is one of [`DISTRIBUTIONS`].
pub fn distribution_of(module: &str) -> Option<&'static str> {
    DISTRIBUTIONS
        .binary_search_by(|(name, _)| name.cmp(&module))
        .ok()
        .map(|i| DISTRIBUTIONS[i].1)
}

/// The top-level module names the project itself provides, from its project-relative file
/// paths (`dags/etl.py`, `include/helpers/__init__.py`): the project root and each of
/// [`PROJECT_PATH_FOLDERS`] are on the image's `sys.path`, so in each, a folder (a package,
/// or a namespace package without `__init__.py`) or a module file (`x.py`, `x.so`) directly
/// inside gives its name. Names that are not Python identifiers are left out.
pub fn project_modules(paths: &[&str]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for path in paths {
        let path = path.trim_start_matches("./");
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut add = |parts: &[&str]| match parts {
            [] => {}
            [file] => names.extend(known::module_of_file(file)),
            [dir, ..] => {
                if *dir != "__pycache__" && known::is_identifier(dir) {
                    names.insert(dir.to_string());
                }
            }
        };
        add(&parts);
        if let [first, rest @ ..] = &parts[..]
            && PROJECT_PATH_FOLDERS.contains(first)
        {
            add(rest);
        }
    }
    names
}

/// `a` of `a.b.c`.
fn top_level(module: &str) -> &str {
    module.split('.').next().unwrap_or(module)
}

/// Our `(major, minor)` as the parser's version, when it fits.
fn parser_version((major, minor): (u32, u32)) -> Option<PythonVersion> {
    Some(PythonVersion {
        major: u8::try_from(major).ok()?,
        minor: u8::try_from(minor).ok()?,
    })
}

/// Byte offsets to 1-based lines, ending lines as Python does (`\n`, `\r\n` or `\r`).
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        for (i, &b) in bytes.iter().enumerate() {
            let ends_line = b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
            if ends_line {
                starts.push(i + 1);
            }
        }
        LineIndex { starts }
    }

    fn line_of(&self, offset: usize) -> u32 {
        let line = self.starts.partition_point(|&s| s <= offset);
        u32::try_from(line).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
#[path = "dagcheck_tests.rs"]
mod tests;
