//! OCI layouts written by liftoff, read back by skopeo and umoci, and the reverse.

use std::os::unix::fs::MetadataExt;

use liftoff::image::manifest::{Parsed, parse};
use liftoff::image::media;
use liftoff::image::oci_layout::{LayoutError, OciLayout, write_image};
use liftoff::image::{BlobFile, ManifestFormat};
use liftoff::store::Store;
use liftoff_layers::Digest;

use crate::image_formats::fixture::{
    blob_file, make_image, path_str, run, skopeo_config, skopeo_inspect,
};

#[test]
fn written_layout_is_read_by_skopeo_and_umoci() -> Result<(), LayoutError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("cache")).expect("store");
    let dir = tmp.path().join("layout");
    let one = make_image(&store, ManifestFormat::Oci, "one", 2);
    let two = make_image(&store, ManifestFormat::Oci, "two", 1);
    let d1 = write_image(
        &dir,
        Some("v1"),
        &one.manifest,
        media::OCI_MANIFEST,
        &one.blob_files(&store),
    )?;
    assert_eq!(d1, one.manifest_digest);
    write_image(
        &dir,
        Some("v2"),
        &two.manifest,
        media::OCI_MANIFEST,
        &two.blob_files(&store),
    )?;

    let dir_s = path_str(&dir);
    let inspected = skopeo_inspect(&format!("oci:{dir_s}:v1"));
    assert_eq!(inspected["Digest"], one.manifest_digest.to_string());
    assert_eq!(inspected["Architecture"], "amd64");
    let layers: Vec<String> = one.layers.iter().map(|(d, _, _)| d.to_string()).collect();
    assert_eq!(inspected["Layers"], serde_json::json!(layers));
    assert_eq!(skopeo_config(&format!("oci:{dir_s}:v2")), two.config);
    let mut tags: Vec<String> = run("umoci", &["ls", "--layout", dir_s])
        .lines()
        .map(str::to_string)
        .collect();
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);

    // Blobs are copies of the store's, never hard links: an edit of the layout must not
    // reach the cache.
    let meta = |p: &std::path::Path| std::fs::metadata(p).expect("stat");
    let (layer, _, _) = one.layers[0];
    let (copy, cached) = (
        meta(&dir.join("blobs/sha256").join(layer.hex())),
        meta(&store.blob_path(&layer)),
    );
    assert_ne!(copy.ino(), cached.ino());
    assert_eq!((copy.nlink(), cached.nlink()), (1, 1));

    // Retagging v1 replaces its entry and keeps v2; entries are sorted by ref name.
    write_image(
        &dir,
        Some("v1"),
        &two.manifest,
        media::OCI_MANIFEST,
        &two.blob_files(&store),
    )?;
    let index = std::fs::read_to_string(dir.join("index.json")).expect("index.json");
    let entry = |tag: &str| {
        format!(
            r#"{{"mediaType":"{}","size":{},"digest":"{}","annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}"#,
            media::OCI_MANIFEST,
            two.manifest.len(),
            two.manifest_digest
        )
    };
    assert_eq!(
        index,
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{},{}]}}"#,
            media::OCI_INDEX,
            entry("v1"),
            entry("v2")
        )
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("oci-layout")).expect("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    Ok(())
}

