//! `liftoff login`: reads an Astro API token from standard input, checks it, stores it with
//! mode 0600 where deploys find it (`ASTRO_API_TOKEN` still wins).

use std::io::Read as _;

use anyhow::{Context as _, Result};

use crate::cli::LoginArgs;
use liftoff::astro::{ApiToken, TokenSource, token};

pub fn run(args: LoginArgs) -> Result<()> {
    let mut text = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .context("reading the token from standard input")?;
    let t = ApiToken::new(text.trim());
    if t.expose().is_empty() {
        return Err(liftoff::errors::with_hint(
            anyhow::anyhow!("no token on standard input"),
            "pipe it in: `liftoff login < token-file` or `printenv TOKEN | liftoff login`",
        ));
    }
    let claims = token::check(&t, TokenSource::Stored, super::deploy::now())?;
    if args.check {
        eprintln!(
            "the token is an Astro API token{}",
            expiry(claims.expires_at)
        );
        return Ok(());
    }
    let path = super::deploy::token_path()
        .context("no HOME or XDG_CONFIG_HOME to store the token under")?;
    token::write_stored(&path, &t)?;
    eprintln!(
        "stored the Astro API token in {} (mode 0600){}",
        path.display(),
        expiry(claims.expires_at)
    );
    Ok(())
}

fn expiry(at: Option<u64>) -> String {
    match at {
        Some(t) => format!("; it expires at {}", liftoff::image::config::rfc3339(t)),
        None => String::new(),
    }
}
