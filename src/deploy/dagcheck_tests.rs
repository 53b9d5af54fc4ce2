use std::collections::BTreeSet;

use super::*;

fn testdata(name: &str) -> String {
    let path = format!("{}/testdata/dagcheck/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).expect("test data is readable")
}

/// Python 3.11's standard library plus the distributions of `testdata/dagcheck/image-RECORD`.
fn image() -> Known {
    let mut known = Known::stdlib((3, 11));
    known.add_record(&testdata("image-RECORD"));
    known
}

fn none() -> BTreeSet<String> {
    BTreeSet::new()
}

/// `(file, line, module)` of each missing module.
fn missing(problems: &[Problem]) -> Vec<(&str, u32, &str)> {
    problems
        .iter()
        .filter_map(|p| match &p.kind {
            ProblemKind::MissingModule { module } => {
                Some((p.file.as_str(), p.line, module.as_str()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn stdlib_lists_differ_by_version() {
    let py39 = Known::stdlib((3, 9));
    let py312 = Known::stdlib((3, 12));
    for name in [
        "os",
        "sys",
        "json",
        "__future__",
        "builtins",
        "_io",
        "winreg",
    ] {
        assert!(py39.contains(name) && py312.contains(name), "{name}");
    }
    assert!(py39.contains("distutils") && !py312.contains("distutils"));
    assert!(py39.contains("formatter") && !Known::stdlib((3, 10)).contains("formatter"));
    assert!(!py39.contains("tomllib") && Known::stdlib((3, 11)).contains("tomllib"));
    // Outside the listed versions: the nearest one's modules, the version itself kept.
    let py314 = Known::stdlib((3, 14));
    assert_eq!(py314.python(), Some((3, 14)));
    assert!(py314.contains("tomllib") && !py314.contains("imp"));
    assert!(!py39.contains("yaml") && Known::new().python().is_none());
}

#[test]
fn record_rows_give_top_level_names() {
    let mut known = Known::new();
    known.add_record(
        "yaml/__init__.py,sha256=abc,100\n\
         _yaml/__init__.py,sha256=abc,100\n\
         six.py,sha256=abc,10\r\n\
         _cffi_backend.cpython-311-x86_64-linux-gnu.so,sha256=abc,10\n\
         fast.abi3.so,,\n\
         plain.so,,\n\
         PyYAML-6.0.1.dist-info/RECORD,,\n\
         PyYAML-6.0.1.data/scripts/x,,\n\
         ../../../bin/yamlfmt,sha256=abc,10\n\
         /usr/share/doc/x,,\n\
         __pycache__/six.cpython-311.pyc,,\n\
         numpy.libs/libz.so,,\n\
         google/cloud/storage/__init__.py,,\n\
         \"weird,name/__init__.py\",,\n\
         \"quoted/__init__.py\",,\n\
         distutils-precedence.pth,,\n\
         README.txt,,\n",
    );
    let names: Vec<&str> = known.names().collect();
    assert_eq!(
        names,
        [
            "_cffi_backend",
            "_yaml",
            "distutils",
            "fast",
            "google",
            "plain",
            "quoted",
            "six",
            "yaml"
        ]
    );
}

#[test]
fn distribution_table_is_sorted() {
    assert!(DISTRIBUTIONS.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn top_level_txt_names_are_added() {
    let mut known = Known::new();
    known.add_record("google\nprotobuf/internal\n\n_private\nnot-a-name\n");
    known.add("extra");
    let names: Vec<&str> = known.names().collect();
    assert_eq!(names, ["_private", "extra", "google", "protobuf"]);
}

#[test]
fn project_modules_from_paths() {
    let paths = [
        "dags/etl.py",
        "dags/shared/__init__.py",
        "dags/nested/deep/x.py",
        "dags/data-engineering-use-case/x.py",
        "dags/__pycache__/etl.cpython-311.pyc",
        "plugins/my_operator.py",
        "include/helpers.py",
        "include/sql/query.sql",
        "./setup_utils.py",
        "README.md",
        ".astro/config.yaml",
        "requirements.txt",
    ];
    let names: Vec<String> = project_modules(&paths).into_iter().collect();
    assert_eq!(
        names,
        [
            "dags",
            "etl",
            "helpers",
            "include",
            "my_operator",
            "nested",
            "plugins",
            "setup_utils",
            "shared",
            "sql"
        ]
    );
}

#[test]
fn syntax_error_names_file_and_line() {
    let text = "import os\n\nx = (1,\ny = 2\n";
    let problems = check(&[("dags/broken.py", text)], &image(), &none());
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert_eq!((p.kind.clone(), p.line), (ProblemKind::Syntax, 4));
    assert!(
        p.to_string()
            .starts_with("dags/broken.py:4: syntax error: "),
        "{p}"
    );
    // Only the first error of a file; CRLF and CR line ends count as Python counts them.
    let text = "import os\r\n\r\ndef f(:\r\n    pass\r\n)\r";
    let problems = check(&[("dags/crlf.py", text)], &image(), &none());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, 3);
    let problems = check(&[("dags/cr.py", "a = 1\rb = = 2\r")], &image(), &none());
    assert_eq!(problems[0].line, 2, "{problems:?}");
    let problems = check(&[("dags/p2.py", "print 'hello'\n")], &image(), &none());
    assert_eq!(problems[0].kind, ProblemKind::Syntax);
}

#[test]
fn new_syntax_checked_against_the_images_python() {
    let text = "type Point = tuple[float, float]\n\
                def first[T](xs: list[T]) -> T:\n    return xs[0]\n\
                d = {'a': 1}\n\
                s = f'{d['a']}'\n\
                match d:\n    case {'a': 1}:\n        pass\n";
    let files = [("dags/new.py", text)];
    assert_eq!(check(&files, &Known::stdlib((3, 12)), &none()), []);
    let mut unversioned = Known::new();
    unversioned.add("anything");
    assert_eq!(check(&files, &unversioned, &none()), []);
    let problems = check(&files, &Known::stdlib((3, 9)), &none());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind, ProblemKind::SyntaxTooNew);
    assert_eq!(problems[0].line, 1);
    assert!(
        problems[0].message.contains("Python 3.9"),
        "{}",
        problems[0]
    );
    let problems = check(
        &[("dags/m.py", "match 1:\n    case _: pass\n")],
        &Known::stdlib((3, 10)),
        &none(),
    );
    assert_eq!(problems, []);
}

#[test]
fn imports_resolve_to_stdlib_record_and_project() {
    let text = "from __future__ import annotations\n\
                import os.path, json\n\
                import pandas as pd\n\
                from airflow.decorators import dag\n\
                from include.helpers import f\n\
                import etl_common\n\
                import yaml\n\
                from . import sibling\n\
                from .. import parent\n\
                import snowflake.connector\n\
                import yaml\n";
    let project = project_modules(&["include/helpers.py", "dags/etl_common/__init__.py"]);
    let problems = check(&[("dags/etl.py", text)], &image(), &project);
    assert_eq!(
        missing(&problems),
        [("dags/etl.py", 7, "yaml"), ("dags/etl.py", 10, "snowflake")]
    );
    let snowflake = &problems[1];
    assert_eq!(
        snowflake.to_string(),
        "dags/etl.py:10: module `snowflake` is not installed in the image (no distribution \
         provides it, and it is not in dags/, plugins/ or include/)"
    );
    assert_eq!(
        snowflake.hint.as_deref(),
        Some("add `snowflake-connector-python` to requirements.txt (it provides `snowflake`)")
    );
    let problems = check(&[("dags/x.py", "import frobnicate\n")], &image(), &none());
    assert_eq!(
        problems[0].hint.as_deref(),
        Some("add the distribution that provides `frobnicate` to requirements.txt")
    );
    for (import, dist) in [
        ("sklearn", "scikit-learn"),
        ("cv2", "opencv-python"),
        ("bs4", "beautifulsoup4"),
        ("PIL", "Pillow"),
    ] {
        assert_eq!(distribution_of(import), Some(dist));
    }
}

#[test]
fn removed_stdlib_module_says_so() {
    let problems = check(
        &[("dags/old.py", "import imp\nimport distutils\n")],
        &Known::stdlib((3, 12)),
        &none(),
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(
        problems[0].message,
        "module `imp` is not in Python 3.12's standard library (it is in Python 3.9-3.11), and \
         no distribution in the image provides it"
    );
    // setuptools' shim provides distutils again.
    let mut known = Known::stdlib((3, 12));
    known.add_record("_distutils_hack/__init__.py,,\ndistutils-precedence.pth,,\n");
    let problems = check(&[("dags/old.py", "import distutils\n")], &known, &none());
    assert_eq!(problems, []);
}

#[test]
fn optional_and_lazy_imports_are_not_reported() {
    let text = "\
import typing
from typing import TYPE_CHECKING
try:
    import ujson as json
except ImportError:
    import json
try:
    import orjson
except (ValueError, ModuleNotFoundError):
    orjson = None
try:
    import simplejson
except Exception:
    pass
try:
    import fastjson
except:
    fastjson = None
if TYPE_CHECKING:
    import mypy_boto3_s3
if typing.TYPE_CHECKING:
    import pandas_stubs
else:
    import os
def task_body():
    import transformers
    return transformers
class Holder:
    import sys
    def method(self):
        import torch
lam = lambda: __import__('torch')
";
    assert_eq!(check(&[("dags/opt.py", text)], &image(), &none()), []);
}

#[test]
fn fallback_imports_checked_when_the_body_fails() {
    let text = "\
try:
    import tomllib
except ImportError:
    import tomli as tomllib
try:
    import ujson
except ImportError:
    import rapidjson
try:
    import missing_one
except KeyError:
    pass
";
    // 3.11 has tomllib: tomli is not needed. ujson is missing, so rapidjson must be there.
    let problems = check(&[("dags/f.py", text)], &image(), &none());
    assert_eq!(
        missing(&problems),
        [
            ("dags/f.py", 8, "rapidjson"),
            ("dags/f.py", 10, "missing_one")
        ]
    );
    let problems = check(&[("dags/f.py", text)], &Known::stdlib((3, 10)), &none());
    assert_eq!(
        missing(&problems),
        [
            ("dags/f.py", 4, "tomli"),
            ("dags/f.py", 8, "rapidjson"),
            ("dags/f.py", 10, "missing_one")
        ]
    );
}

#[test]
fn version_tests_follow_the_images_python() {
    let text = "\
import sys
if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib
if sys.version_info < (3, 10):
    import importlib_metadata
elif sys.version_info[:2] == (3, 10):
    import undecided
if sys.version_info >= (3, 11, 2):
    import micro_undecided
";
    let problems = check(&[("dags/v.py", text)], &Known::stdlib((3, 11)), &none());
    assert_eq!(
        missing(&problems),
        [
            ("dags/v.py", 9, "undecided"),
            ("dags/v.py", 11, "micro_undecided")
        ]
    );
    // On 3.9, `>= (3, 11, 2)` is decided by (3, 9) alone.
    let problems = check(&[("dags/v.py", text)], &Known::stdlib((3, 9)), &none());
    assert_eq!(
        missing(&problems),
        [
            ("dags/v.py", 5, "tomli"),
            ("dags/v.py", 7, "importlib_metadata")
        ]
    );
}

#[test]
fn example_dags_against_an_image_record() {
    let astronauts = testdata("example_astronauts.py");
    let feedback = testdata("analyze_customer_feedback.py");
    let expectations = testdata("great_expectations_pandas_df.py");
    let files = [
        ("dags/example_astronauts.py", astronauts.as_str()),
        (
            "dags/data-engineering-use-case/analyze_customer_feedback.py",
            feedback.as_str(),
        ),
        (
            "dags/great_expectations/great_expectations_pandas_df.py",
            expectations.as_str(),
        ),
    ];
    let project = project_modules(&[
        "dags/example_astronauts.py",
        "dags/data-engineering-use-case/analyze_customer_feedback.py",
        "dags/great_expectations/great_expectations_pandas_df.py",
        "include/helpers.py",
    ]);
    // The feedback DAG's `transformers` imports are inside tasks: not reported.
    let problems = check(&files, &image(), &project);
    assert_eq!(
        missing(&problems),
        [(
            "dags/great_expectations/great_expectations_pandas_df.py",
            18,
            "great_expectations_provider"
        )]
    );
    assert_eq!(problems.len(), 1);
    // Without include/ in the project, the feedback DAG's helper import is reported.
    let problems = check(&files[1..2], &image(), &none());
    assert_eq!(
        missing(&problems),
        [(
            "dags/data-engineering-use-case/analyze_customer_feedback.py",
            15,
            "include"
        )]
    );
    // With the provider's top_level.txt, all is well.
    let mut known = image();
    known.add_record("great_expectations_provider\n");
    assert_eq!(check(&files, &known, &project), []);
}

#[test]
fn airflow_3_dag() {
    let text = "\
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz=\"UTC\"), catchup=False)
def tutorial_taskflow_api():
    @task()
    def extract() -> dict[str, float]:
        import json
        return json.loads('{\"1001\": 301.27}')

    @task
    def total(values: dict[str, float]) -> float:
        match values:
            case {}:
                return 0.0
            case _:
                return sum(values.values())

    total(extract())


tutorial_taskflow_api()
";
    assert_eq!(check(&[("dags/tutorial.py", text)], &image(), &none()), []);
    let mut without_airflow = Known::stdlib((3, 12));
    without_airflow.add_record("pendulum/__init__.py,,\n");
    let problems = check(&[("dags/tutorial.py", text)], &without_airflow, &none());
    assert_eq!(missing(&problems), [("dags/tutorial.py", 4, "airflow")]);
}

#[test]
fn problems_sorted_by_file_then_line() {
    let files = [
        ("dags/b.py", "import zz\nimport aa\n"),
        ("dags/a.py", "x = = 1\n"),
    ];
    let shown: Vec<String> = check(&files, &image(), &none())
        .iter()
        .map(|p| format!("{}:{}", p.file, p.line))
        .collect();
    assert_eq!(shown, ["dags/a.py:1", "dags/b.py:1", "dags/b.py:2"]);
}

#[test]
fn airflow_providers_must_be_installed() {
    let text = "\
from airflow.providers.snowflake.operators.snowflake import SnowflakeOperator
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
import airflow.providers.amazon.aws.operators.s3
from airflow.providers import amazon
";
    let problems = check(&[("dags/p.py", text)], &image(), &none());
    assert_eq!(
        missing(&problems),
        [
            ("dags/p.py", 2, "airflow.providers.amazon"),
            ("dags/p.py", 3, "airflow.providers.microsoft.azure")
        ]
    );
    assert_eq!(
        problems[1].to_string(),
        "dags/p.py:3: module `airflow.providers.microsoft.azure` is not installed in the image \
         (no provider distribution provides it)"
    );
    assert_eq!(
        problems[1].hint.as_deref(),
        Some(
            "add `apache-airflow-providers-microsoft-azure` to requirements.txt (it provides \
             `airflow.providers.microsoft.azure`)"
        )
    );
    let mut known = image();
    known.add_record(
        "airflow/providers/microsoft/azure/hooks/wasb.py,,\n\
         airflow/providers/amazon/__init__.py,,\n",
    );
    let more = format!("{text}from airflow.providers.microsoft import azure\n");
    assert_eq!(check(&[("dags/p.py", &more)], &known, &none()), []);
    // Known from top_level.txt only: no provider was seen, so none is checked.
    let mut top_level_only = Known::stdlib((3, 11));
    top_level_only.add_record("airflow\n");
    assert_eq!(check(&[("dags/p.py", text)], &top_level_only, &none()), []);
}
