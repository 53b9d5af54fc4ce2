//! Hostile and damaged base images from local sources: a layer whose bytes do not match its
//! digest, a wrong size or diff_id in the manifest or config, a base tampered with after it was
//! indexed, kept files made to fill memory, and outputs that must not share bytes with the
//! cache. Every case runs the liftoff binary on a real OCI layout.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::support::cli::{Liftoff, Run};
use crate::support::synthetic::{self, SyntheticBase};
use liftoff_layers::{Digest, Entry, LayerOptions, Source};
use serde_json::{Value, json};

/// A project whose base is the OCI layout `base/` beside it; returns the project folder.
fn project(root: &Path) -> PathBuf {
    let dir = root.join("project");
    std::fs::create_dir_all(dir.join(".astro")).expect("mkdir");
    std::fs::create_dir_all(dir.join("dags")).expect("mkdir");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM quay.io/astronomer/astro-runtime:12.6.0\n",
    )
    .expect("Dockerfile");
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:../base\"\n",
    )
    .expect("config");
    std::fs::write(dir.join("dags/dag.py"), "# a dag\n").expect("dag");
    std::fs::write(dir.join("packages.txt"), "").expect("packages.txt");
    std::fs::write(dir.join("requirements.txt"), "").expect("requirements.txt");
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn build(lo: &Liftoff, project: &Path, out: &Path) -> Run {
    let target = format!("oci:{}:latest", s(out));
    lo.run(&["build", s(project), "--output", &target, "--json"])
}

/// Writes `base` as the layout `root/base` (replacing any), tagged as the project expects.
fn write_base(root: &Path, base: &SyntheticBase) -> PathBuf {
    let dir = root.join("base");
    let _ = std::fs::remove_dir_all(&dir);
    synthetic::write_oci(base, &dir, "12.6.0");
    dir
}

fn blob(layout: &Path, d: &Digest) -> PathBuf {
    layout.join("blobs/sha256").join(d.hex())
}

fn gzip_layer(entries: Vec<Entry>) -> Vec<u8> {
    let mut out = Vec::new();
    liftoff_layers::write_layer(
        entries,
        &LayerOptions {
            mtime: 0,
            gzip_level: 6,
        },
        &mut out,
    )
    .expect("layer");
    out
}

fn file(path: &str, text: &str) -> Entry {
    Entry::file(
        path,
        Source::Bytes(text.as_bytes().to_vec().into()),
        0o644,
        0,
        0,
    )
}

