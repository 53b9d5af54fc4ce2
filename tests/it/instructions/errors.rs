//! The inputs liftoff refuses, each with its exit status and exact message (for
//! tests/it/instructions.rs).

use super::{FROM, build_error, offline_base, project, s};
use crate::support::cli::Liftoff;
use crate::support::synthetic;

/// Each Dockerfile the parser or planner refuses, with the exact message and hint.
#[test]
fn instructions_liftoff_cannot_carry_out_or_other_stages_are_refused() {
    let cases: [(&str, String, &str); 5] = [
        (
            // Checked when planned, before anything runs.
            "RUN --network",
            format!("{FROM}ENV A=1\nRUN --network=bogus pip install pandas\n"),
            "error: <project>/Dockerfile:3: RUN --network=bogus: expected default, host or none\n",
        ),
        (
            "second FROM",
            format!("{FROM}FROM python:3.12\n"),
            "error: <project>/Dockerfile:2: a second FROM starts a multi-stage build, which \
             liftoff does not support\n\
             hint: build multi-stage images with a tool that runs containers and deploy the result with `astro deploy --image-name IMAGE`\n",
        ),
        (
            "COPY --from",
            format!("{FROM}COPY --from=builder /src /dest\n"),
            "error: <project>/Dockerfile:2: COPY --from copies from another stage or image, \
             which needs a multi-stage build; liftoff does not support it\n\
             hint: copy the files into the project and COPY them from there\n",
        ),
        (
            "heredoc",
            format!("{FROM}COPY <<EOF /etc/motd\nhello\nEOF\n"),
            "error: <project>/Dockerfile:2: heredocs (`<<`) in COPY are not supported\n\
             hint: write the content to a file in the project and COPY it\n",
        ),
        (
            "remote ADD",
            format!("{FROM}ADD https://example.com/x.tar.gz /opt/\n"),
            "error: <project>/Dockerfile:2: ADD of a remote source \
             `https://example.com/x.tar.gz` is not supported: liftoff downloads nothing during \
             a build\n\
             hint: download it into the project and COPY it\n",
        ),
    ];
    for (what, dockerfile, expected) in cases {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = project(tmp.path(), &dockerfile, &offline_base());
        assert_eq!(build_error(&dir), expected, "{what}");
    }
}

#[test]
fn missing_requirements_txt_names_the_trigger_and_says_to_create_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), FROM, &offline_base());
    std::fs::remove_file(dir.join("requirements.txt")).expect("rm");
    assert_eq!(
        build_error(&dir),
        "error: base image ONBUILD trigger 4 (`COPY requirements.txt .`): COPY source \
         `requirements.txt` not found in the build context\n\
         hint: create requirements.txt in the project folder (an empty file is fine; astro dev \
         init makes one)\n"
    );
}

#[test]
fn non_empty_packages_or_requirements_without_a_python_are_refused() {
    let cases = [
        (
            "packages.txt",
            "# build tools\r\ngcc\r\n",
            // The synthetic base configures no apt source: installing packages needs one.
            "error: packages.txt lists Debian packages, so liftoff reads the base image's apt \
             sources\n  caused by: the base configures no apt source for amd64 \
             (/etc/apt/sources.list, /etc/apt/sources.list.d/)\n\
             hint: packages.txt needs the base's Debian sources\n",
        ),
        (
            "requirements.txt",
            "# data\n\npandas==2.2.3\n",
            // The synthetic base has no Python: installing requirements needs one.
            "error: requirements.txt lists Python packages, so liftoff reads the base image's \
             Python\n  caused by: the base image has no Python site-packages or dist-packages \
             folder with installed distributions\n",
        ),
    ];
    for (file, text, expected) in cases {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = project(tmp.path(), FROM, &offline_base());
        std::fs::write(dir.join(file), text).expect("write");
        assert_eq!(build_error(&dir), expected, "{file}");
    }
    // Comments, blank lines and CRLF alone are empty: the build goes through.
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), FROM, &offline_base());
    std::fs::write(dir.join("packages.txt"), "# none\r\n\r\n").expect("write");
    std::fs::write(dir.join("requirements.txt"), "# none\n   \n").expect("write");
    let out = format!("oci:{}:x", s(&tmp.path().join("oci")));
    Liftoff::new()
        .run(&["build", s(&dir), "--quiet", "--output", &out])
        .ok();
}

#[test]
fn an_apache_airflow_pin_gets_the_runtime_message_with_its_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), FROM, &offline_base());
    std::fs::write(
        dir.join("requirements.txt"),
        "pandas==2.2.3\napache-airflow==2.9.0\n",
    )
    .expect("write");
    assert_eq!(
        build_error(&dir),
        "error: requirements.txt:2: `apache-airflow==2.9.0`: Do not upgrade by specifying \
         'apache-airflow' in your requirements.txt, change the base image instead!\n\
         hint: remove the apache-airflow line; the Runtime version in FROM decides the Airflow \
         version\n"
    );
}

