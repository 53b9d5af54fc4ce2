//! Errors as the command layer hands them to the printer: the library's typed errors (each
//! with its [`Hint`]) in an `anyhow::Error` chain, and the command layer's own messages with
//! their hint as data ([`with_hint`]). The printer finds every hint in the chain
//! ([`hint_of`]) and shows each once, last.

use std::error::Error;
use std::fmt;

use liftoff_core::hint::Hint;

/// An error whose hint the command layer knows (a message of its own, or a library error
/// seen in a context that needs another hint). Shows the error's message; its causes stay
/// the error's causes.
#[derive(Debug)]
pub struct Hinted {
    error: anyhow::Error,
    hint: String,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl Error for Hinted {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        // The wrapped error is shown as this one; the chain goes on with its causes.
        self.error.source()
    }
}

impl Hinted {
    /// The error the hint is about.
    pub fn inner(&self) -> &anyhow::Error {
        &self.error
    }
}

impl Hint for Hinted {
    fn hint(&self) -> Option<String> {
        Some(self.hint.clone())
    }
}

/// `error` with `hint` as data.
pub fn with_hint(error: impl Into<anyhow::Error>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        error: error.into(),
        hint: hint.into(),
    })
}

/// A message that restates `error` in the command's own words (the argument it came from,
/// say), keeping the error's hint.
pub fn restated(message: String, error: &impl Hint) -> anyhow::Error {
    let e = anyhow::anyhow!(message);
    match error.hint() {
        Some(h) => with_hint(e, h),
        None => e,
    }
}

/// The hints an error in a chain carries: a [`Hinted`]'s (then those of the error it wraps,
/// which the chain shows as the `Hinted` itself), or one of the library's error types'. Every
/// type that implements [`Hint`] is named here.
pub fn hint_of(cause: &(dyn Error + 'static)) -> Vec<String> {
    if let Some(e) = cause.downcast_ref::<std::io::Error>()
        && e.kind() == std::io::ErrorKind::StorageFull
    {
        return vec![
            "that file system is full: free some space there, or put the cache (LIFTOFF_CACHE_DIR) or the output on one with room; nothing partial was kept".to_string(),
        ];
    }
    if let Some(h) = cause.downcast_ref::<Hinted>() {
        let mut hints = vec![h.hint.clone()];
        hints.extend(hint_of(&*h.error));
        return hints;
    }
    if let Some(e) = cause.downcast_ref::<liftoff_layers::LayerError>() {
        return e.hint().map(str::to_string).into_iter().collect();
    }
    macro_rules! hint_of_types {
        ($($t:ty),* $(,)?) => {
            $(
                if let Some(e) = cause.downcast_ref::<$t>() {
                    return e.hint().into_iter().collect();
                }
            )*
        };
    }
    hint_of_types!(
        liftoff_core::rootfs::RootFsError,
        liftoff_debian::archive::index::IndexError,
        liftoff_debian::archive::release::ReleaseError,
        liftoff_debian::resolution::lock::LockError,
        liftoff_python::install::InstallError,
        liftoff_python::lock::LockError,
        liftoff_python::requirements::RequirementsError,
        liftoff_python::resolve::ResolveError,
        liftoff_python::wheel::WheelError,
        crate::astro::AstroError,
        crate::astro::blob::BlobError,
        crate::base::verify::VerifyError,
        crate::deploy::store::StoreError,
        crate::http::HttpError,
        crate::image::docker_archive::ArchiveError,
        crate::image::manifest::ManifestError,
        crate::image::oci_layout::LayoutError,
        crate::ops::uv::binary::UvError,
        crate::ops::wheels::WheelsError,
        crate::project::files::ProjectFileError,
        crate::reference::ReferenceError,
        crate::registry::RegistryError,
        crate::store::StoreError,
    );
    Vec::new()
}