/// The owners (uid) of the project's `dags/` in its `COPY --chown=astro:0 . .` layer.
fn app_owners(report: &Value, out: &Path) -> Vec<u64> {
    let last = report["layers"]
        .as_array()
        .and_then(|l| l.last())
        .and_then(|l| l["digest"].as_str())
        .expect("last layer");
    let blob = std::fs::File::open(out.join("blobs/sha256").join(&last["sha256:".len()..]))
        .expect("app layer");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    let mut owners: Vec<u64> = tar
        .entries()
        .expect("tar")
        .map(|e| e.expect("entry"))
        .filter(|e| {
            e.path()
                .expect("path")
                .starts_with("usr/local/airflow/dags")
        })
        .map(|e| e.header().uid().expect("uid"))
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

/// Every file in the cache's `indexes/` folder.
fn index_names(lo: &Liftoff) -> Vec<String> {
    match std::fs::read_dir(lo.cache_dir().join("indexes")) {
        Ok(rd) => rd
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `base` with its manifest and config changed by `edit` (sizes or diff_ids), re-digested.
fn edited(base: &SyntheticBase, edit: impl Fn(&mut Value, &mut Value)) -> SyntheticBase {
    let mut manifest: Value = serde_json::from_slice(&base.manifest).expect("manifest");
    let mut config: Value = serde_json::from_slice(&base.config).expect("config");
    edit(&mut manifest, &mut config);
    let config = serde_json::to_vec(&config).expect("config");
    let config_digest = Digest::of(&config);
    manifest["config"] = json!({
        "mediaType": manifest["config"]["mediaType"],
        "size": config.len(),
        "digest": config_digest.to_string(),
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest");
    SyntheticBase {
        manifest_digest: Digest::of(&manifest),
        manifest,
        config,
        config_digest,
        layers: base
            .layers
            .iter()
            .map(|l| synthetic::Blob {
                bytes: l.bytes.clone(),
                digest: l.digest,
                diff_id: l.diff_id,
            })
            .collect(),
    }
}

#[test]
fn a_tampered_layer_is_refused_and_never_poisons_the_cache() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project(tmp.path());
    let genuine = synthetic::build(&synthetic::Options::default());
    let layout = write_base(tmp.path(), &genuine);
    // The attack: the runtime layer's file now holds a layer whose /etc/passwd makes astro
    // 4242, under the genuine layer's digest (manifest and config untouched).
    let target = genuine.layers[1].digest;
    let evil = gzip_layer(vec![
        Entry::dir("etc", 0o755, 0, 0),
        file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nastro:x:4242:0::/home/astro:/bin/bash\n",
        ),
        file("etc/group", "root:x:0:\nastro:x:4242:\n"),
    ]);
    std::fs::write(blob(&layout, &target), &evil).expect("tamper");

    let lo = Liftoff::new();
    let out = tmp.path().join("out");
    let run = build(&lo, &project, &out).failed();
    assert!(
        run.stderr.contains(&format!(
            "layer {target} of oci:{}:12.6.0 is corrupt or was tampered with: its bytes hash to {}",
            s(&tmp.path().join("project/../base")),
            Digest::of(&evil)
        )),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "no output from a failed build");
    let names = index_names(&lo);
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with(&target.hex()) && !n.starts_with("rootfs-")),
        "nothing is cached for the tampered layer or the base: {names:?}"
    );

    // The genuine base, built next with the same cache, gets its own /etc/passwd.
    write_base(tmp.path(), &genuine);
    let report = build(&lo, &project, &out).ok().json();
    assert_eq!(app_owners(&report, &out), [50000]);
    crate::support::reliability::record(
        "hostile inputs",
        "a base layer whose bytes do not match its digest",
        "a clear error naming what is wrong; nothing of it used or kept",
        "refused naming the digest; nothing of it cached",
    );
}

#[test]
fn a_wrong_size_or_diff_id_is_refused_even_with_the_layers_already_indexed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project(tmp.path());
    let genuine = synthetic::build(&synthetic::Options::default());
    let lo = Liftoff::new();
    let out = tmp.path().join("out");
    // Index the genuine layers first: the cached indexes must not vouch for other claims.
    write_base(tmp.path(), &genuine);
    build(&lo, &project, &out).ok();
    let layer = &genuine.layers[1];
    let name = format!("oci:{}:12.6.0", s(&tmp.path().join("project/../base")));

    let wrong_size = edited(&genuine, |m, _| {
        m["layers"][1]["size"] = json!(layer.bytes.len() + 1);
    });
    write_base(tmp.path(), &wrong_size);
    let run = build(&lo, &project, &tmp.path().join("out-size")).failed();
    assert!(
        run.stderr.contains(&format!(
            "layer {} of {name} is {} bytes, but its manifest says {}",
            layer.digest,
            layer.bytes.len(),
            layer.bytes.len() + 1
        )),
        "{}",
        run.stderr
    );

    let other = Digest::of(b"not the layer's tar");
    let wrong_diff_id = edited(&genuine, |_, c| {
        c["rootfs"]["diff_ids"][1] = json!(other.to_string());
    });
    write_base(tmp.path(), &wrong_diff_id);
    let run = build(&lo, &project, &tmp.path().join("out-diff")).failed();
    assert!(
        run.stderr.contains(&format!(
            "layer {} of {name} unpacks to diff_id {}, but the image config lists {other}",
            layer.digest, layer.diff_id
        )),
        "{}",
        run.stderr
    );

    // And on a cold cache, where the layer is read now.
    let cold = Liftoff::new();
    let run = build(&cold, &project, &tmp.path().join("out-cold")).failed();
    assert!(
        run.stderr
            .contains(&format!("unpacks to diff_id {}", layer.diff_id)),
        "{}",
        run.stderr
    );
    assert!(!tmp.path().join("out-size").exists() && !tmp.path().join("out-diff").exists());
    crate::support::reliability::record(
        "hostile inputs",
        "a base manifest with a wrong layer size or diff_id",
        "a clear error naming what is wrong; nothing of it used or kept",
        "refused, even when the layers were indexed before",
    );
}

