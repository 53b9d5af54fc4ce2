//! The crash rows of the reliability matrix: a cold `liftoff build --push` killed (SIGKILL) at
//! seeded random moments; after each kill `liftoff cache verify` finds
//! nothing wrong, the tag names either nothing or a whole image, and the next build gives the
//! clean digest. Also `cache verify` itself: a damaged blob, a dangling layer entry and an
//! unfinished tree are found, named, and removed by `--repair`.

use std::time::{Duration, Instant};

use crate::support::cli::Liftoff;
use crate::support::registry::TestRegistry;
use crate::support::reliability::record;
use crate::support::rng::Rng;

fn digest_of(run_stdout: &str) -> String {
    run_stdout
        .split_whitespace()
        .next()
        .expect("the build prints its digest")
        .to_string()
}

fn skopeo_digest(reference: &str) -> Option<String> {
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo runs");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn reliability_builds_killed_at_random_moments_leave_a_sound_cache() {
    const KILLS: usize = 20;
    let reg = TestRegistry::start();
    let host = reg.host();
    let (_tmp, dir) = crate::support::deploy::example("");
    let p = dir.to_str().expect("utf-8");

    // The clean digest and how long a cold build and push takes, on a cache of its own.
    // (Measured the second time: the rounds push to a registry that has the blobs.)
    let mut cold = Duration::ZERO;
    let mut clean_digest = String::new();
    for _ in 0..2 {
        let start = Instant::now();
        let clean = Liftoff::new()
            .run(&[
                "build",
                p,
                "--push",
                &format!("{host}/crash/clean:1"),
                "--insecure-registry",
                &host,
            ])
            .ok();
        cold = start.elapsed();
        clean_digest = digest_of(&clean.stdout);
    }

    let mut rng = Rng(0x5eed_1e55_c0ff_ee01);
    let dest = format!("{host}/crash/app:1");
    let mut killed_before_the_end = 0;
    for i in 0..KILLS {
        // A cold cache each round, so that every moment of a build can be hit.
        let lo = Liftoff::new();
        let wait = Duration::from_micros(rng.next() % (cold.as_micros() as u64 + 1));
        let mut child = lo
            .command(&["build", p, "--push", &dest, "--insecure-registry", &host])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("liftoff starts");
        std::thread::sleep(wait);
        let finished = child.try_wait().expect("status").is_some();
        if !finished {
            killed_before_the_end += 1;
        }
        let _ = child.kill();
        let _ = child.wait();

        let verify = lo.run(&["cache", "verify", "--json"]);
        let report = verify.json();
        assert_eq!(
            report["problems"],
            serde_json::json!([]),
            "kill {i} after {wait:?}: {report}\n{}",
            verify.stderr
        );
        // The tag names nothing yet, or a whole image (skopeo reads it).
        if let Some(d) = skopeo_digest(&dest) {
            assert_eq!(d, clean_digest, "kill {i} after {wait:?}");
        }
        // The next build runs to its end on what the kill left.
        let again = lo
            .run(&["build", p, "--push", &dest, "--insecure-registry", &host])
            .ok();
        assert_eq!(digest_of(&again.stdout), clean_digest, "after kill {i}");
        assert_eq!(skopeo_digest(&dest).as_deref(), Some(clean_digest.as_str()));
    }
    assert!(
        killed_before_the_end >= KILLS / 4,
        "most kills must land inside a build: {killed_before_the_end} of {KILLS}"
    );
    record(
        "crashes",
        &format!("SIGKILL of a cold `build --push` at {KILLS} seeded random moments"),
        "`cache verify` finds nothing wrong after each; the tag names nothing or a whole image; the next build gives the clean digest",
        &format!(
            "{killed_before_the_end} of {KILLS} kills landed inside a build (cold build {:.1} s); verify: 0 problems each time; each next build on the killed one's cache: the clean digest, and the tag names it",
            cold.as_secs_f64()
        ),
    );
}

#[test]
fn reliability_cache_verify_finds_and_repairs_damage() {
    let (_tmp, dir) = crate::support::deploy::example("");
    let p = dir.to_str().expect("utf-8");
    let out = tempfile::tempdir().expect("tmp");
    let layout = format!("oci:{}", out.path().join("img").display());
    let lo = Liftoff::new();
    let first = lo.run(&["build", p, "--output", &layout]).ok();
    let digest = digest_of(&first.stdout);
    let clean = lo.run(&["cache", "verify"]).ok();
    assert!(clean.stdout.contains(": all good"), "{}", clean.stdout);

    // A blob with a flipped byte, a layer entry whose blob is gone, an unfinished tree.
    let cache = lo.cache_dir().to_path_buf();
    let blobs: Vec<_> = std::fs::read_dir(cache.join("blobs/sha256"))
        .expect("blobs")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    let damaged = &blobs[0];
    let mut bytes = std::fs::read(damaged).expect("read");
    bytes[0] ^= 0xff;
    std::fs::write(damaged, &bytes).expect("write");
    std::fs::write(
        cache.join("layers/00.json"),
        format!(
            r#"{{"digest":"sha256:{}","diff_id":"sha256:{}","size":1,"media_type":"x"}}"#,
            "ab".repeat(32),
            "cd".repeat(32)
        ),
    )
    .expect("entry");
    std::fs::create_dir_all(cache.join("trees/half/root")).expect("tree");

    let bad = lo.run(&["cache", "verify", "--json"]).failed();
    let report: serde_json::Value = serde_json::from_str(&bad.stdout).expect("json");
    let paths: Vec<&str> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["path"].as_str().expect("path"))
        .collect();
    let blob_rel = format!(
        "blobs/sha256/{}",
        damaged.file_name().expect("name").to_string_lossy()
    );
    assert!(paths.contains(&blob_rel.as_str()), "{report}");
    assert!(paths.contains(&"layers/00.json"), "{report}");
    assert!(paths.contains(&"trees/half"), "{report}");
    assert!(
        bad.stderr.contains("run `liftoff cache verify --repair`"),
        "{}",
        bad.stderr
    );

    let repaired = lo.run(&["cache", "verify", "--repair"]).ok();
    assert!(
        repaired.stdout.contains("removed layers/00.json"),
        "{}",
        repaired.stdout
    );
    lo.run(&["cache", "verify"]).ok();
    // The next build makes again what was removed, and gives the same image.
    let again = lo.run(&["build", p, "--output", &layout]).ok();
    assert_eq!(digest_of(&again.stdout), digest);
    lo.run(&["cache", "verify"]).ok();
    record(
        "crashes",
        "`cache verify` on a damaged cache (a flipped byte in a blob, an entry without its blob, an unfinished tree)",
        "each named and exit non-zero; `--repair` removes them; the next build gives the same digest",
        &format!(
            "{} problems named; repaired; rebuilt to the same digest",
            paths.len()
        ),
    );
}