#[test]
fn a_copy_source_that_is_a_symlink_loop_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(
        tmp.path(),
        &format!("{FROM}COPY loop-a /opt/\n"),
        &offline_base(),
    );
    std::os::unix::fs::symlink("loop-b", dir.join("loop-a")).expect("symlink");
    std::os::unix::fs::symlink("loop-a", dir.join("loop-b")).expect("symlink");
    assert_eq!(
        build_error(&dir),
        "error: <project>/Dockerfile:2: COPY source `loop-a`: too many levels of symbolic \
         links at `loop-a` (a symlink loop?)\n\
         hint: make `loop-a` point at a file or directory, not (through other links) back at \
         itself\n"
    );
}

#[test]
fn an_unknown_onbuild_trigger_on_the_base_is_an_error_never_skipped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut triggers: Vec<String> = synthetic::RUNTIME12_TRIGGERS
        .iter()
        .map(|t| t.to_string())
        .collect();
    triggers.insert(6, "RUN /usr/local/bin/compile-assets".to_string());
    let base = synthetic::build(&synthetic::Options {
        triggers,
        ..Default::default()
    });
    let layout = tmp.path().join("base");
    synthetic::write_oci(&base, &layout, "12.6.0");
    let dir = project(tmp.path(), FROM, &layout);
    let stderr = build_error(&dir);
    assert_eq!(
        stderr,
        "error: base image: the base image has ONBUILD triggers liftoff does not know \
         (trigger 7: \"RUN /usr/local/bin/compile-assets\"); liftoff carries out only the \
         triggers of the Astro Runtime images (Astronomer Certified 2.2+ (onbuild), Astro \
         Runtime 4-11, Astro Runtime 12+ and 3.x) and never skips one\n\
         hint: use an Astro Runtime base image, or a `-base` image without triggers and write \
         the steps in your Dockerfile\n",
    );
}

#[test]
fn a_base_with_only_linux_arm64_lists_the_platforms_it_has() {
    let tmp = tempfile::tempdir().expect("tmp");
    let arm = synthetic::build(&synthetic::Options {
        architecture: "arm64",
        ..Default::default()
    });
    let layout = tmp.path().join("base");
    let list = synthetic::write_oci_multi(&[&arm], &layout, "12.6.0");
    let dir = project(tmp.path(), FROM, &layout);
    let stderr = build_error(&dir).replace(s(&layout), "<base>");
    assert_eq!(
        stderr,
        format!(
            "error: manifest {list} in the OCI layout <base>: the image has no linux/amd64 \
             manifest; it has: linux/arm64\n\
             hint: liftoff builds for Astro, which runs linux/amd64: use a base image that \
             publishes linux/amd64\n"
        )
    );
}

/// A tar entry: path, type, link target.
type TarEntry<'a> = (&'a str, tar::EntryType, &'a str);

/// Writes `name` into `dir`: a tar holding `entries`.
fn tar_file(dir: &std::path::Path, name: &str, entries: &[TarEntry<'_>]) {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, link) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).expect("path");
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            b"x"
        } else {
            b""
        };
        h.set_size(data.len() as u64);
        if !link.is_empty() {
            h.set_link_name(link).expect("link");
        }
        h.set_cksum();
        b.append(&h, data).expect("append");
    }
    std::fs::write(dir.join(name), b.into_inner().expect("tar")).expect("write");
}

/// ADD's refusals say ADD, say what is wrong, and name the Dockerfile line, also when the
/// archive's entries contradict each other (checked when planning, not when writing).
#[test]
fn add_refusals_name_add_the_line_and_the_real_problem() {
    use tar::EntryType::{Link, Regular, Symlink};
    let cases: [(&str, &str, Vec<TarEntry<'_>>, &str); 4] = [
        (
            "ADD abs /opt/\n",
            "",
            vec![],
            "error: <project>/Dockerfile:2: ADD source `abs`: symlink `abs` points to \
             `/etc/passwd`, outside the build context\n\
             hint: copy the target into the project instead of linking to it\n",
        ),
        (
            "ADD hard.tar /opt/y/\n",
            "hard.tar",
            vec![("h", Link, "/etc/passwd")],
            "error: <project>/Dockerfile:2: hard.tar: entry `h` is a hard link to the \
             absolute path `/etc/passwd`; ADD only unpacks hard links to other entries of the \
             archive\n",
        ),
        (
            "ADD nested.tar /opt/x/\n",
            "nested.tar",
            vec![("a", Regular, ""), ("a/b", Regular, "")],
            "error: <project>/Dockerfile:2: layer entry \"opt/x/a/b\" is inside \"opt/x/a\", \
             which is not a directory entry\n",
        ),
        (
            "ADD linked.tar /opt/z/\n",
            "linked.tar",
            vec![("s", Symlink, "x"), ("h", Link, "s")],
            "error: <project>/Dockerfile:2: hardlink \"opt/z/h\" points to \"opt/z/s\", which \
             is not a regular file entry of this layer\n\
             hint: hardlink targets must be regular files written in the same layer\n",
        ),
    ];
    for (line, archive, entries, expected) in cases {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = project(tmp.path(), &format!("{FROM}{line}"), &offline_base());
        std::os::unix::fs::symlink("/etc/passwd", dir.join("abs")).expect("symlink");
        if !archive.is_empty() {
            tar_file(&dir, archive, &entries);
        }
        assert_eq!(build_error(&dir), expected, "{line}");
    }
}
