use super::*;

fn fp(path: &str, byte: u8) -> FileFp {
    FileFp {
        path: path.to_string(),
        kind: b'f',
        mode: 0o644,
        uid: 50000,
        gid: 0,
        content: [byte; 16],
    }
}

fn sample() -> BuildRecord {
    let mut copy = LayerInputs {
        instruction: "COPY --chown=astro:0 . .".into(),
        parts: vec![Part {
            input: Input::Writer("compressor".into()),
            value: Value::text("pgzip/level-6"),
        }],
        files: Vec::new(),
    };
    copy.set_files(vec![
        fp("usr/local/airflow/dags/b.py", 2),
        fp("usr/local/airflow/dags/a.py", 1),
        fp("usr/local/airflow/dags/a.py", 3),
        fp("usr/local/airflow/dagsé/ü.py", 4),
        fp("usr/local/airflow/dagsé/ü2.py", 5),
    ]);
    let python = LayerInputs {
        instruction: "RUN /usr/local/bin/install-python-dependencies".into(),
        parts: vec![
            Part {
                input: Input::Lock(".astro/pylock.toml".into()),
                value: Value::Digest(Digest::of(b"lock")),
            },
            Part {
                input: Input::Base,
                value: Value::text("sha256:00"),
            },
            Part {
                input: Input::BuildArg("X".into()),
                value: Value::Digest(build_arg_digest("X", "1")),
            },
            Part {
                input: Input::Parents,
                value: Value::Digest(Digest::of(b"p")),
            },
            Part {
                input: Input::Setting("bytecode".into()),
                value: Value::text(&"x".repeat(300)),
            },
        ],
        files: Vec::new(),
    };
    BuildRecord {
        build_args: vec![("X".into(), build_arg_digest("X", "1"))],
        layers: vec![python, copy],
    }
}

#[test]
fn round_trips_with_files_sorted_and_one_per_path() {
    let record = sample();
    let files: Vec<(&str, u8)> = record.layers[1]
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.content[0]))
        .collect();
    // The later entry of a path wins, as in the layer; multi-byte names share prefixes.
    assert_eq!(
        files,
        [
            ("usr/local/airflow/dags/a.py", 3),
            ("usr/local/airflow/dags/b.py", 2),
            ("usr/local/airflow/dagsé/ü.py", 4),
            ("usr/local/airflow/dagsé/ü2.py", 5),
        ]
    );
    // A long text is kept as its digest.
    assert_eq!(
        record.layers[0].parts[4].value,
        Value::Digest(Digest::of("x".repeat(300).as_bytes()))
    );
    let bytes = record.to_bytes();
    assert_eq!(BuildRecord::parse(&bytes), Ok(record.clone()));
    // Same record, same bytes.
    assert_eq!(sample().to_bytes(), bytes);
}

#[test]
fn paths_share_their_prefix_so_large_projects_stay_small() {
    let mut layer = LayerInputs::default();
    layer.set_files(
        (0..100_000)
            .map(|i| {
                fp(
                    &format!("usr/local/airflow/dags/team_{}/dag_{i}.py", i % 100),
                    1,
                )
            })
            .collect(),
    );
    let record = BuildRecord {
        build_args: Vec::new(),
        layers: vec![layer],
    };
    let bytes = record.to_bytes();
    // 29 fixed bytes per entry, a few for the path's new suffix.
    assert!(bytes.len() < 100_000 * 45, "{} bytes", bytes.len());
    assert_eq!(BuildRecord::parse(&bytes), Ok(record));
}

#[test]
fn corrupt_truncated_and_foreign_bytes_are_rejected() {
    let good = sample().to_bytes();
    let mut flipped = good.clone();
    flipped[MAGIC.len() + 10] ^= 1;
    assert_eq!(
        BuildRecord::parse(&flipped),
        Err(BuildRecordError::Checksum)
    );
    for cut in [good.len() - 1, 40, 10, 0] {
        assert!(BuildRecord::parse(&good[..cut]).is_err(), "cut at {cut}");
    }
    assert_eq!(
        BuildRecord::parse(&[b"garbage".repeat(10), vec![0; 32]].concat()),
        Err(BuildRecordError::Magic)
    );
    let mut v2 = good[..MAGIC.len()].to_vec();
    v2.extend_from_slice(&2u32.to_le_bytes());
    v2.extend_from_slice(&good[MAGIC.len() + 4..]);
    assert_eq!(BuildRecord::parse(&v2), Err(BuildRecordError::Version(2)));
    // A stat index is not a build record.
    let index = super::super::stat_index::encode(&[]);
    assert_eq!(BuildRecord::parse(&index), Err(BuildRecordError::Magic));
}

/// Bytes with a valid checksum but a path out of order, or a prefix longer than the last path,
/// are refused: the checksum does not make a hand-made file trusted.
#[test]
fn well_summed_but_malformed_bytes_are_rejected() {
    let seal = |mut body: Vec<u8>| {
        let sum = Digest::of(&body);
        body.extend_from_slice(sum.as_bytes());
        body
    };
    let head = |files: &[(u64, &str)]| {
        let mut w = MAGIC.to_vec();
        w.extend_from_slice(&VERSION.to_le_bytes());
        put_u64(&mut w, 0);
        put_u64(&mut w, 1);
        put_str(&mut w, "COPY . .");
        put_u64(&mut w, 0);
        put_u64(&mut w, files.len() as u64);
        for (shared, suffix) in files {
            put_u64(&mut w, *shared);
            put_str(&mut w, suffix);
            w.push(b'f');
            w.extend_from_slice(&[0u8; 12 + 16]);
        }
        w
    };
    assert!(BuildRecord::parse(&seal(head(&[(0, "a"), (0, "b")]))).is_ok());
    assert!(matches!(
        BuildRecord::parse(&seal(head(&[(0, "b"), (0, "a")]))),
        Err(BuildRecordError::Bad(_))
    ));
    assert!(matches!(
        BuildRecord::parse(&seal(head(&[(0, "a"), (5, "b")]))),
        Err(BuildRecordError::Bad(_))
    ));
    assert!(matches!(
        BuildRecord::parse(&seal(head(&[(0, "a"), (0, "a")]))),
        Err(BuildRecordError::Bad(_))
    ));
    let mut trailing = head(&[(0, "a")]);
    trailing.push(0);
    assert_eq!(
        BuildRecord::parse(&seal(trailing)),
        Err(BuildRecordError::Trailing(1))
    );
}

#[test]
fn names_differ_by_project_and_arg_digests_by_value() {
    assert_ne!(
        record_name(Path::new("/p/a")),
        record_name(Path::new("/p/b"))
    );
    assert!(record_name(Path::new("/p/a")).starts_with("build-"));
    assert_ne!(build_arg_digest("A", "1"), build_arg_digest("A", "2"));
    assert_ne!(build_arg_digest("AB", "C"), build_arg_digest("A", "BC"));
}
