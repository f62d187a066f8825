//! The wait-graph: who awaits whom, cycles, deadlocks and orphaned waits.
//!
//! An edge runs from an asker to its target while an ask is in flight or
//! pending. A cycle is a deadlock only when every member is alive (`live` or
//! `idle`): a cycle through a dead agent will never make progress either, but
//! it is reported as an orphaned wait instead, because the fix is different
//! (restart or reassign, not break the cycle). A wait whose target is dead or
//! ended is orphaned.

use oxtail_proto::status::{LivenessState, WaitEdge};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Every elementary cycle class of a directed graph: one ordered cycle per
/// strongly connected component that has a cycle (more than one node, or a
/// self-loop). Each cycle starts at the component's smallest node id and
/// follows a shortest path back to it, so the result is deterministic.
/// Cycles are sorted by their first node.
///
/// Edges may repeat and may name nodes in any order; the function is pure.
pub fn cycles(edges: &[(&str, &str)]) -> Vec<Vec<String>> {
    // Adjacency with sorted, deduplicated neighbours (determinism).
    let mut adj: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (a, b) in edges {
        adj.entry(a).or_default().insert(b);
        adj.entry(b).or_default();
    }
    let nodes: Vec<&str> = adj.keys().copied().collect();
    let index_of: BTreeMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let succ: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| adj[n].iter().map(|m| index_of[m]).collect())
        .collect();
    let comp = tarjan(&succ);
    let ncomp = comp.iter().copied().max().map_or(0, |m| m + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); ncomp];
    for (v, c) in comp.iter().enumerate() {
        members[*c].push(v);
    }
    let mut out = Vec::new();
    for m in members {
        let Some(&start) = m.iter().min() else {
            continue;
        };
        let self_loop = succ[start].contains(&start);
        if m.len() == 1 && !self_loop {
            continue;
        }
        if self_loop {
            out.push(vec![nodes[start].to_string()]);
            continue;
        }
        // Shortest path start → … → start inside the component (BFS).
        let inside: BTreeSet<usize> = m.iter().copied().collect();
        let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
        let mut q = VecDeque::from([start]);
        let mut closing = None;
        'bfs: while let Some(v) = q.pop_front() {
            for &w in &succ[v] {
                if !inside.contains(&w) {
                    continue;
                }
                if w == start {
                    closing = Some(v);
                    break 'bfs;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(w) {
                    e.insert(v);
                    q.push_back(w);
                }
            }
        }
        let Some(mut v) = closing else { continue };
        let mut path = vec![v];
        while v != start {
            v = prev[&v];
            path.push(v);
        }
        path.reverse();
        out.push(path.into_iter().map(|i| nodes[i].to_string()).collect());
    }
    out.sort();
    out
}

/// Tarjan's strongly connected components, iterative (no recursion limit).
/// Returns the component number of every node.
fn tarjan(succ: &[Vec<usize>]) -> Vec<usize> {
    let n = succ.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![usize::MAX; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut next_comp = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, next successor position)
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if *pos == 0 && index[v] == usize::MAX {
                index[v] = next_index;
                low[v] = next_index;
                next_index += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = succ[v].get(*pos) {
                *pos += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = next_comp;
                    if w == v {
                        break;
                    }
                }
                next_comp += 1;
            }
        }
    }
    comp
}

/// A cycle of waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitCycle {
    /// Session ids in wait order: each awaits the next, the last awaits the
    /// first.
    pub members: Vec<String>,
    /// Every member is alive: nobody can break the cycle by answering.
    pub deadlock: bool,
}

/// What the wait-graph says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WaitReport {
    /// Deadlocks first (cycles whose members are all alive), then other
    /// cycles (through a member that is not alive).
    pub cycles: Vec<WaitCycle>,
    /// Indexes into the input edges whose target is dead or ended.
    pub orphaned: Vec<usize>,
}

impl WaitReport {
    /// Whether any cycle is a deadlock.
    pub fn has_deadlock(&self) -> bool {
        self.cycles.iter().any(|c| c.deadlock)
    }
}

