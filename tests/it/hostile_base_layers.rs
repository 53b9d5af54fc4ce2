//! Hostile members in base layers: `..` paths, a whiteout of `..`, a hard link up (refused,
//! naming the layer's digest and the member), and absolute names, symbolic links pointing out
//! with files written through them, a hard link to an absolute path, devices and FIFOs (kept
//! as data inside the image's root). Each base is an OCI layout written here; what reads base
//! layers runs on it: a plain build (the base's index) and the materialisation a RUN needs
//! (`exec::tree::Extractor`, through the library; the executed RUN is the live test below).

use std::collections::BTreeSet;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use liftoff::exec::tree::Extractor;
use liftoff_layers::Digest;
use serde_json::{Value, json};
use tar::EntryType;

use crate::support::cli::Liftoff;
use crate::support::reliability::record;
use crate::support::synthetic::{self, Blob, SyntheticBase};

/// One tar member, its name and link name written into the header as they are (the `tar`
/// crate's setters refuse `..`).
struct Member {
    name: &'static str,
    kind: EntryType,
    link: &'static str,
    data: &'static [u8],
    device: (u32, u32),
}

fn m(name: &'static str, kind: EntryType) -> Member {
    Member {
        name,
        kind,
        link: "",
        data: b"",
        device: (0, 0),
    }
}

fn gz_layer(members: &[Member]) -> Blob {
    let mut b = tar::Builder::new(Vec::new());
    for x in members {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..x.name.len()].copy_from_slice(x.name.as_bytes());
        h.as_old_mut().linkname[..x.link.len()].copy_from_slice(x.link.as_bytes());
        h.set_entry_type(x.kind);
        h.set_mode(if x.kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(x.data.len() as u64);
        if matches!(x.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(x.device.0).expect("major");
            h.set_device_minor(x.device.1).expect("minor");
        }
        h.set_cksum();
        b.append(&h, x.data).expect("append");
    }
    let plain = b.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &plain).expect("gzip");
    let bytes = gz.finish().expect("gzip");
    Blob {
        digest: Digest::of(&bytes),
        diff_id: Digest::of(&plain),
        bytes,
    }
}

