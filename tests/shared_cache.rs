//! Several liftoff processes sharing one cache: concurrent builds with prunes in between, and
//! the temp files killed runs leave behind.

mod support;

use std::path::Path;
use std::process::Stdio;

use support::cli::{Liftoff, copy_tree, testdata};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn concurrent_builds_and_prunes_share_a_cache_and_clean_only_dead_temp_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_tree(&testdata().join("example"), &tmp.path().join("example"));
    copy_tree(&testdata().join("bases"), &tmp.path().join("bases"));
    let project = tmp.path().join("example");
    let lo = Liftoff::new();
    // What SIGKILLed runs left in tmp/: a partial blob and a scratch folder, unlocked.
    let cache_tmp = lo.cache_dir().join("tmp");
    std::fs::create_dir_all(cache_tmp.join("uv-killed")).expect("mkdir");
    std::fs::write(cache_tmp.join("blob-killed"), vec![0u8; 1 << 20]).expect("leftover");
    std::fs::write(cache_tmp.join("uv-killed/part"), b"x").expect("leftover");

    let builds: Vec<_> = (0..6)
        .map(|i| {
            let out = format!("oci:{}:latest", s(&tmp.path().join(format!("out-{i}"))));
            lo.command(&["build", s(&project), "--output", &out, "--quiet"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a build")
        })
        .collect();
    // Prunes while the builds run: refused while any build holds the cache, else complete.
    let mut prunes = Vec::new();
    for _ in 0..5 {
        let run = lo.run(&["cache", "prune", "--all"]);
        prunes.push((run.status, run.stderr));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut digests = Vec::new();
    for b in builds {
        let out = b.wait_with_output().expect("wait for a build");
        assert!(
            out.status.success(),
            "a build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        digests.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    for (status, stderr) in &prunes {
        assert!(
            *status == 0 || stderr.contains("another liftoff process is using the cache"),
            "prune: {stderr}"
        );
    }
    digests.dedup();
    assert_eq!(
        digests.len(),
        1,
        "every build made the same image: {digests:?}"
    );
    assert!(!cache_tmp.join("blob-killed").exists());
    assert!(!cache_tmp.join("uv-killed").exists());
    let left: Vec<_> = std::fs::read_dir(&cache_tmp).expect("tmp").collect();
    assert!(left.is_empty(), "nothing is left in tmp/: {left:?}");
}
