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
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4
                && !f[0].is_empty()
                && let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse())
            {
                users.entry(f[0].to_string()).or_insert((uid, gid));
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
        Accounts { users, groups }
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
}