#[test]
fn a_base_tampered_after_it_was_indexed_is_refused_when_copied_out() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project(tmp.path());
    let genuine = synthetic::build(&synthetic::Options::default());
    let layout = write_base(tmp.path(), &genuine);
    let lo = Liftoff::new();
    build(&lo, &project, &tmp.path().join("first")).ok();
    // Same length, other bytes: only the digest can tell.
    let target = &genuine.layers[0];
    let mut evil = target.bytes.clone();
    let last = evil.len() - 1;
    evil[last] ^= 0xff;
    std::fs::write(blob(&layout, &target.digest), &evil).expect("tamper");
    let out = tmp.path().join("second");
    let run = build(&lo, &project, &out).failed();
    assert!(
        run.stderr.contains(&format!(
            "was given as blob {} but its bytes hash to {}",
            target.digest,
            Digest::of(&evil)
        )),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "a failed write leaves no layout");
    // A docker-archive output checks the same way.
    let file = tmp.path().join("image.tar");
    let run = lo
        .run(&[
            "build",
            s(&project),
            "--output",
            &format!("docker-archive:{}", s(&file)),
        ])
        .failed();
    assert!(
        run.stderr
            .contains(&format!("but its bytes hash to {}", Digest::of(&evil))),
        "{}",
        run.stderr
    );
    assert!(!file.exists());
    crate::support::reliability::record(
        "hostile inputs",
        "a base layout changed after liftoff indexed it",
        "a clear error naming what is wrong; nothing of it used or kept",
        "refused when its blobs are copied into an output",
    );
}

#[test]
fn output_blobs_are_copies_not_links_to_the_cache_or_the_base() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project(tmp.path());
    let genuine = synthetic::build(&synthetic::Options::default());
    let layout = write_base(tmp.path(), &genuine);
    let lo = Liftoff::new();
    let out = tmp.path().join("out");
    let report = build(&lo, &project, &out).ok().json();
    for layer in report["layers"].as_array().expect("layers") {
        let d: Digest = layer["digest"]
            .as_str()
            .expect("digest")
            .parse()
            .expect("digest");
        let copy = std::fs::metadata(blob(&out, &d)).expect("output blob");
        assert_eq!(copy.nlink(), 1, "{d} is a hard link");
        for source in [blob(&layout, &d), blob(lo.cache_dir(), &d)] {
            if let Ok(m) = std::fs::metadata(&source) {
                assert_ne!((m.dev(), m.ino()), (copy.dev(), copy.ino()), "{d}");
                assert_eq!(m.nlink(), 1, "{}", source.display());
            }
        }
    }
    // Editing the output leaves the cache alone: the next build is the same image.
    let app = report["layers"][2]["digest"].as_str().expect("app layer");
    std::fs::write(blob(&out, &app.parse().expect("digest")), b"edited").expect("edit output");
    let again = build(&lo, &project, &tmp.path().join("again")).ok().json();
    assert_eq!(again["digest"], report["digest"]);

    // A damaged cache copy is refused while it is copied out, and removed, so the next build
    // makes it again.
    let d: Digest = app.parse().expect("digest");
    std::fs::write(blob(lo.cache_dir(), &d), b"damaged").expect("damage the cache");
    let run = build(&lo, &project, &tmp.path().join("third")).failed();
    assert!(
        run.stderr.contains(&format!(
            "hint: the cache's copy of {d} was damaged and is now removed; run the command again"
        )),
        "{}",
        run.stderr
    );
    assert!(!blob(lo.cache_dir(), &d).exists());
    let fourth = build(&lo, &project, &tmp.path().join("fourth")).ok().json();
    assert_eq!(fourth["digest"], report["digest"]);
    crate::support::reliability::record(
        "hostile inputs",
        "outputs that could share inodes with the cache or the base",
        "a clear error naming what is wrong; nothing of it used or kept",
        "every output blob is a copy of its own",
    );
}

