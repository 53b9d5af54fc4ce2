//! Building and parsing manifests with real-world-shaped documents.

use liftoff::image::manifest::{
    ImageParts, IndexEntry, LayerDescriptor, ManifestError, ManifestInfo, Parsed, build_manifest,
    parse, select_linux_amd64,
};
use liftoff::image::{ManifestFormat, media};
use liftoff_layers::Digest;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

fn d(s: &str) -> Digest {
    s.parse().expect("test digest")
}

#[test]
fn built_manifest_bytes_are_exact_and_parse_back() {
    let layer = LayerDescriptor {
        media_type: media::DOCKER_LAYER_GZIP.into(),
        digest: d(D1),
        size: 42,
    };
    let parts = ImageParts {
        format: ManifestFormat::Docker,
        config: b"{}".to_vec(),
        layers: vec![layer.clone()],
    };
    let (bytes, digest) = build_manifest(&parts).expect("manifest serializes");
    let cfg = Digest::of(b"{}");
    let want = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":2,"digest":"{cfg}"}},"layers":[{{"mediaType":"{}","size":42,"digest":"{D1}"}}]}}"#,
        media::DOCKER_MANIFEST,
        media::DOCKER_CONFIG,
        media::DOCKER_LAYER_GZIP
    );
    assert_eq!(String::from_utf8(bytes.clone()).expect("utf8"), want);
    assert_eq!(digest, Digest::of(want.as_bytes()));
    let config = LayerDescriptor {
        media_type: media::DOCKER_CONFIG.into(),
        digest: cfg,
        size: 2,
    };
    assert_eq!(
        parse(&bytes, None),
        Ok(Parsed::Manifest(ManifestInfo {
            format: ManifestFormat::Docker,
            config,
            layers: vec![layer]
        }))
    );

    let oci = ImageParts {
        format: ManifestFormat::Oci,
        config: b"{}".to_vec(),
        layers: vec![],
    };
    let (bytes, _) = build_manifest(&oci).expect("manifest serializes");
    let text = String::from_utf8(bytes).expect("utf8");
    assert!(
        text.starts_with(&format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}""#,
            media::OCI_MANIFEST,
            media::OCI_CONFIG
        )),
        "{text}"
    );
    assert!(text.ends_with(r#""layers":[]}"#), "{text}");
}

// Shaped like the manifest list of a multi-arch image on Docker Hub, with a buildkit attestation.
fn docker_hub_list(archs: &[(&str, &str)]) -> String {
    let entries: Vec<String> = archs
        .iter()
        .enumerate()
        .map(|(i, (arch, variant))| {
            let v = if variant.is_empty() { String::new() } else { format!(r#","variant":"{variant}""#) };
            format!(
                r#"{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":{},"digest":"sha256:{}","platform":{{"architecture":"{arch}","os":"linux"{v}}}}}"#,
                1000 + i,
                format!("{i}").repeat(64)
            )
        })
        .collect();
    format!(
        r#"{{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
   "manifests": [{},
      {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D3}","size":566,
        "annotations":{{"vnd.docker.reference.digest":"{D1}","vnd.docker.reference.type":"attestation-manifest"}},
        "platform":{{"architecture":"unknown","os":"unknown"}}}}]
}}"#,
        entries.join(",\n")
    )
}

#[test]
fn manifest_list_selects_linux_amd64() {
    let doc = docker_hub_list(&[("arm64", "v8"), ("amd64", "")]);
    let Ok(Parsed::Index(entries)) = parse(doc.as_bytes(), Some(media::DOCKER_MANIFEST_LIST))
    else {
        panic!("expected an index from {doc}");
    };
    assert_eq!(entries.len(), 3);
    let e = select_linux_amd64(&entries).expect("has amd64");
    assert_eq!(
        e,
        &IndexEntry {
            media_type: media::DOCKER_MANIFEST.into(),
            digest: d(&format!("sha256:{}", "1".repeat(64))),
            size: 1001,
            os: Some("linux".into()),
            architecture: Some("amd64".into()),
            variant: None,
        }
    );
}

