//! docker-archives written by liftoff and read by skopeo, and the reverse.

use std::io::Read;

use liftoff::image::docker_archive::{ArchiveError, read_archive, write_archive};
use liftoff::image::manifest::{Parsed, parse};
use liftoff::image::oci_layout::{OciLayout, write_image};
use liftoff::image::{ManifestFormat, media};
use liftoff::store::Store;
use liftoff_layers::Digest;

use crate::image_formats::fixture::{
    TestImage, config_for, gzip, make_image, path_str, run, skopeo_config, tar_of, tar_with_links,
};

fn write_ours(
    store: &Store,
    img: &TestImage,
    path: &std::path::Path,
    tags: &[&str],
) -> Result<(), ArchiveError> {
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    write_archive(
        path,
        &tags,
        (&img.config_digest, &img.config),
        &img.archive_layers(store),
    )
}

/// Diff_ids of the layers of the image skopeo wrote into `dir`, by uncompressing its blobs.
fn diff_ids_in_layout(dir: &std::path::Path, tag: &str) -> (Digest, Vec<Digest>) {
    let layout = OciLayout::open(dir).expect("skopeo wrote a layout");
    let (bytes, media_type, _) = layout.resolve(Some(tag)).expect("tag present");
    let Ok(Parsed::Manifest(m)) = parse(&bytes, Some(&media_type)) else {
        panic!("manifest")
    };
    let diffs = m
        .layers
        .iter()
        .map(|l| {
            let blob = layout.read_blob(&l.digest, l.size).expect("layer blob");
            if blob.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&blob[..])
                    .read_to_end(&mut plain)
                    .expect("gunzip");
                Digest::of(&plain)
            } else {
                Digest::of(&blob)
            }
        })
        .collect();
    (m.config.digest, diffs)
}

#[test]
fn written_archive_is_deterministic_and_loads_in_skopeo() -> Result<(), ArchiveError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("cache"))?;
    let img = make_image(&store, ManifestFormat::Docker, "arch", 2);
    let (a, b) = (tmp.path().join("a.tar"), tmp.path().join("b.tar"));
    write_ours(&store, &img, &a, &["example.com/team/airflow:1.0"])?;
    write_ours(&store, &img, &b, &["example.com/team/airflow:1.0"])?;
    let bytes = std::fs::read(&a).expect("archive");
    assert_eq!(
        bytes,
        std::fs::read(&b).expect("archive"),
        "same inputs, same bytes"
    );

    let mut names = Vec::new();
    let mut archive = tar::Archive::new(&bytes[..]);
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        let h = entry.header();
        assert_eq!(
            (
                h.mtime().expect("mtime"),
                h.uid().expect("uid"),
                h.gid().expect("gid"),
                h.mode().expect("mode")
            ),
            (0, 0, 0, 0o644)
        );
        assert_eq!(
            (h.username_bytes(), h.groupname_bytes()),
            (Some(&b""[..]), Some(&b""[..]))
        );
        assert!(h.as_ustar().is_some(), "ustar header");
        let name = entry.path().expect("path").display().to_string();
        if name == "manifest.json" {
            let mut text = String::new();
            entry.read_to_string(&mut text).expect("manifest.json");
            let (l0, l1) = (img.layers[0].0.hex(), img.layers[1].0.hex());
            assert_eq!(
                text,
                format!(
                    r#"[{{"Config":"{}.json","RepoTags":["example.com/team/airflow:1.0"],"Layers":["{l0}.tar.gz","{l1}.tar.gz"]}}]"#,
                    img.config_digest.hex()
                )
            );
        }
        names.push(name);
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 5);

    let src = format!("docker-archive:{}", path_str(&a));
    assert_eq!(skopeo_config(&src), img.config);
    // The manifest skopeo synthesizes from the archive names our config blob.
    let raw = run("skopeo", &["inspect", "--raw", &src]);
    let Ok(Parsed::Manifest(m)) = parse(raw.as_bytes(), None) else {
        panic!("manifest from {raw}")
    };
    assert_eq!(
        (m.format, m.config.digest, m.layers.len()),
        (ManifestFormat::Docker, img.config_digest, 2)
    );
    let out = tmp.path().join("out");
    run(
        "skopeo",
        &["copy", "-q", &src, &format!("oci:{}:t", path_str(&out))],
    );
    let (_, diff_ids) = diff_ids_in_layout(&out, "t");
    // Converting to OCI, skopeo re-serializes the config (key order changes): compare as JSON.
    let theirs: serde_json::Value =
        serde_json::from_slice(&skopeo_config(&format!("oci:{}:t", path_str(&out)))).expect("json");
    let ours: serde_json::Value = serde_json::from_slice(&img.config).expect("json");
    assert_eq!(theirs, ours);
    assert_eq!(diff_ids, img.diff_ids());
    Ok(())
}

