//! Fuzzing of every parser of user or network input, on stable Rust with no extra tool: each
//! target gets its seeds (valid inputs) and then mutations of them (bit flips, inserted
//! bytes and tokens the grammars care about, deletions, repeats, splices of two seeds) from a
//! seeded generator, for a time budget; a panic is a failure, and its input is saved under
//! `target/fuzz-crashes/` to be added to `testdata/fuzz/<target>/`, which every run replays
//! first (the regressions).
//!
//! The test suite gives each target a short budget; a long run is one command:
//! `LIFTOFF_FUZZ_SECS=600 cargo test --release --test it -- fuzz:: --test-threads 1`
//! (600 s per target; `LIFTOFF_FUZZ_SEED` picks another sequence of mutations).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::cli::testdata;
use crate::support::rng::Rng;

/// Pieces the grammars treat specially, inserted whole.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\\\n",
    b"\t",
    b" ",
    b"\"",
    b"'",
    b"$",
    b"${",
    b"}",
    b"$(",
    b")",
    b"[",
    b"]",
    b"*",
    b"**",
    b"?",
    b"!",
    b"#",
    b"=",
    b"==",
    b"~=",
    b">=",
    b"<",
    b";",
    b",",
    b"@",
    b":",
    b"/",
    b"../",
    b"./",
    b"-",
    b"--",
    b"|",
    b"&&",
    b"\0",
    b"\xff",
    b"\xc3\x28",
    "é".as_bytes(),
    "\u{1F680}".as_bytes(),
    b"{",
    b"\"a\":",
    b"0",
    b"-1",
    b"18446744073709551616",
    b"1e999",
    b"\\",
    b"\\u0000",
    b"FROM",
    b"RUN",
    b"COPY",
    b"ONBUILD",
    b"Package:",
    b"Depends:",
    b" (>= ",
    b"Types:",
    b"URIs:",
    b"-r ",
    b"-c ",
    b"--index-url",
    b"extra ==",
    b"python_version",
    b"sha256:",
    b"mediaType",
    b"schemaVersion",
    b"layers",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, rng.next() as u8),
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, t.iter().copied());
            }
            3 if !data.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                let start = at.min(end);
                data.drain(start..end);
            }
            4 if !data.is_empty() => {
                let start = rng.below(data.len());
                let end = (start + 1 + rng.below(32)).min(data.len());
                let piece = data[start..end].to_vec();
                for _ in 0..1 + rng.below(4) {
                    data.splice(at..at, piece.iter().copied());
                }
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[cut..]);
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())];
                data.extend_from_slice(t);
            }
        }
    }
    data
}

/// Runs `target` on the regressions of `name`, its seeds, then mutations until the budget is
/// spent; panics (naming the saved input) on the first input that makes it panic.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, target: &dyn Fn(&[u8])) {
    let secs: u64 = std::env::var("LIFTOFF_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let seed: u64 = std::env::var("LIFTOFF_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x1f70_ff5e_ed00_0001);
    let regressions = testdata().join("fuzz").join(name);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&regressions)
        .map(|rd| {
            let mut v: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
            v.sort();
            v.into_iter()
                .filter_map(|p| std::fs::read(p).ok())
                .collect()
        })
        .unwrap_or_default();
    inputs.extend(seeds.iter().cloned());
    let run = |input: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join("..")
                .join("fuzz-crashes");
            std::fs::create_dir_all(&dir).expect("crash folder");
            let file = dir.join(format!(
                "{name}-{}",
                &liftoff_layers::Digest::of(input).hex()[..16]
            ));
            std::fs::write(&file, input).expect("save the crash");
            panic!(
                "fuzz target {name} panicked on {} (copy it into testdata/fuzz/{name}/ once fixed)",
                file.display()
            );
        }
    };
    for input in &inputs {
        run(input);
    }
    let mut rng = Rng(seed ^ liftoff_layers::Digest::of(name.as_bytes()).as_bytes()[0] as u64);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut n = 0u64;
    while Instant::now() < end {
        let input = mutate(&mut rng, &seeds);
        run(&input);
        n += 1;
    }
    assert!(n > 0, "{name}: no mutation ran");
    crate::support::reliability::record(
        "fuzzing",
        name,
        "no panic on any input: the regressions, the seeds, then mutations",
        &format!(
            "{} regression and seed inputs and {n} mutations in {secs} s (seed {seed:#x}): no panic",
            inputs.len()
        ),
    );
}

