//! Manifests, OCI layouts and docker-archives, checked against skopeo and umoci.

#[path = "image_formats/manifest.rs"]
mod manifest;