#[test]
fn reads_back_its_own_archive_keeping_gzip_layers() -> Result<(), ArchiveError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("cache"))?;
    let img = make_image(&store, ManifestFormat::Docker, "own", 2);
    let file = tmp.path().join("img.tar");
    write_ours(&store, &img, &file, &["own:1"])?;
    let other = Store::open(&tmp.path().join("cache2"))?;
    let local = read_archive(&file, &other, None)?;
    assert_eq!(local.format, ManifestFormat::Docker);
    assert_eq!(
        (local.config.clone(), local.config_digest),
        (img.config.clone(), img.config_digest)
    );
    assert_eq!(local.repo_tags, ["own:1"]);
    let got: Vec<(Digest, Digest, &str)> = local
        .layers
        .iter()
        .map(|l| {
            (
                l.descriptor.digest,
                l.diff_id,
                l.descriptor.media_type.as_str(),
            )
        })
        .collect();
    let want: Vec<(Digest, Digest, &str)> = img
        .layers
        .iter()
        .map(|(d, diff, _)| (*d, *diff, media::DOCKER_LAYER_GZIP))
        .collect();
    assert_eq!(got, want, "gzip layers are imported byte for byte");
    for l in &local.layers {
        assert_eq!(
            other.read_blob(&l.descriptor.digest)?.len() as u64,
            l.descriptor.size
        );
    }
    assert!(other.has_blob(&img.config_digest));
    Ok(())
}

#[test]
fn reads_an_archive_written_by_skopeo_recompressing_plain_layers()
-> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let store = Store::open(&tmp.path().join("cache"))?;
    let img = make_image(&store, ManifestFormat::Oci, "sk", 2);
    let layout = tmp.path().join("layout");
    write_image(
        &layout,
        Some("src"),
        &img.manifest,
        media::OCI_MANIFEST,
        &img.blob_files(&store),
    )?;
    let file = tmp.path().join("skopeo.tar");
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}:src", path_str(&layout)),
            &format!("docker-archive:{}:team/airflow:2.0", path_str(&file)),
        ],
    );
    let other = Store::open(&tmp.path().join("cache2"))?;
    let local = read_archive(&file, &other, Some("docker.io/team/airflow:2.0"))?;
    assert_eq!(local.config_digest, img.config_digest);
    let diffs: Vec<Digest> = local.layers.iter().map(|l| l.diff_id).collect();
    assert_eq!(diffs, img.diff_ids());
    for (l, (_, _, tar)) in local.layers.iter().zip(&img.layers) {
        // skopeo stores plain tars; they are compressed exactly like gzip level 6 with no header fields.
        assert_eq!(l.descriptor.digest, Digest::of(&gzip(tar)));
        assert!(other.has_blob(&l.descriptor.digest));
    }
    let err = read_archive(&file, &other, Some("team/airflow:3.0")).expect_err("absent tag");
    assert_eq!(
        err.to_string(),
        format!(
            "{} has no image tagged \"team/airflow:3.0\"; it has: docker.io/team/airflow:2.0",
            file.display()
        )
    );
    Ok(())
}

