//! The comms log: markers and threads.
//!
//! Markers: `⚑` open delegation, `⚑✓` done, `⚑✗` blocked, `❓` ask, `↩`
//! reply, `✦` operator message, `⚠` file-conflict warning, `·` plain
//! message.
//!
//! A thread is an ask with its replies, or a delegation with its outcome:
//! the root message (the one no other entry in the log answers for it) and
//! every entry whose `reply_to` names the root's `request_id` or
//! `message_id`, transitively (a reply to a reply joins the thread).

use oxtail_proto::status::{CommsEntry, CommsKind, ObligationState};
use std::collections::{BTreeSet, HashMap};

/// The marker of an entry.
pub fn marker(e: &CommsEntry) -> &'static str {
    match e.kind {
        CommsKind::Ask => "❓",
        CommsKind::Reply => "↩",
        CommsKind::Delegation => match e.obligation {
            Some(ObligationState::Done) => "⚑✓",
            Some(ObligationState::Blocked) => "⚑✗",
            _ => "⚑",
        },
        CommsKind::Done => "⚑✓",
        CommsKind::Blocked => "⚑✗",
        CommsKind::Operator => "✦",
        CommsKind::Conflict => "⚠",
        CommsKind::Message | CommsKind::Other => "·",
    }
}

/// Index of the thread root of entry `i`: follow `reply_to` to the entry it
/// names (by `request_id` or `message_id`) while that entry is in the log.
pub fn thread_root(entries: &[CommsEntry], i: usize) -> usize {
    let by_handle = handles(entries);
    let mut cur = i;
    let mut seen = BTreeSet::new();
    while seen.insert(cur) {
        let Some(parent) = entries[cur]
            .reply_to
            .as_deref()
            .and_then(|h| by_handle.get(h))
        else {
            break;
        };
        if *parent == cur {
            break;
        }
        cur = *parent;
    }
    cur
}

/// Indexes of the whole thread containing entry `i`, in log order.
pub fn thread(entries: &[CommsEntry], i: usize) -> Vec<usize> {
    if i >= entries.len() {
        return Vec::new();
    }
    let root = thread_root(entries, i);
    // children by handle
    let mut in_thread = BTreeSet::from([root]);
    let mut frontier = vec![root];
    let mut answers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, e) in entries.iter().enumerate() {
        if let Some(r) = e.reply_to.as_deref() {
            answers.entry(r).or_default().push(j);
        }
    }
    while let Some(v) = frontier.pop() {
        let e = &entries[v];
        for h in [Some(e.message_id.as_str()), e.request_id.as_deref()]
            .into_iter()
            .flatten()
        {
            for &c in answers.get(h).map(Vec::as_slice).unwrap_or(&[]) {
                if in_thread.insert(c) {
                    frontier.push(c);
                }
            }
        }
    }
    in_thread.into_iter().collect()
}

fn handles(entries: &[CommsEntry]) -> HashMap<&str, usize> {
    let mut m = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        m.insert(e.message_id.as_str(), i);
        if let Some(r) = e.request_id.as_deref() {
            m.insert(r, i);
        }
    }
    m
}

/// Who → whom, with names when known.
pub fn route(e: &CommsEntry) -> (String, String) {
    let name = |n: &Option<String>, id: &str| {
        n.clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| crate::model::short_id(id))
    };
    (name(&e.from_name, &e.from), name(&e.to_name, &e.to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, kind: CommsKind, req: Option<&str>, reply_to: Option<&str>) -> CommsEntry {
        CommsEntry {
            message_id: id.into(),
            kind,
            request_id: req.map(Into::into),
            reply_to: reply_to.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn markers() {
        let mut d = entry("m", CommsKind::Delegation, None, None);
        d.obligation = Some(ObligationState::Open);
        assert_eq!(marker(&d), "⚑");
        d.obligation = Some(ObligationState::Done);
        assert_eq!(marker(&d), "⚑✓");
        d.obligation = Some(ObligationState::Blocked);
        assert_eq!(marker(&d), "⚑✗");
        assert_eq!(marker(&entry("a", CommsKind::Ask, None, None)), "❓");
        assert_eq!(marker(&entry("r", CommsKind::Reply, None, None)), "↩");
    }

    #[test]
    fn an_ask_thread_collects_its_replies_by_request_id_and_message_id() {
        let log = vec![
            entry("m1", CommsKind::Ask, Some("req1"), None),
            entry("m2", CommsKind::Message, None, None),
            entry("m3", CommsKind::Reply, None, Some("req1")),
            entry("m4", CommsKind::Reply, None, Some("m3")),
            entry("m5", CommsKind::Reply, None, Some("unknown")),
        ];
        assert_eq!(thread(&log, 0), vec![0, 2, 3]);
        assert_eq!(thread(&log, 3), vec![0, 2, 3], "from any member");
        assert_eq!(thread(&log, 1), vec![1]);
        assert_eq!(thread(&log, 4), vec![4], "a reply whose root aged out");
        assert!(thread(&log, 9).is_empty());
    }

    #[test]
    fn a_delegation_thread_has_its_outcome() {
        let log = vec![
            entry("d1", CommsKind::Delegation, None, None),
            entry("o1", CommsKind::Done, None, Some("d1")),
        ];
        assert_eq!(thread(&log, 1), vec![0, 1]);
    }

    #[test]
    fn reply_loops_terminate() {
        let log = vec![
            entry("a", CommsKind::Reply, None, Some("b")),
            entry("b", CommsKind::Reply, None, Some("a")),
        ];
        assert_eq!(thread(&log, 0), vec![0, 1]);
    }
}
