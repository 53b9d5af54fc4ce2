//! Install order of a set of packages: dependencies before dependents over Pre-Depends and
//! Depends, as dpkg needs them unpacked and configured.
//!
//! Invariant: the order depends only on the set (ready packages by name; a cycle, common in
//! Debian, is broken inside a cycle that waits on nothing else, preferring a package whose
//! remaining dependencies are Depends only, so Pre-Depends are honoured whenever possible).

use std::collections::{BTreeMap, BTreeSet};

use crate::format::relation::Group;
use crate::resolution::universe::Package;

/// Topological order over the selection: dependencies before dependents, ready packages by
/// name. When only cycles remain, the break happens inside a cycle that depends on nothing
/// else left: at its first name whose remaining dependencies are Depends only, else its first.
pub fn install_order<'u>(selected: &BTreeMap<&'u str, &'u Package>) -> Vec<&'u str> {
    // name → (hard deps, soft deps) within the selection
    let mut deps: BTreeMap<&'u str, (BTreeSet<&'u str>, BTreeSet<&'u str>)> = BTreeMap::new();
    for (name, p) in selected {
        let edges = |groups: &[Group]| -> BTreeSet<&'u str> {
            let mut set = BTreeSet::new();
            for g in groups {
                for q in selected.values() {
                    if q.name != p.name && g.iter().any(|a| q.satisfies(a)) {
                        set.insert(q.name.as_str());
                    }
                }
            }
            set
        };
        deps.insert(*name, (edges(&p.pre_depends), edges(&p.depends)));
    }
    let mut order = Vec::new();
    while !deps.is_empty() {
        let ready = deps
            .iter()
            .find(|(_, (h, s))| h.is_empty() && s.is_empty())
            .map(|(n, _)| *n);
        let Some(next) = ready.or_else(|| break_cycle(&deps)) else {
            break;
        };
        deps.remove(next);
        for (h, s) in deps.values_mut() {
            h.remove(next);
            s.remove(next);
        }
        order.push(next);
    }
    order
}

type Deps<'u> = BTreeMap<&'u str, (BTreeSet<&'u str>, BTreeSet<&'u str>)>;

/// Every node reachable from `start` (itself included) over remaining dependency edges.
fn reach<'u>(deps: &Deps<'u>, start: &'u str) -> BTreeSet<&'u str> {
    let mut seen = BTreeSet::from([start]);
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        if let Some((h, s)) = deps.get(n) {
            for d in h.iter().chain(s) {
                if seen.insert(d) {
                    stack.push(d);
                }
            }
        }
    }
    seen
}

/// Picks the node to emit when no node is ready: in the first (by name) strongly connected
/// component that has no dependency outside itself.
fn break_cycle<'u>(deps: &Deps<'u>) -> Option<&'u str> {
    let reaches: BTreeMap<&str, BTreeSet<&str>> =
        deps.keys().map(|n| (*n, reach(deps, n))).collect();
    for (n, from_n) in &reaches {
        let component: BTreeSet<&str> = from_n
            .iter()
            .copied()
            .filter(|m| reaches.get(m).is_some_and(|r| r.contains(n)))
            .collect();
        if *from_n != component {
            continue; // this cycle waits for something outside it
        }
        let hard_free = component
            .iter()
            .find(|m| deps.get(*m).is_some_and(|(h, _)| h.is_empty()));
        return hard_free.or(component.first()).copied();
    }
    deps.keys().next().copied()
}
