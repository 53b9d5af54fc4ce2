//! The imports a DAG file runs when Airflow loads it, read from its syntax tree.
//!
//! Loading a DAG file runs its module body, so what counts is what the body imports: the
//! statements at top level and inside `if`, `with`, `for`, `while`, `match` and class bodies.
//! Left out: function bodies (imports there run when a task runs, and often on purpose, to keep
//! the DAG processor fast), `if TYPE_CHECKING:` blocks (never run), the branch of an
//! `if sys.version_info … (3, N)` test that the image's Python does not take, and relative
//! imports (they stay inside the project). An import inside `try:` whose handler catches
//! `ImportError`, `ModuleNotFoundError`, `Exception` or everything is optional: see
//! [`Node::Optional`].

use ruff_python_ast::{CmpOp, ExceptHandler, Expr, Number, Stmt};

/// One import the module body runs, or a group guarded by `try`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    /// `import a.b` or `from a.b import c`: the dotted module and the byte offset of the import.
    Import { module: String, offset: usize },
    /// A `try:` body whose handler catches a failed import, and the handlers' own imports: the
    /// body's imports may fail; the handlers' run only when one did, so they must resolve then.
    Optional {
        body: Vec<Node>,
        fallback: Vec<Node>,
    },
}

/// The imports `body` (a module's statements) runs, in source order. `python` is the image's
/// Python, used to decide `sys.version_info` tests; without it both branches are read.
pub(super) fn module_imports(body: &[Stmt], python: Option<(u32, u32)>) -> Vec<Node> {
    let mut out = Vec::new();
    collect(body, python, &mut out);
    out
}

fn collect(body: &[Stmt], python: Option<(u32, u32)>, out: &mut Vec<Node>) {
    for stmt in body {
        match stmt {
            Stmt::Import(s) => {
                for alias in &s.names {
                    out.push(Node::Import {
                        module: alias.name.id.as_str().to_string(),
                        offset: alias.range.start().to_usize(),
                    });
                }
            }
            Stmt::ImportFrom(s) => {
                if s.level == 0
                    && let Some(module) = &s.module
                {
                    out.push(Node::Import {
                        module: module.id.as_str().to_string(),
                        offset: module.range.start().to_usize(),
                    });
                }
            }
            Stmt::ClassDef(s) => collect(&s.body, python, out),
            Stmt::With(s) => collect(&s.body, python, out),
            Stmt::For(s) => {
                collect(&s.body, python, out);
                collect(&s.orelse, python, out);
            }
            Stmt::While(s) => {
                collect(&s.body, python, out);
                collect(&s.orelse, python, out);
            }
            Stmt::Match(s) => {
                for case in &s.cases {
                    collect(&case.body, python, out);
                }
            }
            Stmt::If(s) => {
                let clauses = std::iter::once((Some(&*s.test), &s.body[..])).chain(
                    s.elif_else_clauses
                        .iter()
                        .map(|c| (c.test.as_ref(), &c.body[..])),
                );
                for (test, body) in clauses {
                    let Some(test) = test else {
                        collect(body, python, out);
                        break;
                    };
                    if is_type_checking(test) {
                        continue;
                    }
                    match version_test(test, python) {
                        Some(false) => continue,
                        Some(true) => {
                            collect(body, python, out);
                            break;
                        }
                        None => collect(body, python, out),
                    }
                }
            }
            Stmt::Try(s) => {
                if s.handlers.iter().any(catches_import_error) {
                    let mut body = Vec::new();
                    collect(&s.body, python, &mut body);
                    let mut fallback = Vec::new();
                    for ExceptHandler::ExceptHandler(h) in &s.handlers {
                        collect(&h.body, python, &mut fallback);
                    }
                    out.push(Node::Optional { body, fallback });
                } else {
                    collect(&s.body, python, out);
                    for ExceptHandler::ExceptHandler(h) in &s.handlers {
                        collect(&h.body, python, out);
                    }
                }
                collect(&s.orelse, python, out);
                collect(&s.finalbody, python, out);
            }
            // Function bodies run later (lazy imports); the rest import nothing.
            _ => {}
        }
    }
}

/// Exception names whose handler also catches a failed import.
const CATCHES_IMPORT: [&str; 4] = [
    "ImportError",
    "ModuleNotFoundError",
    "Exception",
    "BaseException",
];

/// Whether a handler catches a failed import: a bare `except:`, or one of [`CATCHES_IMPORT`]
/// alone, in a tuple, or as an attribute (`builtins.ImportError`).
fn catches_import_error(handler: &ExceptHandler) -> bool {
    let ExceptHandler::ExceptHandler(h) = handler;
    let Some(caught) = &h.type_ else {
        return true;
    };
    let names: Vec<&Expr> = match &**caught {
        Expr::Tuple(t) => t.elts.iter().collect(),
        other => vec![other],
    };
    names
        .iter()
        .filter_map(|e| last_name(e))
        .any(|n| CATCHES_IMPORT.contains(&n))
}

/// `TYPE_CHECKING` or `anything.TYPE_CHECKING`.
fn is_type_checking(test: &Expr) -> bool {
    last_name(test) == Some("TYPE_CHECKING")
}

/// The last name of `a` or `a.b.c`.
fn last_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Name(n) => Some(n.id.as_str()),
        Expr::Attribute(a) => Some(a.attr.id.as_str()),
        _ => None,
    }
}

/// The value of `sys.version_info OP (major[, minor[, …]])` on Python `python`, when it can be
/// decided from `(major, minor)` alone; `None` for any other test.
fn version_test(test: &Expr, python: Option<(u32, u32)>) -> Option<bool> {
    let (major, minor) = python?;
    let Expr::Compare(cmp) = test else {
        return None;
    };
    let ([op], [right]) = (&cmp.ops[..], &cmp.comparators[..]) else {
        return None;
    };
    let Expr::Attribute(left) = &*cmp.left else {
        return None;
    };
    let is_sys = matches!(&*left.value, Expr::Name(n) if n.id.as_str() == "sys");
    if !is_sys || left.attr.id.as_str() != "version_info" {
        return None;
    }
    let Expr::Tuple(tuple) = right else {
        return None;
    };
    let mut wanted = Vec::new();
    for elt in &tuple.elts {
        let Expr::NumberLiteral(n) = elt else {
            return None;
        };
        let Number::Int(i) = &n.value else {
            return None;
        };
        wanted.push(u32::try_from(i.as_u64()?).ok()?);
    }
    // sys.version_info is (major, minor, micro, releaselevel, serial): compared as tuples, and
    // longer than a 1- or 2-element tuple it equals on that prefix.
    let ours = [major, minor];
    let prefix = wanted.len().min(2);
    let ordering = match ours[..prefix].cmp(&wanted[..prefix]) {
        std::cmp::Ordering::Equal if wanted.len() <= 2 => std::cmp::Ordering::Greater,
        std::cmp::Ordering::Equal => return None,
        decided => decided,
    };
    Some(match op {
        CmpOp::Lt => ordering.is_lt(),
        CmpOp::LtE => ordering.is_le(),
        CmpOp::Gt => ordering.is_gt(),
        CmpOp::GtE => ordering.is_ge(),
        CmpOp::Eq => ordering.is_eq(),
        CmpOp::NotEq => ordering.is_ne(),
        _ => return None,
    })
}
