//! The project layer rebuilt through the segment cache: a cache that holds the earlier build's
//! segments gives the image a cold cache gives (after a change, and after its revert), and
//! umoci (Go's gzip), GNU gzip and Python's tarfile read the segmented layer.

use std::path::Path;
use std::process::Command;

use crate::support::cli::{Liftoff, copy_tree, testdata, tool};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Incompressible bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Builds `project` into a new OCI layout under `out` and returns the image digest.
fn build(lo: &Liftoff, project: &Path, out: &Path) -> String {
    let target = format!("oci:{}:latest", s(out));
    let run = lo
        .run(&[
            "build",
            s(project),
            "--output",
            &target,
            "--json",
            "--quiet",
        ])
        .ok();
    run.json()["digest"].as_str().expect("digest").to_string()
}

/// The bytes of the last layer (the project's `COPY . .`) of the image in the layout `out`.
fn last_layer(out: &Path) -> (String, Vec<u8>) {
    let json = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
    };
    let blob = |d: &str| {
        out.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index = json(&out.join("index.json"));
    let manifest = json(&blob(
        index["manifests"][0]["digest"].as_str().expect("digest"),
    ));
    let layers = manifest["layers"].as_array().expect("layers");
    let digest = layers[layers.len() - 1]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let bytes = std::fs::read(blob(&digest)).expect("layer blob");
    (digest, bytes)
}

#[test]
fn a_rebuild_from_cached_segments_is_the_cold_build_and_readers_read_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_tree(&testdata().join("example"), &tmp.path().join("example"));
    copy_tree(&testdata().join("bases"), &tmp.path().join("bases"));
    let project = tmp.path().join("example");
    std::fs::write(project.join("include/model.bin"), noise(2_500_000)).expect("write");
    for i in 0..80 {
        let body: String = (0..(30 + i))
            .map(|t| format!("t{t} = BashOperator(task_id='t{t}', bash_command='echo {i}')\n"))
            .collect();
        std::fs::write(project.join(format!("dags/gen_{i:02}.py")), body).expect("write");
    }
    let dag = project.join("dags/gen_40.py");
    let original = std::fs::read(&dag).expect("read");

    let runner = Liftoff::new();
    let first = build(&runner, &project, &tmp.path().join("out-0"));

    let mut edited = original.clone();
    edited.extend_from_slice(b"# one change\n");
    std::fs::write(&dag, &edited).expect("edit");
    let rebuilt = build(&runner, &project, &tmp.path().join("out-1"));
    assert_ne!(rebuilt, first);
    let cold = build(&Liftoff::new(), &project, &tmp.path().join("out-cold"));
    assert_eq!(
        rebuilt, cold,
        "segments reused: the image a cold cache builds"
    );

    // The revert, with the layer cache emptied so the layer is written again from segments.
    std::fs::write(&dag, &original).expect("revert");
    std::fs::remove_dir_all(runner.cache_dir().join("layers")).expect("clear layer cache");
    let reverted = build(&runner, &project, &tmp.path().join("out-2"));
    assert_eq!(reverted, first, "change then revert: the first image again");

    let info = runner.run(&["cache", "info", "--json"]).ok().json();
    assert!(info["segments"].as_u64() > Some(3), "{info:#}");
    let verify = runner.run(&["cache", "verify", "--json"]).ok().json();
    assert_eq!(verify["problems"], serde_json::json!([]), "{verify:#}");
    assert_eq!(verify["segments"], info["segments"]);

    // Readers: umoci (Go's gzip) unpacks the image; GNU gzip and Python's tarfile read the layer.
    let out = tmp.path().join("out-1");
    let bundle = tmp.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:latest", s(&out)),
            s(&bundle),
        ],
    );
    let root = bundle.join("rootfs/usr/local/airflow");
    assert_eq!(
        std::fs::read(root.join("dags/gen_40.py")).expect("dag"),
        edited
    );
    assert_eq!(
        std::fs::read(root.join("include/model.bin")).expect("model"),
        noise(2_500_000)
    );
    let (digest, layer) = last_layer(&out);
    let path = tmp.path().join("layer.tar.gz");
    std::fs::write(&path, &layer).expect("write");
    let gzip = Command::new("gzip")
        .arg("-t")
        .arg(&path)
        .output()
        .expect("gzip");
    assert!(
        gzip.status.success(),
        "{digest}: {}",
        String::from_utf8_lossy(&gzip.stderr)
    );
    let names = tool(
        "python3",
        &[
            "-c",
            "import tarfile,sys\nfor m in tarfile.open(sys.argv[1]).getmembers(): print(m.name)",
            s(&path),
        ],
    );
    let names: Vec<&str> = names.lines().collect();
    assert!(
        names.contains(&"usr/local/airflow/include/model.bin"),
        "{names:?}"
    );
    assert!(
        names.contains(&"usr/local/airflow/dags/gen_79.py"),
        "{names:?}"
    );
}
