//! The order pip installs a resolved set in, which decides whose bytes stay where two
//! distributions ship the same file (pip overwrites silently; dbt's adapters and dbt-core
//! both ship `dbt/__init__.py`, for one).
//!
//! pip (`resolution/resolvelib/resolver.py`, `get_installation_order` and
//! `get_topological_weights`) weighs each distribution in the graph whose root requires the
//! user's requirements: leaves (no dependency left) are pruned round after round, each
//! round's leaves weighing the number of nodes still in the graph minus one; what remains
//! (cycles) weighs the length of the longest path from the root to it. It installs by weight,
//! then by name, both descending: dependencies before what needs them, the user's
//! requirements last.

use std::collections::{BTreeMap, BTreeSet};

/// `deps`: each distribution (normalised name) of the set and the ones of the set it requires;
/// `direct`: the user's requirements. Every name of `deps`, in pip's installation order.
pub fn pip_order(
    deps: &BTreeMap<String, BTreeSet<String>>,
    direct: &BTreeSet<String>,
) -> Vec<String> {
    // The graph: `None` is the root.
    let mut children: BTreeMap<Option<&str>, BTreeSet<&str>> = BTreeMap::new();
    children.insert(
        None,
        direct
            .iter()
            .filter(|d| deps.contains_key(*d))
            .map(String::as_str)
            .collect(),
    );
    for (name, reqs) in deps {
        children.insert(
            Some(name.as_str()),
            reqs.iter()
                .filter(|r| deps.contains_key(*r) && *r != name)
                .map(String::as_str)
                .collect(),
        );
    }
    let mut weights: BTreeMap<&str, usize> = BTreeMap::new();
    loop {
        let leaves: Vec<&str> = children
            .iter()
            .filter_map(|(k, c)| k.filter(|_| c.is_empty()))
            .collect();
        if leaves.is_empty() {
            break;
        }
        let weight = children.len() - 1;
        for leaf in &leaves {
            weights.insert(leaf, weight);
            children.remove(&Some(*leaf));
        }
        for c in children.values_mut() {
            for leaf in &leaves {
                c.remove(leaf);
            }
        }
    }
    // What is left has cycles: the longest path from the root, cycles cut where they close.
    let mut path: Vec<Option<&str>> = Vec::new();
    visit(None, &children, &mut path, &mut weights);
    let mut order: Vec<(usize, &str)> = deps
        .keys()
        .map(|n| (weights.get(n.as_str()).copied().unwrap_or(0), n.as_str()))
        .collect();
    order.sort_by(|a, b| b.cmp(a));
    order.into_iter().map(|(_, n)| n.to_string()).collect()
}

fn visit<'a>(
    node: Option<&'a str>,
    children: &BTreeMap<Option<&'a str>, BTreeSet<&'a str>>,
    path: &mut Vec<Option<&'a str>>,
    weights: &mut BTreeMap<&'a str, usize>,
) {
    if path.contains(&node) {
        return;
    }
    path.push(node);
    if let Some(c) = children.get(&node) {
        for child in c {
            visit(Some(child), children, path, weights);
        }
    }
    path.pop();
    if let Some(n) = node {
        let w = weights.entry(n).or_insert(0);
        *w = (*w).max(path.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        edges
            .iter()
            .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dependencies_come_before_what_needs_them_and_the_requirements_last() {
        // dbt-postgres → dbt-core, dbt-adapters; dbt-adapters → dbt-core; dbt-core → six.
        let deps = graph(&[
            ("dbt-postgres", &["dbt-core", "dbt-adapters"]),
            ("dbt-adapters", &["dbt-core"]),
            ("dbt-core", &["six"]),
            ("six", &[]),
        ]);
        assert_eq!(
            pip_order(&deps, &set(&["dbt-postgres"])),
            ["six", "dbt-core", "dbt-adapters", "dbt-postgres"]
        );
    }

    #[test]
    fn ties_go_by_name_descending_as_pip_sorts_them() {
        let deps = graph(&[("a", &[]), ("b", &[]), ("c", &["a", "b"])]);
        // a and b are leaves of the first round (weight 3), c of the second (weight 1).
        assert_eq!(pip_order(&deps, &set(&["c"])), ["b", "a", "c"]);
    }

    #[test]
    fn cycles_weigh_their_longest_path_from_the_root() {
        // x ⇄ y, both from the root through r; z a leaf.
        let deps = graph(&[("r", &["x"]), ("x", &["y", "z"]), ("y", &["x"]), ("z", &[])]);
        let order = pip_order(&deps, &set(&["r"]));
        assert_eq!(order.first().map(String::as_str), Some("z"));
        assert_eq!(order.last().map(String::as_str), Some("r"));
        // root → r → x → y: y (path 3) before x (path 2).
        assert_eq!(order, ["z", "y", "x", "r"]);
    }
}