#[test]
fn resolves_tags_in_a_layout_written_by_skopeo() -> Result<(), LayoutError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("cache")).expect("store");
    let ours = tmp.path().join("ours");
    let img = make_image(&store, ManifestFormat::Oci, "dock", 2);
    write_image(
        &ours,
        Some("src"),
        &img.manifest,
        media::OCI_MANIFEST,
        &img.blob_files(&store),
    )?;
    let theirs = tmp.path().join("theirs");
    for tag in ["docker.io/library/airflow:3.1", "other"] {
        run(
            "skopeo",
            &[
                "copy",
                "-q",
                "--format",
                "oci",
                &format!("oci:{}:src", path_str(&ours)),
                &format!("oci:{}:{tag}", path_str(&theirs)),
            ],
        );
    }
    let layout = OciLayout::open(&theirs)?;
    assert_eq!(layout.tags(), ["docker.io/library/airflow:3.1", "other"]);
    for tag in ["3.1", "docker.io/library/airflow:3.1", "other"] {
        let (bytes, media_type, digest) = layout.resolve(Some(tag))?;
        assert_eq!(media_type, media::OCI_MANIFEST, "{tag}");
        assert_eq!(digest, Digest::of(&bytes));
        let Ok(Parsed::Manifest(m)) = parse(&bytes, Some(&media_type)) else {
            panic!("manifest for {tag}")
        };
        assert_eq!(
            m.config.digest, img.config_digest,
            "skopeo keeps the config bytes"
        );
        assert_eq!(
            layout.read_blob(&m.config.digest, m.config.size)?,
            img.config
        );
    }
    let err = layout.resolve(None).expect_err("two images");
    assert_eq!(
        err.to_string(),
        format!(
            "the OCI layout {0} holds several images (docker.io/library/airflow:3.1, other); name one as oci:{0}:TAG",
            theirs.display()
        )
    );
    let err = layout.resolve(Some("3.2")).expect_err("no such tag");
    assert_eq!(
        err.to_string(),
        format!(
            "the OCI layout {} has no image tagged \"3.2\"; it has: docker.io/library/airflow:3.1, other",
            theirs.display()
        )
    );
    Ok(())
}

#[test]
fn a_nested_index_is_followed_to_linux_amd64() -> Result<(), LayoutError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("cache")).expect("store");
    let img = make_image(&store, ManifestFormat::Oci, "multi", 1);
    let manifest_path = tmp.path().join("manifest.json");
    std::fs::write(&manifest_path, &img.manifest).expect("write manifest");
    let arm = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{idx}","manifests":[{{"mediaType":"{m}","size":500,"digest":"{arm}","platform":{{"architecture":"arm64","os":"linux"}}}},{{"mediaType":"{m}","size":{},"digest":"{}","platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        img.manifest.len(),
        img.manifest_digest,
        idx = media::OCI_INDEX,
        m = media::OCI_MANIFEST
    );
    let mut blobs = img.blob_files(&store);
    blobs.push(BlobFile {
        digest: img.manifest_digest,
        size: img.manifest.len() as u64,
        path: manifest_path,
    });
    let dir = tmp.path().join("layout");
    write_image(
        &dir,
        Some("latest"),
        index.as_bytes(),
        media::OCI_INDEX,
        &blobs,
    )?;
    let layout = OciLayout::open(&dir)?;
    let (bytes, media_type, digest) = layout.resolve(None)?;
    assert_eq!(
        (bytes, media_type.as_str(), digest),
        (
            img.manifest.clone(),
            media::OCI_MANIFEST,
            img.manifest_digest
        )
    );

    let blob = dir.join("blobs/sha256").join(img.manifest_digest.hex());
    let mut evil = img.manifest.clone();
    evil[0] ^= 1;
    std::fs::remove_file(&blob).expect("rm");
    std::fs::write(&blob, &evil).expect("corrupt");
    let err = layout.resolve(Some("latest")).expect_err("corrupt");
    assert_eq!(
        err.to_string(),
        format!(
            "blob {} in the OCI layout {} is corrupt: its bytes hash to {}",
            img.manifest_digest,
            dir.display(),
            Digest::of(&evil)
        )
    );
    std::fs::write(&blob, b"{}").expect("shorter");
    let err = layout.resolve(Some("latest")).expect_err("wrong size");
    assert_eq!(
        err.to_string(),
        format!(
            "blob {} in the OCI layout {} is 2 bytes, but its descriptor says {}",
            img.manifest_digest,
            dir.display(),
            img.manifest.len()
        )
    );
    Ok(())
}

#[test]
fn not_a_layout_is_explained() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .expect("write");
    let err = OciLayout::open(tmp.path()).expect_err("bad version");
    assert!(
        err.to_string().starts_with(&format!(
            "{} is not an OCI image layout: oci-layout must be {{\"imageLayoutVersion\":\"1.0.0\"}}",
            tmp.path().display()
        )),
        "{err}"
    );
}