#[test]
fn missing_linux_amd64_lists_what_there_is() {
    let doc = docker_hub_list(&[("arm64", "v8"), ("arm", "v7"), ("s390x", "")]);
    let Ok(Parsed::Index(entries)) = parse(doc.as_bytes(), None) else {
        panic!("index")
    };
    let err = select_linux_amd64(&entries).expect_err("no amd64");
    assert_eq!(
        crate::support::hinted(&err),
        "the image has no linux/amd64 manifest; it has: linux/arm64/v8, linux/arm/v7, linux/s390x\n  hint: liftoff builds for Astro, which runs linux/amd64: use a base image that publishes linux/amd64"
    );
}

#[test]
fn oci_index_without_media_type_is_sniffed() {
    // As written by some tools into an OCI layout's index.json: no mediaType field.
    let doc = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D2}","size":7143,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
    );
    let Ok(Parsed::Index(entries)) = parse(doc.as_bytes(), None) else {
        panic!("index")
    };
    assert_eq!(entries[0].digest, d(D2));
    assert_eq!(entries[0].platform_name(), "linux/amd64");
}

#[test]
fn oci_manifest_keeps_layer_media_types_in_order() {
    let doc = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":7023}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":32654}},
                      {{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"{D3}","size":16724,"annotations":{{"a":"b"}}}}],
            "annotations":{{"org.opencontainers.image.base.name":"x"}}}}"#
    );
    let Ok(Parsed::Manifest(m)) = parse(doc.as_bytes(), Some(media::OCI_MANIFEST)) else {
        panic!("manifest")
    };
    assert_eq!(m.format, ManifestFormat::Oci);
    assert_eq!(m.config.size, 7023);
    let layers: Vec<(&str, Digest)> = m
        .layers
        .iter()
        .map(|l| (l.media_type.as_str(), l.digest))
        .collect();
    assert_eq!(
        layers,
        vec![
            (media::OCI_LAYER_GZIP, d(D2)),
            ("application/vnd.oci.image.layer.v1.tar+zstd", d(D3))
        ]
    );
}

#[test]
fn unsupported_shapes_name_the_media_type() {
    let schema1 =
        br#"{"schemaVersion":1,"name":"library/busybox","tag":"1","architecture":"amd64","fsLayers":[],"history":[]}"#;
    assert_eq!(
        crate::support::hinted(&parse(schema1, None).expect_err("schema 1")),
        "Docker schema 1 manifests (application/vnd.docker.distribution.manifest.v1+json) are not supported\n  hint: re-push the image with a current Docker or pick a newer tag"
    );
    let err = parse(b"{}", Some("application/vnd.cncf.helm.config.v1+json")).expect_err("unknown");
    assert!(
        matches!(&err, ManifestError::UnsupportedMediaType { media_type } if media_type == "application/vnd.cncf.helm.config.v1+json")
    );
    assert!(
        err.to_string()
            .starts_with("unsupported manifest media type \"application/vnd.cncf.helm.config.v1+json\"; liftoff reads"),
        "{err}"
    );

    let sha512 = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"sha512:{}","size":1}},"layers":[]}}"#,
        media::DOCKER_MANIFEST,
        media::DOCKER_CONFIG,
        "ab".repeat(64)
    );
    assert_eq!(
        parse(sha512.as_bytes(), None)
            .expect_err("sha512")
            .to_string(),
        format!(
            "unsupported digest \"sha512:{}\" in a {} manifest: only sha256 is supported",
            "ab".repeat(64),
            media::DOCKER_MANIFEST
        )
    );
    let err = parse(sha512.as_bytes(), Some(media::OCI_MANIFEST)).expect_err("conflict");
    assert!(
        matches!(err, ManifestError::MediaTypeConflict { .. }),
        "{err}"
    );
}