#[test]
fn reads_docker_25_oci_style_archives() -> Result<(), ArchiveError> {
    // docker save >= 25: an OCI layout with plain tar layers, plus manifest.json pointing into blobs/.
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("cache"))?;
    let layer = tar_of(&[("usr/local/airflow/a.txt", b"hello")]);
    let diff = Digest::of(&layer);
    let config = config_for(&[diff]);
    let cfg = Digest::of(&config);
    let manifest = format!(
        r#"[{{"Config":"blobs/sha256/{}","RepoTags":["airflow:3"],"Layers":["blobs/sha256/{}"]}}]"#,
        cfg.hex(),
        diff.hex()
    );
    let (cfg_path, layer_path) = (
        format!("blobs/sha256/{}", cfg.hex()),
        format!("blobs/sha256/{}", diff.hex()),
    );
    let bytes = tar_with_links(&[
        ("blobs/sha256/", Ok(b"")),
        (&cfg_path, Ok(&config)),
        (&layer_path, Ok(&layer)),
        ("index.json", Ok(br#"{"schemaVersion":2,"manifests":[]}"#)),
        ("manifest.json", Ok(manifest.as_bytes())),
        ("oci-layout", Ok(br#"{"imageLayoutVersion":"1.0.0"}"#)),
    ]);
    let file = tmp.path().join("d25.tar");
    std::fs::write(&file, bytes).expect("write archive");
    let local = read_archive(&file, &store, Some("airflow:3"))?;
    assert_eq!(local.format, ManifestFormat::Oci);
    assert_eq!(local.config, config);
    assert_eq!(local.layers.len(), 1);
    assert_eq!(local.layers[0].diff_id, diff);
    assert_eq!(local.layers[0].descriptor.digest, Digest::of(&gzip(&layer)));
    assert_eq!(local.layers[0].descriptor.media_type, media::OCI_LAYER_GZIP);
    Ok(())
}

#[test]
fn reads_gzipped_classic_archives_with_symlinked_layers() -> Result<(), ArchiveError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("cache"))?;
    let base = tar_of(&[("etc/os-release", b"debian")]);
    let top = tar_of(&[("app/x", b"x")]);
    let (c1, c2) = (
        config_for(&[Digest::of(&base)]),
        config_for(&[Digest::of(&base), Digest::of(&top)]),
    );
    let (h1, h2) = (Digest::of(&c1).hex(), Digest::of(&c2).hex());
    let manifest = format!(
        r#"[{{"Config":"{h1}.json","RepoTags":["base:1"],"Layers":["aaa/layer.tar"]}},{{"Config":"{h2}.json","RepoTags":["app:1","app:latest"],"Layers":["bbb/layer.tar","ccc/layer.tar"]}}]"#
    );
    let tar = tar_with_links(&[
        ("aaa/layer.tar", Ok(&base)),
        ("bbb/layer.tar", Err("../aaa/layer.tar")),
        ("ccc/layer.tar", Ok(&top)),
        (&format!("{h1}.json"), Ok(&c1)),
        (&format!("{h2}.json"), Ok(&c2)),
        ("manifest.json", Ok(manifest.as_bytes())),
    ]);
    let file = tmp.path().join("classic.tar.gz");
    std::fs::write(&file, gzip(&tar)).expect("write archive");

    let app = read_archive(&file, &store, Some("app:latest"))?;
    assert_eq!(app.format, ManifestFormat::Docker);
    let diffs: Vec<Digest> = app.layers.iter().map(|l| l.diff_id).collect();
    assert_eq!(diffs, [Digest::of(&base), Digest::of(&top)]);
    assert_eq!(app.layers[0].descriptor.digest, Digest::of(&gzip(&base)));
    assert_eq!(
        read_archive(&file, &store, Some("docker.io/library/base:1"))?.config,
        c1
    );

    let err = read_archive(&file, &store, None).expect_err("two images");
    assert_eq!(
        err.to_string(),
        format!(
            "{0} holds several images (app:1, app:latest, base:1); name one as docker-archive:{0}:REF",
            file.display()
        )
    );
    Ok(())
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_named() -> Result<(), ArchiveError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("cache"))?;
    let layer = tar_of(&[("a", b"a")]);
    let wrong = Digest::of(b"not the layer");
    let config = config_for(&[wrong]);
    let manifest =
        br#"[{"Config":"c.json","RepoTags":null,"Layers":["l/layer.tar","z/layer.tar"]}]"#;
    let file = tmp.path().join("bad.tar");
    std::fs::write(
        &file,
        tar_with_links(&[
            ("c.json", Ok(&config)),
            ("l/layer.tar", Ok(&layer)),
            ("manifest.json", Ok(manifest)),
        ]),
    )
    .expect("write");
    let err = read_archive(&file, &store, None).expect_err("layer count");
    assert!(crate::support::hinted(&err).ends_with("manifest.json lists 2 layers but the config has 1 diff_ids\n  hint: create it with `docker save IMAGE -o FILE`"), "{err}");

    let manifest = br#"[{"Config":"c.json","RepoTags":null,"Layers":["l/layer.tar"]}]"#;
    std::fs::write(
        &file,
        tar_with_links(&[
            ("c.json", Ok(&config)),
            ("l/layer.tar", Ok(&layer)),
            ("manifest.json", Ok(manifest)),
        ]),
    )
    .expect("write");
    let err = read_archive(&file, &store, None).expect_err("diff_id");
    assert_eq!(
        err.to_string(),
        format!(
            "layer l/layer.tar in {} has diff_id {}, but the image config says {wrong}",
            file.display(),
            Digest::of(&layer)
        )
    );
    assert_eq!(
        store.info()?.tmp_leftovers,
        0,
        "the rejected layer left no temp file"
    );

    let zstd: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd, 0, 0];
    std::fs::write(
        &file,
        tar_with_links(&[
            ("c.json", Ok(&config)),
            ("l/layer.tar", Ok(zstd)),
            ("manifest.json", Ok(manifest)),
        ]),
    )
    .expect("write");
    let err = read_archive(&file, &store, None).expect_err("zstd");
    assert!(
        err.to_string().starts_with(&format!(
            "layer l/layer.tar in {} is zstd-compressed",
            file.display()
        )),
        "{err}"
    );
    Ok(())
}

