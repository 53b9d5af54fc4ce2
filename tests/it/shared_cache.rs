//! Several liftoff processes sharing one cache: concurrent builds with prunes in between, and
//! the temp files killed runs leave behind.

use std::path::Path;
use std::process::Stdio;

use crate::support::cli::{Liftoff, copy_tree, testdata};

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
    crate::support::reliability::record(
        "concurrency",
        "four builds on one cache with a prune in the middle, and SIGKILLed runs' leftovers",
        "every build gives the same image; prune refuses while builds run and removes only dead temp files",
        &format!("{} distinct digest; tmp/ empty afterwards", digests.len()),
    );
}

/// Whether `dir` is absent, or a complete layout: `index.json` and every blob it reaches.
fn absent_or_complete(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        return Ok(());
    }
    let index = std::fs::read(dir.join("index.json")).map_err(|e| format!("index.json: {e}"))?;
    let index: serde_json::Value = serde_json::from_slice(&index).map_err(|e| e.to_string())?;
    let mut todo: Vec<String> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["digest"].as_str().map(str::to_string))
        .collect();
    while let Some(d) = todo.pop() {
        let path = dir.join("blobs/sha256").join(&d["sha256:".len()..]);
        let bytes = std::fs::read(&path).map_err(|e| format!("{d}: {e}"))?;
        if let Ok(m) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            for l in m["layers"].as_array().into_iter().flatten() {
                todo.extend(l["digest"].as_str().map(str::to_string));
            }
            todo.extend(m["config"]["digest"].as_str().map(str::to_string));
        }
    }
    Ok(())
}

#[test]
fn a_killed_build_leaves_no_partial_output_and_the_next_one_cleans_up() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_tree(&testdata().join("example"), &tmp.path().join("example"));
    copy_tree(&testdata().join("bases"), &tmp.path().join("bases"));
    let project = tmp.path().join("example");
    let outs = tmp.path().join("outs");
    let lo = Liftoff::new();
    for (i, delay_ms) in [0u64, 10, 30, 60, 100, 150, 250].into_iter().enumerate() {
        let out = outs.join(format!("out-{i}"));
        let target = format!("oci:{}:latest", s(&out));
        let mut child = lo
            .command(&["build", s(&project), "--output", &target, "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if let Err(e) = absent_or_complete(&out) {
            panic!(
                "killed after {delay_ms} ms, {} is partial: {e}",
                out.display()
            );
        }
        // The next build to the same place completes and leaves no temp file or staging folder.
        let run = lo
            .run(&["build", s(&project), "--output", &target, "--quiet"])
            .ok();
        assert!(run.stderr.is_empty(), "{}", run.stderr);
        absent_or_complete(&out).expect("complete");
        let dots: Vec<String> = std::fs::read_dir(&outs)
            .expect("outs")
            .chain(std::fs::read_dir(out.join("blobs/sha256")).expect("blobs"))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(dots.is_empty(), "leftovers: {dots:?}");
    }
    let left: Vec<_> = std::fs::read_dir(lo.cache_dir().join("tmp"))
        .expect("tmp")
        .collect();
    assert!(
        left.is_empty(),
        "nothing is left in the cache's tmp/: {left:?}"
    );
    crate::support::reliability::record(
        "crashes",
        "`build --output oci:` killed mid-write, then run again",
        "the output folder is absent or a complete layout, no dot-files left; the next build completes it",
        "absent or complete after each kill; complete after the rerun; no leftovers",
    );
}
