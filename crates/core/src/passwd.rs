//! `/etc/passwd` and `/etc/group` of the base image (pure parsers), and `--chown` resolution the
//! way Docker does it: names are looked up in the base's own files, numbers are taken as they are.

use std::collections::BTreeMap;

/// Users and groups of the base image, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Accounts {
    /// user name → (uid, primary gid)
    pub users: BTreeMap<String, (u32, u32)>,
    /// group name → gid
    pub groups: BTreeMap<String, u32>,
    /// user name → home directory
    #[serde(default)]
    pub homes: BTreeMap<String, String>,
}

/// Who a `RUN` runs as: what the container runtime (runc) derives from `USER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// The user's home directory (`HOME` when the environment sets none).
    pub home: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChownError {
    #[error("unknown user {0:?}: the base image's /etc/passwd has no such user")]
    UnknownUser(String),
    #[error("unknown group {0:?}: the base image's /etc/group has no such group")]
    UnknownGroup(String),
    #[error("invalid owner {0:?}: expected USER[:GROUP] with names or numeric ids")]
    Invalid(String),
}

impl Accounts {
    /// Parses the two files. Malformed lines are skipped the way libc's getpwnam skips them.
    pub fn parse(passwd: &str, group: &str) -> Accounts {
        let mut users = BTreeMap::new();
        let mut homes = BTreeMap::new();
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4
                && !f[0].is_empty()
                && let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse())
            {
                users.entry(f[0].to_string()).or_insert((uid, gid));
                if let Some(home) = f.get(5).filter(|h| !h.is_empty()) {
                    homes.entry(f[0].to_string()).or_insert(home.to_string());
                }
            }
        }
        let mut groups = BTreeMap::new();
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 3
                && !f[0].is_empty()
                && let Ok(gid) = f[2].parse()
            {
                groups.entry(f[0].to_string()).or_insert(gid);
            }
        }
        Accounts {
            users,
            groups,
            homes,
        }
    }

    /// Resolves a `USER` value (`user`, `user:group`, `uid`, `uid:gid`; empty is root) as runc
    /// does for a container's process: a name must be in /etc/passwd and brings its primary
    /// group and home; a number not in /etc/passwd runs with gid 0 and home `/`.
    pub fn resolve_user(&self, spec: &str) -> Result<ExecUser, ChownError> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if group == Some("") || (user.is_empty() && group.is_some()) {
            return Err(ChownError::Invalid(spec.to_string()));
        }
        let user = if user.is_empty() { "0" } else { user };
        let entry = match user.parse::<u32>() {
            Ok(uid) => self.users.iter().find(|(_, (u, _))| *u == uid),
            Err(_) => Some(
                self.users
                    .get_key_value(user)
                    .ok_or_else(|| ChownError::UnknownUser(user.to_string()))?,
            ),
        };
        let (uid, mut gid, home) = match entry {
            Some((name, (uid, gid))) => (
                *uid,
                *gid,
                self.homes.get(name).cloned().unwrap_or_else(|| "/".into()),
            ),
            None => (user.parse::<u32>().unwrap_or(0), 0, "/".to_string()),
        };
        if let Some(g) = group {
            gid = match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => *self
                    .groups
                    .get(g)
                    .ok_or_else(|| ChownError::UnknownGroup(g.to_string()))?,
            };
        }
        Ok(ExecUser { uid, gid, home })
    }

    /// Resolves a `--chown` value (`user`, `user:group`, `uid:gid`, ...) to numeric ids.
    /// As in Docker: a user without a group takes the user's primary group when the user is a
    /// name, and gid = uid when the user is numeric.
    pub fn resolve_chown(&self, spec: &str) -> Result<(u32, u32), ChownError> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if user.is_empty() || group == Some("") {
            return Err(ChownError::Invalid(spec.to_string()));
        }
        let (uid, primary_gid) = match user.parse::<u32>() {
            Ok(uid) => (
                uid,
                self.users
                    .values()
                    .find(|(u, _)| *u == uid)
                    .map(|(_, g)| *g)
                    .unwrap_or(uid),
            ),
            Err(_) => *self
                .users
                .get(user)
                .ok_or_else(|| ChownError::UnknownUser(user.to_string()))?,
        };
        let gid = match group {
            None => {
                if user.parse::<u32>().is_ok() {
                    uid
                } else {
                    primary_gid
                }
            }
            Some(g) => match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => *self
                    .groups
                    .get(g)
                    .ok_or_else(|| ChownError::UnknownGroup(g.to_string()))?,
            },
        };
        Ok((uid, gid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        Accounts::parse(
            "root:x:0:0:root:/root:/bin/bash\nastro:x:50000:0::/home/astro:/bin/bash\nbroken line\n",
            "root:x:0:\nastro:x:50000:\nastrogroup:x:101:astro\n",
        )
    }

    #[test]
    fn chown_forms_resolve_like_docker() {
        let a = accounts();
        assert_eq!(a.resolve_chown("astro:0"), Ok((50000, 0)));
        assert_eq!(a.resolve_chown("astro:astro"), Ok((50000, 50000)));
        assert_eq!(a.resolve_chown("astro"), Ok((50000, 0)));
        assert_eq!(a.resolve_chown("astro:astrogroup"), Ok((50000, 101)));
        assert_eq!(a.resolve_chown("1234"), Ok((1234, 1234)));
        assert_eq!(a.resolve_chown("1234:5"), Ok((1234, 5)));
        assert_eq!(
            a.resolve_chown("nobody:0"),
            Err(ChownError::UnknownUser("nobody".into()))
        );
        assert_eq!(
            a.resolve_chown("astro:nogroup"),
            Err(ChownError::UnknownGroup("nogroup".into()))
        );
        assert_eq!(a.resolve_chown(":0"), Err(ChownError::Invalid(":0".into())));
    }

    #[test]
    fn users_resolve_like_runc() {
        let a = accounts();
        let user = |uid, gid, home: &str| {
            Ok(ExecUser {
                uid,
                gid,
                home: home.into(),
            })
        };
        assert_eq!(a.resolve_user(""), user(0, 0, "/root"));
        assert_eq!(a.resolve_user("root"), user(0, 0, "/root"));
        assert_eq!(a.resolve_user("astro"), user(50000, 0, "/home/astro"));
        assert_eq!(a.resolve_user("50000"), user(50000, 0, "/home/astro"));
        assert_eq!(
            a.resolve_user("astro:astro"),
            user(50000, 50000, "/home/astro")
        );
        assert_eq!(a.resolve_user("1234"), user(1234, 0, "/"));
        assert_eq!(a.resolve_user("1234:7"), user(1234, 7, "/"));
        assert_eq!(
            a.resolve_user("nobody"),
            Err(ChownError::UnknownUser("nobody".into()))
        );
        assert_eq!(
            a.resolve_user("astro:nogroup"),
            Err(ChownError::UnknownGroup("nogroup".into()))
        );
        assert_eq!(
            a.resolve_user("astro:"),
            Err(ChownError::Invalid("astro:".into()))
        );
    }
}