/// Analyses the wait-graph. `liveness` says the state of a session id (an
/// id it does not know should read `Unknown`, which is neither alive nor
/// gone: never a deadlock member, never an orphaning target).
///
/// Deadlocks are found among alive agents only, so a cycle through a dead
/// agent never hides a deadlock among the others.
pub fn analyze(edges: &[WaitEdge], liveness: &dyn Fn(&str) -> LivenessState) -> WaitReport {
    let alive = |id: &str| liveness(id).is_alive();
    let all: Vec<(&str, &str)> = edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str()))
        .collect();
    let live_edges: Vec<(&str, &str)> = all
        .iter()
        .copied()
        .filter(|(a, b)| alive(a) && alive(b))
        .collect();
    let mut report = WaitReport::default();
    let deadlocks = cycles(&live_edges);
    let in_deadlock: BTreeSet<&str> = deadlocks
        .iter()
        .flat_map(|c| c.iter().map(String::as_str))
        .collect();
    let others: Vec<Vec<String>> = cycles(&all)
        .into_iter()
        .filter(|c| !c.iter().any(|m| in_deadlock.contains(m.as_str())))
        .collect();
    report
        .cycles
        .extend(deadlocks.iter().cloned().map(|members| WaitCycle {
            members,
            deadlock: true,
        }));
    report
        .cycles
        .extend(others.into_iter().map(|members| WaitCycle {
            members,
            deadlock: false,
        }));
    report.orphaned = edges
        .iter()
        .enumerate()
        .filter(|(_, e)| liveness(&e.to).is_gone())
        .map(|(i, _)| i)
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxtail_proto::status::WaitKind;
    use std::collections::HashMap;

    fn edge(from: &str, to: &str) -> WaitEdge {
        WaitEdge {
            from: from.into(),
            to: to.into(),
            request_id: format!("req_{from}_{to}"),
            kind: WaitKind::InFlight,
            ..Default::default()
        }
    }

    fn states(pairs: &[(&str, LivenessState)]) -> HashMap<String, LivenessState> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn run(edges: &[WaitEdge], st: &HashMap<String, LivenessState>) -> WaitReport {
        analyze(edges, &|id| {
            st.get(id).copied().unwrap_or(LivenessState::Unknown)
        })
    }

    use LivenessState::*;

    #[test]
    fn no_edges_no_cycles() {
        assert!(cycles(&[]).is_empty());
        assert_eq!(run(&[], &HashMap::new()), WaitReport::default());
    }

    #[test]
    fn a_chain_is_not_a_cycle() {
        assert!(cycles(&[("a", "b"), ("b", "c"), ("c", "d")]).is_empty());
    }

    #[test]
    fn two_cycle_and_three_cycle_are_ordered_from_smallest() {
        assert_eq!(cycles(&[("b", "a"), ("a", "b")]), vec![vec!["a", "b"]]);
        assert_eq!(
            cycles(&[("c", "a"), ("a", "b"), ("b", "c"), ("x", "a")]),
            vec![vec!["a", "b", "c"]]
        );
    }

    #[test]
    fn self_loop_is_a_cycle() {
        assert_eq!(cycles(&[("a", "a")]), vec![vec!["a"]]);
    }

    #[test]
    fn two_disjoint_cycles_and_duplicate_edges() {
        let c = cycles(&[
            ("p", "q"),
            ("q", "p"),
            ("q", "p"),
            ("a", "b"),
            ("b", "a"),
            ("b", "z"),
        ]);
        assert_eq!(c, vec![vec!["a", "b"], vec!["p", "q"]]);
    }

    #[test]
    fn shortest_cycle_through_smallest_node_in_a_dense_component() {
        // a→b→c→d→a plus a shortcut a→d: the shortest cycle through a is a→d→a.
        let c = cycles(&[("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"), ("a", "d")]);
        assert_eq!(c, vec![vec!["a", "d"]]);
    }

    #[test]
    fn long_chain_does_not_overflow() {
        let names: Vec<String> = (0..20_000).map(|i| format!("n{i:05}")).collect();
        let mut e: Vec<(&str, &str)> = names
            .windows(2)
            .map(|w| (w[0].as_str(), w[1].as_str()))
            .collect();
        e.push((names.last().unwrap().as_str(), names[0].as_str()));
        let c = cycles(&e);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].len(), 20_000);
    }

    #[test]
    fn deadlock_only_when_every_member_is_alive() {
        let edges = [edge("a", "b"), edge("b", "a")];
        let r = run(&edges, &states(&[("a", Live), ("b", Idle)]));
        assert_eq!(
            r.cycles,
            vec![WaitCycle {
                members: vec!["a".into(), "b".into()],
                deadlock: true
            }]
        );
        assert!(r.has_deadlock());
        assert!(r.orphaned.is_empty());

        let r = run(&edges, &states(&[("a", Live), ("b", Dead)]));
        assert!(!r.has_deadlock());
        assert_eq!(r.cycles.len(), 1);
        assert!(!r.cycles[0].deadlock);
        assert_eq!(r.orphaned, vec![0], "a awaits dead b");

        // Unknown liveness is not alive: no deadlock claimed, not orphaned.
        let r = run(&edges, &states(&[("a", Live)]));
        assert!(!r.has_deadlock());
        assert!(r.orphaned.is_empty());
    }

    #[test]
    fn a_dead_member_does_not_hide_a_live_deadlock() {
        // a↔b alive deadlock; c (dead) also awaits a and a awaits c.
        let edges = [
            edge("a", "b"),
            edge("b", "a"),
            edge("a", "c"),
            edge("c", "a"),
        ];
        let r = run(&edges, &states(&[("a", Live), ("b", Live), ("c", Dead)]));
        assert!(r.has_deadlock());
        assert_eq!(r.cycles[0].members, vec!["a", "b"]);
        assert_eq!(r.orphaned, vec![2]);
    }

    #[test]
    fn ended_target_orphans_the_wait() {
        let edges = [edge("a", "b")];
        let r = run(&edges, &states(&[("a", Live), ("b", Ended)]));
        assert!(r.cycles.is_empty());
        assert_eq!(r.orphaned, vec![0]);
    }
}
