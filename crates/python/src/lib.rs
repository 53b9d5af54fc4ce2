//! Pure foundations for installing `requirements.txt` into a Python packages layer.
//!
//! Everything here is pure (no network, no clock, no host paths, no async, no store): uv runs
//! in the caller's process (see [`resolve::RunUv`]), wheels are read from the caller's readers.
//! Parsers return typed errors that name the file and line (or the string) involved.
//!
//! - [`consistency`]: what `pip check` checks, over a set of installed distributions.
//! - [`direct_url`]: `direct_url.json` (PEP 610) for a distribution named by a path.
//! - [`pep440`]: versions and specifier sets.
//! - [`pep508`]: requirement strings and environment markers for a target interpreter.
//! - [`base`]: the base image's Python, discovered from its layers.
//! - [`bytecode`]: the `.pyc` files pip compiles for the installed files, and their `RECORD` rows.
//! - [`install`]: the requirements layer's entries from the planned wheels, checked against
//!   the base (overwrites, conflicts), replaced distributions whited out.
//! - [`order`]: the order pip installs a resolved set in (whose bytes stay in a shared file).
//! - [`lock`]: `.astro/pylock.toml` (PEP 751) with the base digest and requirements hash.
//! - [`requirements`]: `requirements.txt` as pip reads it, plus the Runtime's Airflow pin guard.
//! - [`resolve`]: requirements resolved for the target by the pinned uv, as `pip install` in the
//!   image would, base distributions installed (changed only where needed).
//! - [`sdist`]: what building a source distribution in the image needs (its build requirements).
//! - [`tags`]: wheel file names and the compatible tag order for a target.
//! - [`uninstall`]: what a replaced base distribution leaves, to white out (files and folders).
//! - [`venv`]: a virtual environment as `python -m venv` of the image's Python writes it.
//! - [`wheel`]: the installation of one wheel, planned from its bytes (layout, scripts, `RECORD`).

pub mod base;
pub mod bytecode;
pub mod consistency;
pub mod direct_url;
pub mod install;
pub mod lock;
pub mod order;
pub mod pep440;
pub mod pep508;
pub mod requirements;
pub mod resolve;
pub mod sdist;
pub mod tags;
pub mod uninstall;
pub mod venv;
pub mod wheel;