/// A tar holding one file of `size` zero bytes, as a stream (never in memory), and its length.
fn zeros_tar(size: u64) -> (impl Read, u64) {
    let mut h = tar::Header::new_ustar();
    h.set_path("zeros").expect("path");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let header = h.as_bytes().to_vec();
    let padding = (512 - size % 512) % 512;
    let len = 512 + size + padding + 1024;
    let stream = std::io::Cursor::new(header).chain(std::io::repeat(0).take(size + padding + 1024));
    (stream, len)
}

/// The bytes of every file under `dir`.
fn disk_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.filter_map(Result::ok)
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => disk_bytes(&e.path()),
                _ => e.metadata().map_or(0, |m| m.len()),
            })
            .sum()
    })
}

#[test]
fn a_gzipped_archive_that_expands_to_a_gibibyte_is_streamed_not_unpacked()
-> Result<(), ArchiveError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let store = Store::open(&cache)?;
    // `docker save | gzip` of an image whose one plain layer is 1 GiB of zeros: about 1 MB.
    let size = 1 << 30;
    let (mut layer, layer_len) = zeros_tar(size);
    let diff_id = {
        let mut w = liftoff_layers::HashingWriter::new(std::io::sink());
        std::io::copy(&mut layer, &mut w).expect("hash the layer");
        w.finish().1
    };
    let config = config_for(&[diff_id]);
    let manifest = br#"[{"Config":"c.json","RepoTags":["bomb:1"],"Layers":["l/layer.tar"]}]"#;
    let file = tmp.path().join("bomb.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&file).expect("create"),
            flate2::Compression::best(),
        );
        let mut b = tar::Builder::new(gz);
        for (name, data) in [("c.json", &config[..]), ("manifest.json", &manifest[..])] {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, data).expect("append");
        }
        let mut h = tar::Header::new_ustar();
        h.set_size(layer_len);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "l/layer.tar", zeros_tar(size).0)
            .expect("append layer");
        b.into_inner().expect("tar").finish().expect("gzip");
    }
    let archive_len = std::fs::metadata(&file).expect("stat").len();
    assert!(archive_len < 4 << 20, "{archive_len} bytes");

    // Watch the cache's disk use while the archive is read.
    let done = std::sync::atomic::AtomicBool::new(false);
    let (local, most) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut most = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                most = most.max(disk_bytes(&cache));
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            most
        });
        let local = read_archive(&file, &store, None);
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (local, watcher.join().expect("watcher"))
    });
    let local = local?;
    assert_eq!(local.layers[0].diff_id, diff_id);
    assert!(
        most < 16 << 20,
        "the cache grew to {most} bytes while a {archive_len}-byte archive was read"
    );
    assert!(local.layers[0].descriptor.size < 16 << 20);
    Ok(())
}
