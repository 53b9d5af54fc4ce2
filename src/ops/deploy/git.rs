//! The project's git state: the uncommitted-changes guard and the metadata a deploy records,
//! read with the `git` command as astro-cli reads it (`diff --quiet HEAD`, `log -1`,
//! `rev-parse`, `remote get-url origin`).

use std::path::Path;
use std::process::Command;

use crate::astro::types::DeployGit;
use crate::deploy::store::GitInfo;

/// The project's git state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitState {
    /// Not in a git work tree, or no `git` command (nothing to guard or record).
    NotRepo,
    /// Tracked files differ from HEAD.
    Dirty,
    Clean(GitMeta),
}

/// HEAD of a clean tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitMeta {
    pub commit: String,
    /// `None` on a detached HEAD.
    pub branch: Option<String>,
    pub subject: String,
    pub author: String,
    /// `origin`'s URL with any credentials removed.
    pub remote: Option<String>,
    /// The project's folder inside the repository (`None` at the root).
    pub prefix: Option<String>,
}

fn git(dir: &Path, args: &[&str]) -> Option<(bool, String)> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .ok()?;
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

/// Reads the state of the work tree holding `dir`.
pub fn state(dir: &Path) -> GitState {
    match git(dir, &["rev-parse", "--is-inside-work-tree"]) {
        Some((true, out)) if out == "true" => {}
        _ => return GitState::NotRepo,
    }
    // A repository without commits has no HEAD to compare with: nothing is committed.
    match git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"]) {
        Some((true, _)) => {}
        _ => return GitState::Dirty,
    }
    match Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["diff", "--quiet", "HEAD", "--"])
        .status()
    {
        Ok(s) if s.success() => {}
        _ => return GitState::Dirty,
    }
    let log = git(dir, &["log", "-1", "--format=%H%n%an%n%s"])
        .filter(|(ok, _)| *ok)
        .map(|(_, out)| out)
        .unwrap_or_default();
    let mut lines = log.lines();
    let commit = lines.next().unwrap_or("").to_string();
    let author = lines.next().unwrap_or("").to_string();
    let subject = lines.next().unwrap_or("").to_string();
    let branch = git(dir, &["rev-parse", "--abbrev-ref", "HEAD"])
        .filter(|(ok, out)| *ok && out != "HEAD")
        .map(|(_, out)| out);
    let remote = git(dir, &["remote", "get-url", "origin"])
        .filter(|(ok, out)| *ok && !out.is_empty())
        .map(|(_, out)| without_credentials(&out));
    let prefix = git(dir, &["rev-parse", "--show-prefix"])
        .filter(|(ok, out)| *ok && !out.is_empty())
        .map(|(_, out)| out.trim_end_matches('/').to_string());
    GitState::Clean(GitMeta {
        commit,
        branch,
        subject,
        author,
        remote,
        prefix,
    })
}

/// A remote URL with its user info removed (`https://user:token@host/x` → `https://host/x`).
pub fn without_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if path.is_empty() {
            return format!("{scheme}://{host}");
        }
        return format!("{scheme}://{host}/{path}");
    }
    url.to_string()
}

impl GitMeta {
    /// What a self-hosted deploy record keeps.
    pub fn info(&self) -> GitInfo {
        GitInfo {
            commit: self.commit.clone(),
            branch: self.branch.clone(),
        }
    }

    /// The default description: the commit's subject, cut to 72 characters (as astro-cli).
    pub fn description(&self) -> String {
        self.subject.chars().take(72).collect()
    }

    /// The `git` object of an Astro create-deploy request: GITHUB (account, repo, commit URL)
    /// for a github.com remote, GENERIC (the remote URL) otherwise.
    pub fn astro(&self) -> DeployGit {
        let github = self.remote.as_deref().and_then(github_repo);
        DeployGit {
            provider: if github.is_some() {
                "GITHUB"
            } else {
                "GENERIC"
            }
            .into(),
            commit_sha: self.commit.clone(),
            branch: self.branch.clone().unwrap_or_else(|| "HEAD".into()),
            path: self.prefix.clone(),
            author_name: self.author.clone(),
            commit_url: github
                .as_ref()
                .map(|(a, r)| format!("https://github.com/{a}/{r}/commit/{}", self.commit)),
            account: github.as_ref().map(|(a, _)| a.clone()),
            repo: github.map(|(_, r)| r),
            remote_url: match self.remote.as_deref().and_then(github_repo) {
                Some(_) => None,
                None => self.remote.clone(),
            },
        }
    }
}

/// `(account, repository)` of a github.com remote (https or ssh form).
fn github_repo(remote: &str) -> Option<(String, String)> {
    let rest = remote
        .strip_prefix("git@github.com:")
        .or_else(|| remote.strip_prefix("ssh://git@github.com/"))
        .or_else(|| remote.strip_prefix("https://github.com/"))?;
    let (account, repo) = rest.trim_end_matches('/').split_once('/')?;
    let repo = repo.trim_end_matches(".git");
    (!account.is_empty() && !repo.is_empty() && !repo.contains('/'))
        .then(|| (account.to_string(), repo.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_leave_the_remote() {
        assert_eq!(
            without_credentials("https://bot:ghp_secret@github.com/acme/dags.git"),
            "https://github.com/acme/dags.git"
        );
        assert_eq!(
            without_credentials("git@gitlab.com:acme/dags.git"),
            "git@gitlab.com:acme/dags.git"
        );
    }

    #[test]
    fn github_and_generic_metadata() {
        let meta = GitMeta {
            commit: "a".repeat(40),
            branch: Some("main".into()),
            subject: "x".repeat(80),
            author: "Ada".into(),
            remote: Some("git@github.com:acme/dags.git".into()),
            prefix: Some("airflow".into()),
        };
        let g = meta.astro();
        assert_eq!(g.provider, "GITHUB");
        assert_eq!(
            (g.account.as_deref(), g.repo.as_deref()),
            (Some("acme"), Some("dags"))
        );
        assert!(g.remote_url.is_none());
        assert_eq!(meta.description().len(), 72);
        let generic = GitMeta {
            remote: Some("https://gitlab.com/acme/dags.git".into()),
            ..meta
        }
        .astro();
        assert_eq!(generic.provider, "GENERIC");
        assert_eq!(
            generic.remote_url.as_deref(),
            Some("https://gitlab.com/acme/dags.git")
        );
        assert!(generic.commit_url.is_none());
    }
}
