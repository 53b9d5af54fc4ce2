//! HEALTHCHECK arguments: `NONE`, or `[--interval/--timeout/--start-period/--start-interval/
//! --retries] CMD command`, with Go-style durations converted to nanoseconds.

use super::dockerfile::{DockerfileError, Healthcheck};
use super::instruction::cmd_form;

pub(crate) fn healthcheck(
    flags: &[(String, Option<String>)],
    args: &str,
    line: usize,
) -> Result<Healthcheck, DockerfileError> {
    let err = |message: String| DockerfileError::new(line, message);
    let (word, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    if word.eq_ignore_ascii_case("none") {
        if !flags.is_empty() || !rest.trim().is_empty() {
            return Err(err("HEALTHCHECK NONE takes no options or arguments".into()));
        }
        return Ok(Healthcheck::None);
    }
    if !word.eq_ignore_ascii_case("cmd") || rest.trim().is_empty() {
        return Err(err(
            "HEALTHCHECK must be `HEALTHCHECK NONE` or `HEALTHCHECK [OPTIONS] CMD command`".into(),
        ));
    }
    let mut durations = [0u64; 4];
    let mut retries = 0;
    for (name, value) in flags {
        let value = value
            .as_deref()
            .ok_or_else(|| err(format!("HEALTHCHECK --{name} needs a value")))?;
        let slot = match name.as_str() {
            "interval" => 0,
            "timeout" => 1,
            "start-period" => 2,
            "start-interval" => 3,
            _ => {
                retries = value
                    .parse::<u64>()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or_else(|| {
                        err(format!(
                            "HEALTHCHECK --retries={}: expected a positive whole number",
                            liftoff_core::quote::token(value)
                        ))
                    })?;
                continue;
            }
        };
        let nanos = parse_duration(value).ok_or_else(|| {
            err(format!(
                "HEALTHCHECK --{name}={}: expected a duration such as 30s, 1m30s or 500ms",
                liftoff_core::quote::token(value)
            ))
        })?;
        if nanos != 0 && nanos < 1_000_000 {
            return Err(err(format!(
                "HEALTHCHECK --{name}={} cannot be less than 1ms",
                liftoff_core::quote::token(value)
            )));
        }
        durations[slot] = nanos;
    }
    let [interval, timeout, start_period, start_interval] = durations;
    Ok(Healthcheck::Cmd {
        cmd: cmd_form(rest.trim(), line)?,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    })
}

/// Go's `time.ParseDuration` for non-negative values, in nanoseconds.
pub(crate) fn parse_duration(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    (total < 1.8e19).then_some(total.round() as u64)
}