#[test]
fn kept_files_made_to_fill_memory_stop_the_build_at_the_limit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project(tmp.path());
    // 16 RECORD files of 64 MiB of zeros: about 1 MB gzipped, 1 GiB to keep.
    let site = "usr/local/lib/python3.12/site-packages";
    let bomb = record_bomb(site, 16, 64 << 20);
    assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());
    let genuine = synthetic::build(&synthetic::Options::default());
    let mut base = edited(&genuine, |_, _| {});
    let diff_id = {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&bomb[..])
            .read_to_end(&mut plain)
            .expect("gunzip");
        Digest::of(&plain)
    };
    base.layers.push(synthetic::Blob {
        digest: Digest::of(&bomb),
        diff_id,
        bytes: bomb,
    });
    let base = edited(&base, |m, c| {
        let l = base.layers.last().expect("bomb");
        m["layers"]
            .as_array_mut()
            .expect("layers")
            .push(json!({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": l.bytes.len(), "digest": l.digest.to_string()}));
        c["rootfs"]["diff_ids"]
            .as_array_mut()
            .expect("diff_ids")
            .push(json!(l.diff_id.to_string()));
    });
    write_base(tmp.path(), &base);
    let lo = Liftoff::new();
    let started = std::time::Instant::now();
    let run = build(&lo, &project, &tmp.path().join("out")).failed();
    // The four RECORD files that fit are read; whichever crosses 256 MiB stops the build (the
    // base's other layers, indexed at the same time, keep a few hundred bytes too).
    let crossing = "-1.0.dist-info/RECORD (67108864 bytes) would take the base's kept files (accounts, dpkg and apt state, Python metadata, script heads) past liftoff's limit of 256 MiB";
    assert!(
        run.stderr
            .contains(&format!("base layer {}: /{site}/d", base.layers[2].digest))
            && run.stderr.contains(crossing),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "hint: if the base is genuine, raise the limit: `kept-base-files-mib = N` under `[limits]` in .astro/liftoff.toml or ~/.config/liftoff/config.toml"
        ),
        "{}",
        run.stderr
    );
    let cached: u64 = std::fs::read_dir(lo.cache_dir().join("indexes"))
        .map(|rd| {
            rd.map(|e| e.expect("entry").metadata().expect("stat").len())
                .sum()
        })
        .unwrap_or(0);
    assert!(
        cached < 1 << 20,
        "the cache holds {cached} bytes of indexes"
    );
    eprintln!("the bomb was refused in {:?}", started.elapsed());

    // The limit is the config's: lower, the first RECORD file is already too much.
    std::fs::write(
        project.join(".astro/liftoff.toml"),
        "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:../base\"\n\n[limits]\nkept-base-files-mib = 32\n",
    )
    .expect("config");
    let run = build(&lo, &project, &tmp.path().join("out")).failed();
    assert!(
        run.stderr.contains(&format!(
            "/{site}/d0-1.0.dist-info/RECORD (67108864 bytes) would take the base's kept files (accounts, dpkg and apt state, Python metadata, script heads) past liftoff's limit of 32 MiB"
        )),
        "{}",
        run.stderr
    );
    crate::support::reliability::record(
        "hostile inputs",
        "a base whose kept files (RECORDs) are made to fill memory",
        "a clear error naming what is wrong; nothing of it used or kept",
        "the build stops at the configured limit with a clear error",
    );
}

/// A gzip layer holding `count` dist-info RECORD files of `size` zero bytes each.
fn record_bomb(site: &str, count: usize, size: u64) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    for i in 0..count {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        let path = format!("{site}/d{i}-1.0.dist-info/RECORD");
        tar.append_data(&mut h, path, std::io::repeat(0).take(size))
            .expect("append");
    }
    tar.into_inner().expect("tar").finish().expect("gzip")
}
