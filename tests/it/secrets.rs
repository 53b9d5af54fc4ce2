//! The secrets row of the reliability matrix: credentials planted everywhere a build can get
//! them (a registry password given with `--creds`, a private index's token in a build
//! argument, a `.netrc` password for a second index, an Astro API token in the environment)
//! are searched for in every output (default, `--json`, `--quiet`, errors), every file of the
//! cache, the project (its locks), the OCI layout written and the image pushed (layers
//! decompressed): found 0 times.

use std::io::Read as _;
use std::path::Path;

use crate::support::cli::{Liftoff, Run};
use crate::support::pyindex::{Dist, PyIndex};
use crate::support::registry::TestRegistry;
use crate::support::reliability::record;

const REGISTRY_PW: &str = "planted-registry-Pa55";
const INDEX_TOKEN: &str = "planted-index-t0ken";
const NETRC_PW: &str = "planted-netrc-Pa55";
const ASTRO_TOKEN: &str = "planted-astro-api-t0ken";
const SECRETS: [&str; 4] = [REGISTRY_PW, INDEX_TOKEN, NETRC_PW, ASTRO_TOKEN];

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Every secret found in `bytes` (and, for gzip data, in what it decompresses to).
fn found(bytes: &[u8]) -> Vec<&'static str> {
    let mut hay = bytes.to_vec();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        if flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut plain)
            .is_ok()
        {
            hay.extend_from_slice(&plain);
        }
    }
    SECRETS
        .into_iter()
        .filter(|s| hay.windows(s.len()).any(|w| w == s.as_bytes()))
        .collect()
}

/// Every file under `dir` holding a secret, with the secrets found; (files looked at, hits).
fn sweep(dir: &Path) -> (usize, Vec<(String, Vec<&'static str>)>) {
    let mut files = 0;
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let path = e.path();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                files += 1;
                let bytes = std::fs::read(&path).unwrap_or_default();
                let f = found(&bytes);
                if !f.is_empty() {
                    hits.push((path.display().to_string(), f));
                }
            }
        }
    }
    (files, hits)
}

fn assert_clean(what: &str, run: &Run) {
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        let f = found(text.as_bytes());
        assert!(f.is_empty(), "{what}: {f:?} in {name}:\n{text}");
    }
}

#[test]
fn reliability_planted_secrets_are_found_nowhere() {
    let tmp = tempfile::tempdir().expect("tmp");
    let private = PyIndex::serve_with_auth(
        &[
            Dist::wheel("alpha", "1.0").requires("gamma>=1.0"),
            Dist::wheel("beta", "1.0"),
        ],
        "ci",
        INDEX_TOKEN,
    );
    let netrc_index = PyIndex::serve_with_auth(&[Dist::wheel("gamma", "1.0")], "n", NETRC_PW);
    let reqs = format!(
        "--index-url http://ci:${{INDEX_TOKEN}}@127.0.0.1:{}/simple\n--extra-index-url http://localhost:{}/simple\nalpha==1.0\n",
        private.port, netrc_index.port
    );
    let dir = crate::python_build::project(tmp.path(), &reqs);
    let netrc = tmp.path().join("netrc");
    std::fs::write(
        &netrc,
        format!("machine localhost login n password {NETRC_PW}\n"),
    )
    .expect("netrc");
    let registry = TestRegistry::start_with_auth("pusher", REGISTRY_PW);
    let host = registry.host();
    let lo = Liftoff::new()
        .with_env("NETRC", netrc.to_str().expect("utf-8"))
        .with_env("ASTRO_API_TOKEN", ASTRO_TOKEN);
    let p = dir.to_str().expect("utf-8");
    let token_arg = format!("INDEX_TOKEN={INDEX_TOKEN}");
    let creds = format!("pusher:{REGISTRY_PW}");
    let dest = format!("{host}/secret/app:1");
    let layout = tmp.path().join("oci");
    let out = format!("oci:{}:x", layout.display());
    let mut runs = 0;
    let mut run = |args: &[&str], ok: bool| {
        let r = lo.run(args);
        let r = if ok { r.ok() } else { r.failed() };
        assert_clean(&args.join(" "), &r);
        runs += 1;
        r
    };
    let base = [
        "--build-arg",
        token_arg.as_str(),
        "--insecure-registry",
        host.as_str(),
    ];
    let with = |more: &[&'static str]| -> Vec<String> {
        ["build", p]
            .iter()
            .map(|s| s.to_string())
            .chain(base.iter().map(|s| s.to_string()))
            .chain(more.iter().map(|s| s.to_string()))
            .collect()
    };
    let mut first = with(&[]);
    first.extend(["--output".into(), out.clone()]);
    run(&args(&first), true);
    let mut json = with(&["--json"]);
    json.extend([
        "--push".into(),
        dest.clone(),
        "--creds".into(),
        creds.clone(),
    ]);
    run(&args(&json), true);
    let mut quiet = with(&["--quiet"]);
    quiet.extend([
        "--push".into(),
        dest.clone(),
        "--creds".into(),
        creds.clone(),
    ]);
    run(&args(&quiet), true);
    // A wrong password: the error shows neither it nor the right one.
    let mut wrong = with(&[]);
    wrong.extend([
        "--push".into(),
        format!("{host}/secret/app:2"),
        "--creds".into(),
        format!("pusher:{REGISTRY_PW}-wrong"),
    ]);
    run(&args(&wrong), false);
    run(&["lock", p, "--build-arg", &token_arg], true);
    run(
        &["inspect", &format!("oci:{}:x", layout.display()), "--json"],
        true,
    );

    // The image as the registry holds it, copied out with skopeo.
    let pulled = tmp.path().join("pulled");
    let st = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &format!("docker://{dest}"),
            &format!("oci:{}:x", pulled.display()),
        ])
        .output()
        .expect("skopeo");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    let mut files = 0;
    for (what, d) in [
        ("the cache", lo.cache_dir().to_path_buf()),
        ("the project", dir.clone()),
        ("the OCI layout written", layout.clone()),
        ("the image pushed", pulled.clone()),
    ] {
        let (n, hits) = sweep(&d);
        assert!(n > 0, "{what}: nothing to look at in {}", d.display());
        assert!(hits.is_empty(), "{what}: {hits:#?}");
        files += n;
    }
    // The secrets were there to be found: both indexes and the registry were used with them.
    assert!(
        private.requests().iter().any(|r| r.contains("alpha")),
        "{:?}",
        private.requests()
    );
    assert!(
        netrc_index.requests().iter().any(|r| r.contains("gamma")),
        "{:?}",
        netrc_index.requests()
    );
    record(
        "secrets",
        "a registry password (--creds, right and wrong), an index token (build argument in the index URL), a .netrc password, ASTRO_API_TOKEN",
        "found 0 times in any output, cache file, lock, OCI layout or pushed image (layers decompressed)",
        &format!("{runs} commands' stdout and stderr and {files} files searched: 0 found"),
    );
}