/// The bytes as text (lossily: the text parsers take `&str`).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn files_under(dir: &str, pick: &dyn Fn(&str) -> bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![testdata().join(dir)];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().and_then(|n| n.to_str()).is_some_and(pick)
                && let Ok(b) = std::fs::read(&p)
                && b.len() < 64 * 1024
            {
                out.push(b);
            }
        }
    }
    out
}

#[test]
fn fuzz_dockerfile() {
    let mut seeds = files_under("", &|n| n == "Dockerfile" || n.ends_with(".Dockerfile"));
    seeds.push(b"FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nRUN apt-get update && \\\n    apt-get install -y git\nCOPY --chown=astro:0 . .\nENV A=1 B=\"two words\"\nARG X=${Y:-z}\nONBUILD RUN echo hi\nHEALTHCHECK CMD curl -f http://localhost/ || exit 1\nUSER astro\n".to_vec());
    fuzz("dockerfile", seeds, &|b| {
        let _ = liftoff::project::dockerfile::parse(&text(b));
        let _ = liftoff::project::dockerfile::parse_trigger(&text(b));
    });
}

#[test]
fn fuzz_dockerignore() {
    let seeds = vec![
        b"# comment\n*.pyc\n**/__pycache__\n!keep.pyc\n/abs\ndir/\n[a-z]?.txt\n\\#literal\n"
            .to_vec(),
        b"*\n!dags\n!dags/**\n".to_vec(),
    ];
    let paths = [
        "dags/a.py",
        "x/__pycache__/y.pyc",
        "keep.pyc",
        "abs",
        "dir/f",
        "b1.txt",
        "#literal",
    ];
    fuzz("dockerignore", seeds, &|b| {
        let t = text(b);
        if let Ok(ignore) = liftoff::project::dockerignore::DockerIgnore::parse(&t) {
            for p in paths {
                let _ = ignore.is_excluded(p);
            }
            // The matcher on paths made of the same bytes.
            for line in t.lines().take(4) {
                let _ = ignore.is_excluded(line.trim_start_matches('!'));
            }
        }
    });
}

#[test]
fn fuzz_requirements() {
    let seeds = vec![
        b"--index-url https://u:p@pypi.example/simple\n--extra-index-url https://x/simple\napache-airflow-providers-amazon[aiobotocore]>=8.0,<9 ; python_version >= \"3.8\"\npandas==2.1.* \\\n  --hash=sha256:0000\nname @ https://x/y.whl\n-c constraints.txt\n# comment\n${VAR}==1.0\n".to_vec(),
        b"requests~=2.31\nfoo[bar,baz]!=1.0; sys_platform == 'linux' and extra == \"x\"\n".to_vec(),
    ];
    fuzz("requirements", seeds, &|b| {
        let t = text(b);
        let no_includes = |_: &str| -> Result<String, liftoff_python::requirements::LoadError> {
            Err("no includes".to_string().into())
        };
        let inputs = liftoff_python::requirements::Inputs {
            load: &no_includes,
            env_var: &|k| (k == "VAR").then(|| "x".to_string()),
        };
        let _ = liftoff_python::requirements::parse("requirements.txt", &t, &inputs);
        let _ = liftoff_python::requirements::parse_local("requirements.txt", &t, &inputs);
        for line in t.lines().take(8) {
            let _ = line.parse::<liftoff_python::pep508::Requirement>();
            let _ = line.parse::<liftoff_python::pep440::Version>();
            let _ = line.parse::<liftoff_python::tags::WheelFilename>();
        }
    });
}

#[test]
fn fuzz_packages_txt_and_debian_versions() {
    let seeds = vec![
        b"# system packages\ngit\nlibpq-dev=15.4-0+deb12u1\nbuild-essential\n\nopenjdk-17-jre-headless:amd64\n".to_vec(),
        b"1:2.3.4-5+deb12u1~bpo1\n".to_vec(),
    ];
    fuzz("packages_txt", seeds, &|b| {
        let t = text(b);
        let _ = liftoff_debian::format::packages_txt::parse(&t);
        for line in t.lines().take(8) {
            let _ = liftoff_debian::format::version::Version::parse(line);
        }
    });
}

