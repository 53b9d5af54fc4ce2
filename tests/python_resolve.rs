//! Resolution with a pinned real uv against a generated index, the lock, wheel downloads.

mod support;

use support::pyindex::{Dist, PyIndex};

fn dists() -> Vec<Dist> {
    vec![
        Dist::wheel("alpha", "1.0")
            .requires("beta>=1.0")
            .requires("gamma; extra == \"fast\"")
            .requires("winonly; sys_platform == \"win32\"")
            .extra("fast"),
        Dist::wheel("beta", "1.0"),
        Dist::wheel("beta", "2.0"),
        Dist::wheel("gamma", "1.0"),
        Dist::wheel("winonly", "1.0"),
        Dist::tagged(
            "native",
            "1.0",
            "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
        ),
        Dist::sdist("sdistonly", "1.0"),
        Dist::tagged("armonly", "1.0", "cp312-cp312-manylinux_2_17_aarch64"),
        Dist::wheel("delta", "1.0").requires("sdistonly"),
    ]
}

#[test]
#[ignore]
fn explore() {
    let idx = PyIndex::serve(&dists());
    std::fs::write("/tmp/uvt/url", idx.simple_url()).expect("w");
    std::thread::sleep(std::time::Duration::from_secs(300));
}
