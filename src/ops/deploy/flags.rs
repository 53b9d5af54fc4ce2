//! The deploy's flag rules and test mode, as `astro deploy` has them (research note §1, §2.3,
//! §2.7, §4), except that every refusal is an error (a non-zero exit), never a silent stop.
//! Pure.

/// What a deploy sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// The image and, on a DAG-deploy deployment, the DAG bundle.
    ImageAndDags,
    /// `--image`: the image only (built without `dags/` on a DAG-deploy deployment).
    ImageOnly,
    /// `--dags`: the DAG bundle only; no image is built.
    DagsOnly,
}

/// The checks to run before deploying (`astro deploy`'s test-mode matrix).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestMode {
    /// The DAG parse check.
    pub parse: bool,
    /// pytest, with the `--test` path (`None`: all of `tests/`).
    pub pytest: Option<Option<String>>,
}

impl TestMode {
    pub fn none(&self) -> bool {
        !self.parse && self.pytest.is_none()
    }
}

/// The flags the rules look at.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub force: bool,
    pub parse: bool,
    pub pytest: bool,
    pub test: Option<String>,
    pub image: bool,
    pub dags: bool,
    pub image_name: bool,
    pub dags_path: bool,
    pub no_dags_base_dir: bool,
    pub skip_parse: bool,
}

/// Checks the flags that exclude each other; the deploy's scope.
pub fn scope(f: &Flags) -> Result<Scope, String> {
    if f.dags && f.image {
        return Err(
            "cannot use both --dags and --image together: run `liftoff deploy` to update both the image and the DAGs"
                .into(),
        );
    }
    if f.image_name {
        for (set, flag) in [
            (f.dags, "--dags"),
            (f.dags_path, "--dags-path"),
            (f.no_dags_base_dir, "--no-dags-base-dir"),
            (f.pytest, "--pytest"),
            (f.parse, "--parse"),
        ] {
            if set {
                return Err(format!(
                    "--image-name cannot be combined with {flag}: a prebuilt image is deployed as it is (with the project's dags/ when the deployment takes DAG bundles)"
                ));
            }
        }
    }
    Ok(if f.dags {
        Scope::DagsOnly
    } else if f.image {
        Scope::ImageOnly
    } else {
        Scope::ImageAndDags
    })
}

/// The test mode of the flags (astro-cli's matrix): `--dags` alone runs nothing, no flag
/// parses, `-f` runs nothing (or the `--test` file), `--parse` parses, `--pytest` runs all
/// tests (or the `--test` file), both parse and run all tests. `skip_parse`
/// (`ASTRONOMER_SKIP_PARSE`) turns the default parse off.
pub fn test_mode(f: &Flags) -> TestMode {
    let test = f.test.as_deref().map(test_path);
    if f.parse && f.pytest {
        return TestMode {
            parse: true,
            pytest: Some(None),
        };
    }
    if f.pytest {
        return TestMode {
            parse: false,
            pytest: Some(test),
        };
    }
    if f.parse {
        return TestMode {
            parse: true,
            pytest: None,
        };
    }
    if f.dags || f.image_name && f.force {
        return TestMode::default();
    }
    if f.force {
        return TestMode {
            parse: false,
            pytest: test.map(Some),
        };
    }
    TestMode {
        parse: !f.skip_parse,
        pytest: None,
    }
}

/// `--test PATH` as astro-cli reads it: a path without `tests` in it is under `tests/`.
pub fn test_path(path: &str) -> String {
    if path.contains("tests") {
        path.to_string()
    } else {
        format!("tests/{}", path.trim_start_matches("./"))
    }
}

/// `ASTRONOMER_SKIP_PARSE`'s true values.
pub fn is_true(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "y" | "on"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_of_astro_deploy() {
        let f = |force, parse, pytest, dags, test: Option<&str>| Flags {
            force,
            parse,
            pytest,
            dags,
            test: test.map(str::to_string),
            ..Flags::default()
        };
        let parse_only = TestMode {
            parse: true,
            pytest: None,
        };
        assert_eq!(test_mode(&f(false, false, false, false, None)), parse_only);
        assert!(test_mode(&f(false, false, false, true, None)).none());
        assert!(test_mode(&f(true, false, false, false, None)).none());
        assert_eq!(
            test_mode(&f(true, false, false, false, Some("x.py"))).pytest,
            Some(Some("tests/x.py".into()))
        );
        assert_eq!(test_mode(&f(true, true, false, false, None)), parse_only);
        assert_eq!(test_mode(&f(false, true, false, true, None)), parse_only);
        assert_eq!(
            test_mode(&f(false, false, true, false, Some("tests/a.py"))).pytest,
            Some(Some("tests/a.py".into()))
        );
        assert_eq!(
            test_mode(&f(false, true, true, false, Some("a.py"))),
            TestMode {
                parse: true,
                pytest: Some(None)
            }
        );
        let skip = Flags {
            skip_parse: true,
            ..Flags::default()
        };
        assert!(test_mode(&skip).none());
    }

    #[test]
    fn exclusive_flags_are_refused() {
        let both = Flags {
            dags: true,
            image: true,
            ..Flags::default()
        };
        assert!(
            scope(&both)
                .expect_err("refused")
                .contains("both --dags and --image")
        );
        let prebuilt = Flags {
            image_name: true,
            dags_path: true,
            ..Flags::default()
        };
        assert!(
            scope(&prebuilt)
                .expect_err("refused")
                .contains("--image-name cannot be combined with --dags-path")
        );
        assert_eq!(
            scope(&Flags {
                image: true,
                ..Flags::default()
            }),
            Ok(Scope::ImageOnly)
        );
        assert!(is_true("Yes") && !is_true("0"));
    }
}

/// A duration as Go writes them (`5m0s`, `90s`, `1h30m`, `500ms`): numbers with units `h`,
/// `m`, `s`, `ms`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a duration (e.g. 5m, 90s, 1h30m)");
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total_ms: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit_ms, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('s') {
            (1000, 1)
        } else {
            return Err(bad());
        };
        rest = &rest[len..];
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(std::time::Duration::from_millis(total_ms))
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5m0s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }
}