#[test]
fn fuzz_deb822_control_sources_and_release() {
    let mut seeds = files_under("debian", &|n| {
        n.ends_with(".sources") || n == "control" || n == "status" || n == "Packages"
    });
    seeds.push(b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u7\nDepends: libgcc-s1, foo (>= 1.0) | bar:any\nDescription: x\n more\n .\n\nPackage: b\n".to_vec());
    seeds.push(b"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n".to_vec());
    seeds.push(
        b"deb [arch=amd64 signed-by=/k.gpg] http://deb.debian.org/debian bookworm main\n".to_vec(),
    );
    seeds.push(b"Origin: Debian\nSuite: stable\nDate: Sat, 10 Jun 2023 08:52:44 UTC\nValid-Until: Sat, 17 Jun 2023 08:52:44 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n 0123 12 main/binary-amd64/Packages.xz\n".to_vec());
    fuzz("deb822", seeds, &|b| {
        use liftoff_debian::format::control::{Dialect, parse_paragraphs};
        use liftoff_debian::format::relation::{RelationField, parse_relations};
        let t = text(b);
        let _ = parse_paragraphs("fuzz", &t, Dialect::Index);
        let _ = parse_paragraphs("fuzz", &t, Dialect::Control);
        let _ = liftoff_debian::archive::sources::parse_deb822("fuzz.sources", &t);
        let _ = liftoff_debian::archive::sources::parse_list("fuzz.list", &t);
        let _ = liftoff_debian::archive::release::Release::parse("http://x/InRelease", &t, Some(0));
        let _ = liftoff_debian::archive::release::split_clearsigned("http://x/InRelease", &t);
        for line in t.lines().take(8) {
            let _ = parse_relations(RelationField::Depends, line);
        }
    });
}

#[test]
fn fuzz_tar_archives() {
    let mut seeds = Vec::new();
    let entries = vec![
        liftoff_layers::Entry::dir("dags", 0o755, 0, 0),
        liftoff_layers::Entry::file(
            "dags/a.py",
            liftoff_layers::Source::Bytes(b"print(1)\n".to_vec().into()),
            0o644,
            0,
            0,
        ),
        liftoff_layers::Entry::symlink("link", "dags/a.py", 0, 0),
    ];
    let mut gz = Vec::new();
    liftoff_layers::write_layer(
        entries,
        &liftoff_layers::LayerOptions {
            mtime: 0,
            gzip_level: 1,
        },
        &mut gz,
    )
    .expect("a layer");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end_into(&mut plain);
    seeds.push(plain);
    seeds.push(gz);
    fuzz("tar", seeds, &|b| {
        let _ = liftoff::project::archive::read_archive("fuzz.tar", b);
    });
}

trait ReadToEndInto {
    fn read_to_end_into(self, out: &mut Vec<u8>);
}

impl<R: std::io::Read> ReadToEndInto for R {
    fn read_to_end_into(mut self, out: &mut Vec<u8>) {
        self.read_to_end(out).expect("decompress the seed");
    }
}

#[test]
fn fuzz_manifests_configs_and_references() {
    let seeds = vec![
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":3}]}"#.to_vec(),
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":4,"platform":{"architecture":"amd64","os":"linux"}}]}"#.to_vec(),
        br#"{"architecture":"amd64","os":"linux","config":{"User":"astro","Env":["A=1"],"OnBuild":["RUN x"],"Labels":{"a":"b"}},"rootfs":{"type":"layers","diff_ids":["sha256:3333333333333333333333333333333333333333333333333333333333333333"]},"history":[{"created_by":"x","empty_layer":true}]}"#.to_vec(),
        b"quay.io/astronomer/astro-runtime:12.6.0@sha256:4444444444444444444444444444444444444444444444444444444444444444".to_vec(),
    ];
    fuzz("manifest", seeds, &|b| {
        let _ = liftoff::image::manifest::parse(b, None);
        let _ =
            liftoff::image::manifest::parse(b, Some("application/vnd.oci.image.manifest.v1+json"));
        let _ = serde_json::from_slice::<liftoff::image::config::ImageConfig>(b);
        let _ = text(b).parse::<liftoff::reference::Reference>();
    });
}