#[test]
fn blobs_are_copied_verified_and_a_failed_write_changes_nothing() -> Result<(), LayoutError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("cache")).expect("store");
    let img = make_image(&store, ManifestFormat::Oci, "copy", 1);
    let out = tmp.path().join("out");
    let dir = out.join("layout");
    write_image(
        &dir,
        Some("c"),
        &img.manifest,
        media::OCI_MANIFEST,
        &img.blob_files(&store),
    )?;
    let (layer, _, _) = img.layers[0];
    let copied = dir.join("blobs/sha256").join(layer.hex());
    assert_eq!(
        std::fs::read(&copied).expect("copied blob"),
        std::fs::read(store.blob_path(&layer)).expect("blob")
    );
    let meta = std::fs::metadata(&copied).expect("stat");
    assert_eq!((meta.mode() & 0o777, meta.nlink()), (0o644, 1));
    assert_eq!(
        skopeo_inspect(&format!("oci:{}:c", path_str(&dir)))["Digest"],
        img.manifest_digest.to_string()
    );
    let index_before = std::fs::read(dir.join("index.json")).expect("index.json");

    // A source whose bytes do not match the digest it is given as is refused, into a new
    // layout (nothing is left: it was made in a staging folder) or an existing one (its
    // index.json is as it was, and no temp file is left).
    let liar = tmp.path().join("liar");
    std::fs::write(&liar, b"not it").expect("write");
    let claimed = Digest::of(b"something else");
    let lie = [BlobFile {
        digest: claimed,
        size: 6,
        path: liar.clone(),
    }];
    for target in [out.join("other"), dir.clone()] {
        let err = write_image(
            &target,
            Some("bad"),
            &img.manifest,
            media::OCI_MANIFEST,
            &lie,
        )
        .expect_err("mismatch");
        assert_eq!(
            err.to_string(),
            format!(
                "{} was given as blob {claimed} but its bytes hash to {}",
                liar.display(),
                Digest::of(b"not it")
            )
        );
    }
    assert_eq!(names(&out), ["layout"], "no new layout, no staging folder");
    assert_eq!(
        std::fs::read(dir.join("index.json")).expect("index.json"),
        index_before
    );
    assert!(
        names(&dir.join("blobs/sha256"))
            .iter()
            .all(|n| !n.starts_with('.')),
        "no temp file left"
    );

    // The right digest with the wrong size is refused too.
    let err = write_image(
        &out.join("other"),
        None,
        &img.manifest,
        media::OCI_MANIFEST,
        &[BlobFile {
            size: 7,
            ..blob_file(&store, &layer)
        }],
    )
    .expect_err("size");
    assert_eq!(
        err.to_string(),
        format!(
            "{} was given as blob {layer} of 7 bytes but holds {}",
            store.blob_path(&layer).display(),
            meta.len()
        )
    );
    Ok(())
}

#[test]
fn what_killed_writers_left_is_removed_and_live_temp_files_stay() -> Result<(), LayoutError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("cache")).expect("store");
    let img = make_image(&store, ManifestFormat::Oci, "kill", 1);
    let dir = tmp.path().join("layout");
    write_image(
        &dir,
        Some("a"),
        &img.manifest,
        media::OCI_MANIFEST,
        &img.blob_files(&store),
    )?;
    // A killed copy's temp file, a killed first write's staging folder (nobody holds their
    // locks), and a live writer's temp file.
    let blobs = dir.join("blobs/sha256");
    std::fs::write(blobs.join(".tmp-killed"), b"partial").expect("leftover");
    std::fs::create_dir_all(tmp.path().join(".new.liftoff-killed/blobs")).expect("leftover");
    let live = liftoff::fsutil::temp::temp_file(&blobs, ".tmp-").expect("live temp");
    write_image(
        &dir,
        Some("b"),
        &img.manifest,
        media::OCI_MANIFEST,
        &img.blob_files(&store),
    )?;
    write_image(
        &tmp.path().join("new"),
        None,
        &img.manifest,
        media::OCI_MANIFEST,
        &img.blob_files(&store),
    )?;
    let live_name = live
        .path()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let dots: Vec<String> = names(&blobs)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert_eq!(dots, [live_name]);
    assert_eq!(names(tmp.path()), ["cache", "layout", "new"]);
    Ok(())
}

/// The sorted names in a folder.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}
