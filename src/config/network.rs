//! `[network]`: the timeouts of every HTTP client, in seconds (whole or fractional).
//!
//! ```toml
//! [network]
//! connect-timeout-secs = 30    # establishing a connection (TCP and TLS)
//! read-timeout-secs = 60       # the longest silence while waiting for an answer or its body
//! request-timeout-secs = 3600  # a whole request, body included; 0 = no bound
//! ```

use std::time::Duration;

use serde::Deserialize;

use crate::http::Timeouts;

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NetworkConfig {
    pub connect_timeout_secs: Option<Seconds>,
    pub read_timeout_secs: Option<Seconds>,
    pub request_timeout_secs: Option<Seconds>,
}

/// A number of seconds as TOML writes it: an integer or a float.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Seconds {
    Whole(u64),
    Fraction(f64),
}

impl Seconds {
    fn duration(self, key: &str) -> Result<Duration, String> {
        match self {
            Seconds::Whole(s) => Ok(Duration::from_secs(s)),
            Seconds::Fraction(f) => Duration::try_from_secs_f64(f).map_err(|_| {
                format!("[network] {key} = {f}: expected a number of seconds, 0 or more")
            }),
        }
    }
}

impl NetworkConfig {
    /// The timeouts these settings give, over the defaults. A connect or read timeout of 0
    /// would fail every request, so it is refused; a request timeout of 0 means no bound.
    pub fn timeouts(&self) -> Result<Timeouts, String> {
        let mut t = Timeouts::default();
        for (key, value, slot) in [
            (
                "connect-timeout-secs",
                self.connect_timeout_secs,
                &mut t.connect,
            ),
            ("read-timeout-secs", self.read_timeout_secs, &mut t.read),
        ] {
            if let Some(v) = value {
                let d = v.duration(key)?;
                if d.is_zero() {
                    return Err(format!(
                        "[network] {key} = 0: a request could never start; give a number of seconds above 0"
                    ));
                }
                *slot = d;
            }
        }
        if let Some(v) = self.request_timeout_secs {
            let d = v.duration("request-timeout-secs")?;
            t.request = (!d.is_zero()).then_some(d);
        }
        Ok(t)
    }

    /// Entries of `other` override ours.
    pub fn merge(&mut self, other: &NetworkConfig) {
        self.connect_timeout_secs = other.connect_timeout_secs.or(self.connect_timeout_secs);
        self.read_timeout_secs = other.read_timeout_secs.or(self.read_timeout_secs);
        self.request_timeout_secs = other.request_timeout_secs.or(self.request_timeout_secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> NetworkConfig {
        #[derive(Deserialize)]
        struct Wrap {
            network: NetworkConfig,
        }
        toml::from_str::<Wrap>(text).expect("parses").network
    }

    #[test]
    fn settings_override_the_defaults() {
        let n = parse(
            "[network]\nconnect-timeout-secs = 5\nread-timeout-secs = 0.5\nrequest-timeout-secs = 0\n",
        );
        assert_eq!(
            n.timeouts(),
            Ok(Timeouts {
                connect: Duration::from_secs(5),
                read: Duration::from_millis(500),
                request: None,
            })
        );
        assert_eq!(NetworkConfig::default().timeouts(), Ok(Timeouts::default()));
        let mut merged = parse("[network]\nconnect-timeout-secs = 5\n");
        merged.merge(&parse("[network]\nread-timeout-secs = 7\n"));
        assert_eq!(
            merged.timeouts().map(|t| (t.connect, t.read)),
            Ok((Duration::from_secs(5), Duration::from_secs(7)))
        );
    }

    #[test]
    fn impossible_values_are_refused() {
        assert!(
            parse("[network]\nread-timeout-secs = 0\n")
                .timeouts()
                .is_err_and(|e| e.contains("read-timeout-secs = 0"))
        );
        assert!(
            parse("[network]\nconnect-timeout-secs = -1.0\n")
                .timeouts()
                .is_err_and(|e| e.contains("connect-timeout-secs = -1"))
        );
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Wrap {
            network: NetworkConfig,
        }
        assert!(
            toml::from_str::<Wrap>("[network]\nread-timeout = 3\n").is_err(),
            "unknown keys are refused"
        );
    }
}
