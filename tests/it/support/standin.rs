//! The stand-in Runtime base of the live tests: the folder `LIFTOFF_STANDIN` names, else
//! `target/bench-base`, built there by `benches/make-runtime-base.sh` (root, network, about
//! 3 minutes) when missing. It holds `oci/` (an OCI layout, tag 12.6.0) and
//! `runtime-standin.docker.tar`.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LIFTOFF_STANDIN") {
        return PathBuf::from(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-base");
    if !dir.join("oci/index.json").exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/make-runtime-base.sh");
        let st = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .status()
            .expect("run make-runtime-base.sh");
        assert!(st.success(), "{} failed", script.display());
    }
    dir
}
