//! Manifests, OCI layouts and docker-archives, checked against skopeo and umoci.

#[allow(dead_code)] // until the archive tests use all of it
#[path = "image_formats/fixture.rs"]
mod fixture;
#[path = "image_formats/layout.rs"]
mod layout;
#[path = "image_formats/manifest.rs"]
mod manifest;
