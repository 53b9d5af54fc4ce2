//! The base image's ONBUILD triggers, matched exactly against the Runtime generations liftoff
//! knows how to carry out without a container.
//!
//! `COPY` and `USER` triggers are ordinary instructions and are planned natively. Each `RUN`
//! trigger must be one of the known texts below, which says what it does; any other text is an
//! error, never skipped. Source: the ONBUILD triggers the Astro Runtime images declare.

/// What a known `RUN` trigger does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunTrigger {
    /// Installs the OS packages listed in `packages.txt` with apt-get (a no-op when it lists none).
    SystemPackages,
    /// Refuses an `apache-airflow` pin, then pip-installs `requirements.txt`.
    PythonDependencies,
}

/// A trigger generation: a name for messages and its exact trigger texts in order.
pub struct Generation {
    pub name: &'static str,
    pub triggers: &'static [&'static str],
}

const AC_APT: &str = "RUN if [[ -s packages.txt ]]; then apt-get update && cat packages.txt | tr '\\r\\n' '\\n' | xargs apt-get install -y --no-install-recommends && apt-get clean && rm -rf /var/lib/apt/lists/*; fi";
const AC_PIP: &str = "RUN if grep -Eqx 'apache-airflow\\s*[=~>]{1,2}.*' requirements.txt; then echo >&2 \"Do not upgrade by specifying 'apache-airflow' in your requirements.txt, change the base image instead!\"; exit 1; fi; pip install --no-cache-dir -q -r requirements.txt";
const RT9_APT: &str = "RUN if [[ -s packages.txt ]]; then apt-get update && cat packages.txt | tr '\\r\\n' '\\n' | sed -e 's/#.*//' | xargs apt-get install -y --no-install-recommends && apt-get clean && rm -rf /var/lib/apt/lists/*; fi";
const RT9_PIP: &str = "RUN if grep -Eqx 'apache-airflow\\s*[=~>]{1,2}.*' requirements.txt; then echo >&2 \"Do not upgrade by specifying 'apache-airflow' in your requirements.txt, change the base image instead!\"; exit 1; fi; pip install --no-cache-dir -r requirements.txt";
const RT12_APT: &str = "RUN /usr/local/bin/install-system-packages";
const RT12_PIP: &str = "RUN /usr/local/bin/install-python-dependencies";

/// The generations liftoff accepts.
pub const GENERATIONS: &[Generation] = &[
    Generation {
        name: "Astronomer Certified 2.2+ (onbuild)",
        triggers: &[
            "COPY packages.txt .",
            "USER root",
            AC_APT,
            "COPY requirements.txt .",
            AC_PIP,
            "USER astro",
            "COPY --chown=astro:astro . .",
        ],
    },
    Generation {
        name: "Astro Runtime 4-11",
        triggers: &[
            "COPY packages.txt .",
            "USER root",
            RT9_APT,
            "COPY requirements.txt .",
            RT9_PIP,
            "USER astro",
            "COPY --chown=astro:0 . .",
        ],
    },
    Generation {
        name: "Astro Runtime 12+ and 3.x",
        triggers: &[
            "COPY packages.txt .",
            "USER root",
            RT12_APT,
            "COPY requirements.txt .",
            RT12_PIP,
            "USER astro",
            "COPY --chown=astro:0 . .",
        ],
    },
];

/// What a known `RUN` trigger text does, if it is one.
pub fn classify_run(trigger: &str) -> Option<RunTrigger> {
    match trigger {
        AC_APT | RT9_APT | RT12_APT => Some(RunTrigger::SystemPackages),
        AC_PIP | RT9_PIP | RT12_PIP => Some(RunTrigger::PythonDependencies),
        _ => None,
    }
}

/// The known `RUN` steps among the base's triggers, in order.
pub fn runs(triggers: &[String]) -> Vec<RunTrigger> {
    triggers.iter().filter_map(|t| classify_run(t)).collect()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TriggerError {
    #[error(
        "the base image has ONBUILD triggers liftoff does not know (trigger {index}: {text:?}); liftoff carries out only the triggers of the Astro Runtime images ({known}) and never skips one"
    )]
    Unknown {
        index: usize,
        text: String,
        known: String,
    },
}

/// Checks the base's triggers against the known generations: all of them, in order. An empty
/// list is fine (a `-base` image). Returns the generation's name.
pub fn check(triggers: &[String]) -> Result<Option<&'static str>, TriggerError> {
    if triggers.is_empty() {
        return Ok(None);
    }
    for generation in GENERATIONS {
        if generation.triggers.len() == triggers.len()
            && generation
                .triggers
                .iter()
                .zip(triggers)
                .all(|(a, b)| a == b)
        {
            return Ok(Some(generation.name));
        }
    }
    // Name the first trigger that no generation has at that position.
    let index = (0..triggers.len())
        .find(|&i| {
            !GENERATIONS
                .iter()
                .any(|g| g.triggers.get(i) == Some(&triggers[i].as_str()))
        })
        .unwrap_or(triggers.len().min(GENERATIONS[0].triggers.len()));
    let text = triggers.get(index).cloned().unwrap_or_default();
    let known = GENERATIONS
        .iter()
        .map(|g| g.name)
        .collect::<Vec<_>>()
        .join(", ");
    Err(TriggerError::Unknown {
        index: index + 1,
        text,
        known,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_generation_is_recognised_and_its_runs_classified() {
        for g in GENERATIONS {
            assert_eq!(check(&owned(g.triggers)), Ok(Some(g.name)));
            let runs: Vec<_> = g.triggers.iter().filter_map(|t| classify_run(t)).collect();
            assert_eq!(
                runs,
                [RunTrigger::SystemPackages, RunTrigger::PythonDependencies]
            );
        }
        assert_eq!(check(&[]), Ok(None));
    }

    #[test]
    fn an_unknown_or_changed_trigger_is_named() {
        let mut t = owned(GENERATIONS[2].triggers);
        t[4] = "RUN curl https://example.com | sh".into();
        let err = check(&t).expect_err("unknown");
        let TriggerError::Unknown { index, text, .. } = &err;
        assert_eq!(
            (*index, text.as_str()),
            (5, "RUN curl https://example.com | sh")
        );
        assert!(err.to_string().contains("never skips one"));
        // A known generation with one trigger missing is refused too.
        let short = owned(&GENERATIONS[2].triggers[..6]);
        assert!(check(&short).is_err());
    }
}