/// The synthetic base (with a busybox for a RUN, if asked) with `extra` layers on top
/// (manifest, config and history extended).
fn with_layers(extra: Vec<Blob>, busybox: bool) -> SyntheticBase {
    let base = synthetic::build(&synthetic::Options {
        busybox,
        ..Default::default()
    });
    let mut manifest: Value = serde_json::from_slice(&base.manifest).expect("manifest");
    let mut config: Value = serde_json::from_slice(&base.config).expect("config");
    let mut layers = base.layers;
    for l in extra {
        manifest["layers"]
            .as_array_mut()
            .expect("layers")
            .push(json!({
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": l.bytes.len(),
                "digest": l.digest.to_string(),
            }));
        config["rootfs"]["diff_ids"]
            .as_array_mut()
            .expect("diff_ids")
            .push(json!(l.diff_id.to_string()));
        config["history"].as_array_mut().expect("history").push(
            json!({"created": "1970-01-01T00:00:00Z", "created_by": "COPY hostile / # synthetic"}),
        );
        layers.push(l);
    }
    let config = serde_json::to_vec(&config).expect("config");
    let config_digest = Digest::of(&config);
    manifest["config"]["size"] = json!(config.len());
    manifest["config"]["digest"] = json!(config_digest.to_string());
    let manifest = serde_json::to_vec(&manifest).expect("manifest");
    SyntheticBase {
        manifest_digest: Digest::of(&manifest),
        manifest,
        config,
        config_digest,
        layers,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Every path under `dir` (relative), folders included.
fn listing(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(dir).expect("under").display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    out
}

/// Materialises `base`'s layers with the library's extractor into `sandbox/root`.
fn materialise(base: &SyntheticBase, sandbox: &Path) -> Result<PathBuf, String> {
    let root = sandbox.join("root");
    std::fs::create_dir_all(&root).expect("root");
    let mut x = Extractor::new(&root, liftoff::exec::privileged());
    for l in &base.layers {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&l.bytes[..])
            .read_to_end(&mut plain)
            .expect("gunzip");
        x.apply(&plain[..], &l.digest.to_string())
            .map_err(|e| e.to_string())?;
    }
    x.finish().map_err(|e| e.to_string())?;
    Ok(root)
}

#[test]
fn hostile_base_members_leading_out_are_refused_naming_layer_and_member() {
    let cases: Vec<(&str, Vec<Member>, String)> = vec![
        (
            "`../x`",
            vec![Member {
                data: b"out\n",
                ..m("../liftoff-hostile-x", EntryType::Regular)
            }],
            "member ../liftoff-hostile-x: a path with `..` leads out of the image's root".into(),
        ),
        (
            "`usr/../../etc/x`",
            vec![m("usr/../../etc/liftoff-hostile-x", EntryType::Regular)],
            "member usr/../../etc/liftoff-hostile-x: a path with `..` leads out of the image's root"
                .into(),
        ),
        (
            "a whiteout of `..`",
            vec![m("tmp/.wh...", EntryType::Regular)],
            "member tmp/.wh...: a whiteout of `.` or `..` would remove a folder above the entry"
                .into(),
        ),
        (
            "a hard link to `../../etc/shadow`",
            vec![Member {
                link: "../../etc/shadow",
                ..m("etc/liftoff-hostile-link", EntryType::Link)
            }],
            "member etc/liftoff-hostile-link: a hard link to ../../etc/shadow, a path with `..`, leads out of the image's root".into(),
        ),
    ];
    let mut refused = Vec::new();
    for (what, members, message) in cases {
        let tmp = tempfile::tempdir().expect("tmp");
        let layer = gz_layer(&members);
        let digest = layer.digest;
        let base = with_layers(vec![layer], false);
        let layout = tmp.path().join("base");
        synthetic::write_oci(&base, &layout, "12.6.0");
        let project = crate::support::mirrored_project(
            tmp.path(),
            "FROM quay.io/astronomer/astro-runtime:12.6.0\n",
            &layout,
        );
        let before = listing(tmp.path());
        let lo = Liftoff::new();
        let out = tmp.path().join("out");
        let run = lo
            .run(&[
                "build",
                s(&project),
                "--output",
                &format!("oci:{}:x", s(&out)),
            ])
            .failed();
        let want = format!("base layer {digest}: {message}");
        assert!(run.stderr.contains(&want), "{what}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("hint: the base image is damaged or hostile"),
            "{what}: {}",
            run.stderr
        );
        assert!(!out.exists(), "{what}: no output");
        assert_eq!(listing(tmp.path()), before, "{what}: nothing written");
        let cached = listing(&lo.cache_dir().join("indexes"));
        assert!(
            cached.iter().all(|n| !n.contains(&digest.hex())),
            "{what}: an index of the refused layer was cached: {cached:?}"
        );

        // The extractor a RUN materialises with refuses it too, and writes nothing outside.
        let sandbox = tmp.path().join("sandbox");
        let e = materialise(&base, &sandbox).expect_err(what);
        assert!(e.starts_with(&format!("layer {digest}: /")), "{what}: {e}");
        assert_eq!(
            listing(&sandbox)
                .into_iter()
                .filter(|p| !p.starts_with("root"))
                .collect::<Vec<_>>(),
            Vec::<String>::new(),
            "{what}"
        );
        assert!(!tmp.path().join("liftoff-hostile-x").exists());
        assert!(!Path::new("/etc/liftoff-hostile-x").exists());
        refused.push(what);
    }
    record(
        "hostile inputs",
        "base layers with `../x`, `usr/../../etc/x`, a whiteout of `..` or a hard link to `../../etc/shadow`",
        "refused, naming the layer's digest and the member; nothing written outside the image's root; nothing cached",
        &format!(
            "{} cases refused by the build (the base's index) and by the RUN materialisation, each naming the layer and the member",
            refused.len()
        ),
    );
}

/// Absolute names, links pointing out with files written through them in the next layer, a
/// hard link to an absolute path, devices and a FIFO.
fn kept_layers() -> Vec<Blob> {
    let links = gz_layer(&[
        Member {
            data: b"absolute\n",
            ..m("/etc/liftoff-abs", EntryType::Regular)
        },
        Member {
            link: "/",
            ..m("escape", EntryType::Symlink)
        },
        Member {
            link: "../../..",
            ..m("up", EntryType::Symlink)
        },
        Member {
            link: "/etc/passwd",
            ..m("etc/liftoff-passwd-link", EntryType::Link)
        },
        Member {
            device: (1, 3),
            ..m("liftoff-null", EntryType::Char)
        },
        Member {
            device: (7, 0),
            ..m("liftoff-loop", EntryType::Block)
        },
        m("liftoff-fifo", EntryType::Fifo),
    ]);
    // Files written "through" the links, in the next layer.
    let through = gz_layer(&[
        Member {
            data: b"through the root link\n",
            ..m("escape/etc/liftoff-through-root", EntryType::Regular)
        },
        Member {
            data: b"through the up link\n",
            ..m("up/liftoff-through-up", EntryType::Regular)
        },
    ]);
    vec![links, through]
}

#[test]
fn hostile_base_members_kept_as_data_stay_inside_the_root() {
    let tmp = tempfile::tempdir().expect("tmp");
    let base = with_layers(kept_layers(), false);
    let layout = tmp.path().join("base");
    synthetic::write_oci(&base, &layout, "12.6.0");
    let project = crate::support::mirrored_project(
        tmp.path(),
        "FROM quay.io/astronomer/astro-runtime:12.6.0\nCOPY --chown=astro:0 . .\n",
        &layout,
    );
    let lo = Liftoff::new();
    let out = tmp.path().join("out");
    let report = lo
        .run(&[
            "build",
            s(&project),
            "--json",
            "--output",
            &format!("oci:{}:x", s(&out)),
        ])
        .ok()
        .json();
    // The base's layers go into the image as they are; the project's layer on top.
    let digests: Vec<&str> = report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter_map(|l| l["digest"].as_str())
        .collect();
    for l in &base.layers {
        assert!(digests.contains(&l.digest.to_string().as_str()), "{report}");
    }

    // Materialised for a RUN: everything lands inside the root.
    let sandbox = tmp.path().join("sandbox");
    let root = materialise(&base, &sandbox).expect("materialised");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
    assert_eq!(read("etc/liftoff-abs"), "absolute\n");
    assert_eq!(read("etc/liftoff-through-root"), "through the root link\n");
    assert_eq!(read("liftoff-through-up"), "through the up link\n");
    assert_eq!(
        std::fs::read_link(root.join("escape")).expect("link"),
        Path::new("/")
    );
    let inode = |p: &Path| std::fs::metadata(p).expect("stat").ino();
    assert_eq!(
        inode(&root.join("etc/liftoff-passwd-link")),
        inode(&root.join("etc/passwd")),
        "the hard link names the image's /etc/passwd"
    );
    let specials: Vec<bool> = ["liftoff-null", "liftoff-loop", "liftoff-fifo"]
        .iter()
        .map(|p| root.join(p).symlink_metadata().is_ok())
        .collect();
    let privileged = liftoff::exec::privileged();
    assert!(
        specials.iter().all(|made| *made == privileged),
        "devices and FIFOs are made as root, recorded as skipped otherwise: {specials:?}"
    );
    let outside: Vec<String> = listing(&sandbox)
        .into_iter()
        .filter(|p| !p.starts_with("root"))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
    for host in [
        "/etc/liftoff-abs",
        "/etc/liftoff-through-root",
        "/liftoff-through-up",
    ] {
        assert!(!Path::new(host).exists(), "{host} was written on the host");
    }
    assert!(!tmp.path().join("liftoff-through-up").exists());
    record(
        "hostile inputs",
        "base layers with absolute names, links to `/` and `../../..` with files written through them, a hard link to `/etc/passwd`, devices and FIFOs",
        "kept as data that cannot leave the image's root",
        &format!(
            "the build takes the layers as they are; materialised for a RUN ({}), every file lands inside the root, the links resolve inside it, nothing outside",
            if privileged {
                "as root: devices and FIFOs made"
            } else {
                "without root: devices and FIFOs recorded as skipped"
            }
        ),
    );
}

#[test]
#[ignore = "needs mount namespaces and overlayfs (root, or unprivileged user namespaces) and a static busybox; run by the live job and scripts/reliability"]
fn live_reliability_a_run_on_a_base_with_links_out_stays_inside_the_root() {
    let tmp = tempfile::tempdir().expect("tmp");
    let base = with_layers(kept_layers(), true);
    let layout = tmp.path().join("base");
    synthetic::write_oci(&base, &layout, "12.6.0");
    let project = crate::support::mirrored_project(
        tmp.path(),
        "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\n\
         RUN cat /etc/liftoff-through-root /liftoff-through-up /escape/etc/liftoff-abs > /tmp/seen && echo written > /escape/liftoff-run-wrote && echo up > /up/liftoff-run-up\n",
        &layout,
    );
    let lo = Liftoff::new();
    let out = tmp.path().join("out");
    let report = lo
        .run(&[
            "build",
            s(&project),
            "--json",
            "--output",
            &format!("oci:{}:x", s(&out)),
        ])
        .ok()
        .json();
    let executed = report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["source"] == "executed")
        .expect("an executed layer");
    let d = executed["digest"].as_str().expect("digest");
    let blob = std::fs::read(out.join("blobs/sha256").join(&d["sha256:".len()..])).expect("layer");
    let mut files = std::collections::BTreeMap::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
    for e in tar.entries().expect("tar") {
        let mut e = e.expect("entry");
        let path = e.path().expect("path").display().to_string();
        let mut text = String::new();
        if e.header().entry_type().is_file() {
            e.read_to_string(&mut text).expect("read");
            files.insert(path, text);
        }
    }
    assert_eq!(
        files.get("tmp/seen").map(String::as_str),
        Some("through the root link\nthrough the up link\nabsolute\n"),
        "{files:?}"
    );
    assert_eq!(
        files.get("liftoff-run-wrote").map(String::as_str),
        Some("written\n")
    );
    assert_eq!(
        files.get("liftoff-run-up").map(String::as_str),
        Some("up\n")
    );
    for host in [
        "/liftoff-run-wrote",
        "/liftoff-run-up",
        "/etc/liftoff-through-root",
        "/liftoff-through-up",
    ] {
        assert!(!Path::new(host).exists(), "{host} was written on the host");
    }
    record(
        "hostile inputs",
        "a RUN on a base whose links point to `/` and `../../..`, writing through them",
        "the command sees and writes the image's own files; nothing outside the image's root",
        "the files read and written through the links are the image's; the executed layer holds them at their resolved paths; nothing on the host",
    );
}
