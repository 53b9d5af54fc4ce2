//! Manifests, OCI layouts and docker-archives, checked against skopeo and umoci.

#[path = "image_formats/archive.rs"]
mod archive;
#[path = "image_formats/fixture.rs"]
mod fixture;
#[path = "image_formats/layout.rs"]
mod layout;
#[path = "image_formats/manifest.rs"]
mod manifest;
