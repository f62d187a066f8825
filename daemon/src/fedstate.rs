//! Federation's pure side (issue 16): what is journaled about messages to
//! and from agents on other machines, what the tools read about remote
//! agents, the federated project key, and the wire envelope.
//!
//! The I/O (the NATS connection, JetStream, the presence bucket, git) is
//! `crate::federation`'s, on a tokio task; everything here is pure and is
//! called by [`crate::state::apply`], [`crate::tools`] and the actor.
//!
//! A federated project is keyed by [`project_key`]: the repository's root
//! commit plus its normalized `origin` URL, hashed, or
//! `OXTAIL_FEDERATION_PROJECT`. A project without a key is local-only: none
//! of its rows are published and no remote message is delivered into it.

use crate::state::{Message, MessageId, SessionId, State};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Most sent-to-remote records kept for `message_status` (oldest go first).
pub const SENT_MAX: usize = 10_000;

/// Where a remote agent lives: its federated project key, its daemon and
/// host. Also the sender's side of an [`Envelope`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct RemotePeer {
    /// The federated project key ([`project_key`]).
    pub key: String,
    /// The remote daemon's id (stable per `OXTAIL_HOME`).
    pub daemon: String,
    /// The remote machine's host name.
    pub host: String,
    /// The agent's name there, when it has one.
    pub name: Option<String>,
}

/// A message to a remote agent, journaled before it leaves
/// ([`crate::state::Command::FedQueue`]) and kept until JetStream
/// acknowledged it ([`crate::state::Command::FedSent`]): the durable outbox.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The message (`to` is the remote session id).
    pub message: Message,
    /// Where the receiver lives.
    pub to: RemotePeer,
    /// The sender's `wake` argument (`Some(true)` auto, `Some(false)` off),
    /// applied by the receiving daemon, which runs the wake.
    pub wake: Option<bool>,
    /// The tool that sent it.
    pub tool: String,
}

/// A message JetStream acknowledged: what `message_status` says about it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SentRemote {
    /// The message.
    pub message_id: MessageId,
    /// The sender (local session).
    pub from: SessionId,
    /// The receiver (remote session).
    pub to: SessionId,
    /// Where the receiver lives.
    pub peer: RemotePeer,
    /// When it was queued, ms since the epoch.
    pub enqueued_ms: u64,
    /// When JetStream acknowledged it, ms since the epoch.
    pub sent_ms: u64,
    /// The receiving daemon's receipt, once it came back (best effort).
    pub delivered: Option<RemoteReceipt>,
}

/// A receipt from the receiving daemon: its agent has the message
/// ([`crate::state::Command::FedDelivered`]). Sent best effort after the
/// receiver's `Drain`; not journaled there, so one lost to a crash or a
/// down link leaves the sender at `sent_remote`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RemoteReceipt {
    /// The message.
    pub message_id: MessageId,
    /// The receiving session.
    pub to: SessionId,
    /// How it was handed over (`read_my_messages`, `pre_tool_use`, …).
    pub via: String,
    /// When, ms since the epoch (the receiver's clock).
    pub delivered_ms: u64,
}

/// The JSON put on the stream for a receipt.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ReceiptEnvelope {
    /// Envelope version (1).
    pub v: u32,
    /// The receipt.
    pub receipt: RemoteReceipt,
    /// The receiving daemon (key, daemon, host).
    pub from: RemotePeer,
}

/// Federation's durable state. Not part of [`State`]'s postcard layout
/// (`#[serde(skip)]` there): the codec writes it after the state in a
/// snapshot (format byte `0x03`) only when it is not empty, so journals and
/// snapshots without federation keep the v2 layout byte for byte.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct FedState {
    /// Messages to remote agents not yet acknowledged by JetStream, oldest
    /// first: flushed in this order when the link is up.
    pub outbox: VecDeque<Outgoing>,
    /// Messages JetStream acknowledged, oldest first (at most [`SENT_MAX`]).
    pub sent: VecDeque<SentRemote>,
    /// Remote senders of messages received here: where a reply goes, even
    /// while the link (and so presence) is down.
    pub peers: BTreeMap<SessionId, RemotePeer>,
}

impl FedState {
    /// True when there is nothing to keep (a snapshot then stays v2).
    pub fn is_empty(&self) -> bool {
        self.outbox.is_empty() && self.sent.is_empty() && self.peers.is_empty()
    }
}

/// Applies [`crate::state::Command::FedQueue`].
pub fn apply_queue(fed: &mut FedState, out: &Outgoing) {
    if !fed
        .outbox
        .iter()
        .any(|o| o.message.message_id == out.message.message_id)
    {
        fed.outbox.push_back(out.clone());
    }
}

/// Applies [`crate::state::Command::FedSent`]: the message leaves the
/// outbox and is remembered as sent.
pub fn apply_sent(fed: &mut FedState, message_id: &str, at_ms: u64) {
    let Some(i) = fed
        .outbox
        .iter()
        .position(|o| o.message.message_id == message_id)
    else {
        return;
    };
    let Some(o) = fed.outbox.remove(i) else {
        return;
    };
    fed.sent.push_back(SentRemote {
        message_id: o.message.message_id,
        from: o.message.from,
        to: o.message.to,
        peer: o.to,
        enqueued_ms: o.message.enqueued_ms,
        sent_ms: at_ms,
        delivered: None,
    });
    while fed.sent.len() > SENT_MAX {
        fed.sent.pop_front();
    }
}

/// Applies [`crate::state::Command::FedDelivered`].
pub fn apply_delivered(fed: &mut FedState, receipt: &RemoteReceipt) {
    if let Some(s) = fed
        .sent
        .iter_mut()
        .rev()
        .find(|s| s.message_id == receipt.message_id)
    {
        s.delivered = Some(receipt.clone());
    }
}

/// Applies [`crate::state::Command::FedPeer`].
pub fn apply_peer(fed: &mut FedState, session_id: &str, peer: &RemotePeer) {
    fed.peers.insert(session_id.to_string(), peer.clone());
}

/// One agent as published in the presence bucket.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct PresenceRow {
    /// Its session id.
    pub session_id: SessionId,
    /// Its name.
    pub name: Option<String>,
    /// `claude-code`, `codex`, ….
    pub client_type: String,
    /// Its state card.
    pub purpose: Option<String>,
    /// `live`, `dead`, `unknown` (as its own daemon sees it).
    pub liveness: String,
    /// Its work tree on its machine.
    pub worktree: String,
    /// Its branch.
    pub branch: Option<String>,
}

/// The value of one presence key (`<project key>.<daemon id>`), JSON.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Presence {
    /// The publishing daemon.
    pub daemon: String,
    /// Its host name.
    pub host: String,
    /// Its agents in the project.
    pub rows: Vec<PresenceRow>,
}

/// A remote agent as this daemon knows it (ephemeral, in [`FedView`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRow {
    /// Where it lives.
    pub peer: RemotePeer,
    /// What its daemon published.
    pub row: PresenceRow,
    /// False once its daemon stopped heartbeating (TTL passed) or the link
    /// is down.
    pub reachable: bool,
}

/// What the tools see of federation (in [`crate::tools::Live`]); set by the
/// actor from the federation task's reports. Ephemeral.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FedView {
    /// `OXTAIL_FEDERATION_URL` is set.
    pub enabled: bool,
    /// The server, without credentials.
    pub url: Option<String>,
    /// `OXTAIL_FEDERATION_CREDS` is set.
    pub creds: bool,
    /// Connected to the server now.
    pub link_up: bool,
    /// The last link error, if any.
    pub last_error: Option<String>,
    /// This daemon's id.
    pub daemon: String,
    /// Local project ([`crate::state::Scope::project`]) → federated key, for
    /// projects that have one.
    pub keys: HashMap<String, String>,
    /// Remote agents of every federated project.
    pub remote: Vec<RemoteRow>,
}

impl FedView {
    /// The federated key of a local project, if it has one.
    pub fn key_of(&self, project: &str) -> Option<&str> {
        if !self.enabled {
            return None;
        }
        self.keys.get(project).map(String::as_str)
    }
}

/// The JSON put on the stream for one message.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Envelope version (1).
    pub v: u32,
    /// The message, as the sender journaled it.
    pub message: Message,
    /// The sender's key, daemon, host and name.
    pub from: RemotePeer,
    /// The sender's `wake` argument.
    pub wake: Option<bool>,
    /// The sending tool.
    pub tool: String,
}

/// Normalizes a git remote URL so that the forms of one repository agree:
/// scheme, user and port dropped, host lowercased, `.git` and slashes
/// trimmed (`git@GitHub.com:a/b.git`, `ssh://git@github.com:22/a/b` and
/// `https://github.com/a/b/` all give `github.com/a/b`). A local path is
/// kept as is, trimmed the same way.
pub fn normalize_origin(url: &str) -> String {
    let u = url.trim();
    let (host, path) = if let Some((_, rest)) = u.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        (Some(authority), path)
    } else if let Some((authority, path)) = u
        .split_once(':')
        .filter(|(a, _)| !a.contains('/') && !a.is_empty())
    {
        // scp-like `user@host:path`.
        (Some(authority), path)
    } else {
        (None, u)
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).trim_matches('/');
    match host {
        Some(authority) => {
            let h = authority.rsplit('@').next().unwrap_or(authority);
            let h = match h.rsplit_once(':') {
                Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
                _ => h,
            };
            format!("{}/{}", h.to_ascii_lowercase(), path)
        }
        None => path.to_string(),
    }
}

/// The federated key of a repository: the first 20 hex digits of
/// SHA-256(`<root commits, sorted, space-separated>\n<normalized origin>`),
/// or, with `override_key` (`OXTAIL_FEDERATION_PROJECT`), that value when it
/// is subject-safe (`[A-Za-z0-9_-]`, 1..=64), else its hash. `None` without
/// a root commit or an origin (a local-only project).
pub fn project_key(
    roots: &[String],
    origin: Option<&str>,
    override_key: Option<&str>,
) -> Option<String> {
    let hash = |s: &str| {
        let d = Sha256::digest(s.as_bytes());
        d.iter()
            .take(10)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    if let Some(k) = override_key.map(str::trim).filter(|k| !k.is_empty()) {
        let safe = k.len() <= 64
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        return Some(if safe { k.to_string() } else { hash(k) });
    }
    let origin = origin.map(normalize_origin).filter(|o| !o.is_empty())?;
    let mut roots: Vec<&str> = roots
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if roots.is_empty() {
        return None;
    }
    roots.sort_unstable();
    Some(hash(&format!("{}\n{origin}", roots.join(" "))))
}

/// A session id made safe as one NATS subject token.
pub fn subject_token(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The subject a message to `to` is published on.
pub fn subject_for(to: &RemotePeer, session: &str) -> String {
    format!(
        "oxtail.{}.to.{}.{}",
        to.key,
        to.daemon,
        subject_token(session)
    )
}

/// Where a send to `target` in local `project` goes when no local agent
/// matches: a remote agent of the same federated project, by session id,
/// name, or a session id prefix (at least 8 characters); live rows first,
/// then senders of mail received here. `None` when the project is not
/// federated or nothing matches.
pub fn remote_target(
    state: &State,
    view: &FedView,
    project: &str,
    target: &str,
) -> Option<(SessionId, RemotePeer)> {
    let key = view.key_of(project)?;
    let rows: Vec<&RemoteRow> = view.remote.iter().filter(|r| r.peer.key == key).collect();
    let hit = rows
        .iter()
        .find(|r| r.row.session_id == target)
        .or_else(|| {
            rows.iter()
                .find(|r| r.reachable && r.row.name.as_deref() == Some(target))
        })
        .or_else(|| rows.iter().find(|r| r.row.name.as_deref() == Some(target)))
        .or_else(|| {
            (target.len() >= 8)
                .then(|| rows.iter().find(|r| r.row.session_id.starts_with(target)))
                .flatten()
        });
    if let Some(r) = hit {
        let mut peer = r.peer.clone();
        peer.name = r.row.name.clone();
        return Some((r.row.session_id.clone(), peer));
    }
    state
        .fed
        .peers
        .get(target)
        .filter(|p| p.key == key)
        .map(|p| (target.to_string(), p.clone()))
}

/// Where a message to session `to` goes when `to` is not a local agent:
/// see [`remote_target`] (by exact session id only).
pub fn route_of(state: &State, view: &FedView, project: &str, to: &str) -> Option<RemotePeer> {
    if state.agents.contains_key(to) || state.canonical_id(to).is_some() {
        return None;
    }
    remote_target(state, view, project, to)
        .filter(|(id, _)| id == to)
        .map(|(_, p)| p)
}

/// What `message_status` says of a message sent to a remote agent by `me`
/// (or one of `my_ids`), if it is one: `queued_for_remote` while it waits in
/// the outbox, `sent_remote` once JetStream acknowledged it.
pub fn remote_status(
    state: &State,
    my_ids: &[&str],
    message_id: &str,
) -> Option<serde_json::Value> {
    let fed = &state.fed;
    if let Some(o) = fed
        .outbox
        .iter()
        .find(|o| o.message.message_id == message_id && my_ids.contains(&o.message.from.as_str()))
    {
        return Some(serde_json::json!({
            "ok": true,
            "message_id": message_id,
            "status": "queued_for_remote",
            "remote": true,
            "host": o.to.host,
            "enqueued_at": o.message.enqueued_ms / 1000,
            "target_session_id": o.message.to,
            "to_name": o.to.name,
            "queued_behind": fed.outbox.iter().position(|x| x.message.message_id == message_id),
        }));
    }
    fed.sent
        .iter()
        .rev()
        .find(|s| s.message_id == message_id && my_ids.contains(&s.from.as_str()))
        .map(|s| {
            if let Some(r) = &s.delivered {
                return serde_json::json!({
                    "ok": true,
                    "message_id": message_id,
                    "status": "delivered",
                    "remote": true,
                    "host": s.peer.host,
                    "delivered_at": r.delivered_ms / 1000,
                    "via": crate::tools::contract_via(&r.via),
                    "via_detail": r.via,
                    "recipient_session_id": r.to,
                    "to_name": s.peer.name,
                });
            }
            serde_json::json!({
                "ok": true,
                "message_id": message_id,
                "status": "sent_remote",
                "remote": true,
                "host": s.peer.host,
                "enqueued_at": s.enqueued_ms / 1000,
                "sent_at": s.sent_ms / 1000,
                "target_session_id": s.to,
                "to_name": s.peer.name,
                "note": "stored by the federation server for the receiving daemon, which delivers and wakes on its machine",
            })
        })
}

/// The rows `list_project_sessions` adds for remote agents of `project`
/// (marked `remote: true` with their `host`; an unreachable daemon's
/// agents say `liveness: "unreachable"`).
pub fn remote_rows(view: &FedView, project: &str) -> Vec<serde_json::Value> {
    let Some(key) = view.key_of(project) else {
        return Vec::new();
    };
    view.remote
        .iter()
        .filter(|r| r.peer.key == key)
        .map(|r| {
            serde_json::json!({
                "client_session_id": r.row.session_id,
                "client_type": r.row.client_type,
                "name": r.row.name,
                "state": r.row.purpose.as_ref().map(|p| serde_json::json!({"purpose": p})),
                "liveness": if r.reachable { r.row.liveness.as_str() } else { "unreachable" },
                "worktree": r.row.worktree,
                "branch": r.row.branch,
                "remote": true,
                "host": r.peer.host,
                "daemon": r.peer.daemon,
                "wake_route": "remote",
                "is_you": false,
            })
        })
        .collect()
}

/// The name of remote agent `session`, as its daemon published it.
pub fn remote_name(view: &FedView, session: &str) -> Option<String> {
    view.remote
        .iter()
        .find(|r| r.row.session_id == session)
        .and_then(|r| r.row.name.clone())
}

/// The cockpit's rows for remote agents of `project` (every federated
/// project when `None`), with their host.
pub fn status_rows(
    state: &State,
    live: &crate::tools::Live,
    project: Option<&str>,
) -> Vec<oxtail_proto::status::AgentRow> {
    use oxtail_proto::status as st;
    let view = &live.fed;
    if !view.enabled {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (p, key) in &view.keys {
        if project.is_some_and(|want| want != p) {
            continue;
        }
        let root = state
            .agents
            .values()
            .find(|a| &a.scope.project == p)
            .map(|a| a.scope.project_root.clone())
            .unwrap_or_default();
        for r in view.remote.iter().filter(|r| &r.peer.key == key) {
            out.push(st::AgentRow {
                client_session_id: r.row.session_id.clone(),
                name: r.row.name.clone(),
                client_type: r.row.client_type.clone(),
                project_root: root.clone(),
                liveness: st::Liveness {
                    state: match (r.reachable, r.row.liveness.as_str()) {
                        (true, "live") => st::LivenessState::Live,
                        (true, "dead") => st::LivenessState::Dead,
                        (true, "ended") => st::LivenessState::Ended,
                        _ => st::LivenessState::Unknown,
                    },
                    since_ms: None,
                },
                purpose: r.row.purpose.as_ref().map(|p| st::StateCard {
                    purpose: p.clone(),
                    set_at_ms: None,
                }),
                worktree: Some(r.row.worktree.clone()),
                branch: r.row.branch.clone(),
                wake_route: Some("remote".into()),
                host: Some(r.peer.host.clone()),
                ..Default::default()
            });
        }
    }
    out
}

/// The status snapshot's `federation` section: `None` when off.
pub fn status(state: &State, view: &FedView) -> Option<oxtail_proto::status::FederationStatus> {
    if !view.enabled {
        return None;
    }
    let url = view.url.clone().unwrap_or_default();
    let mut keys: Vec<&String> = view.keys.values().collect();
    keys.sort();
    keys.dedup();
    Some(oxtail_proto::status::FederationStatus {
        warning: oxtail_proto::status::federation_warning(&url, false).filter(|_| !view.creds),
        url,
        link_up: view.link_up,
        error: view.last_error.clone(),
        daemon: view.daemon.clone(),
        projects: view.keys.len() as u64,
        remote_agents: view
            .remote
            .iter()
            .filter(|r| keys.contains(&&r.peer.key))
            .count() as u64,
        outbox: state.fed.outbox.len() as u64,
    })
}

/// `list_project_sessions {compact: true}`'s entries for remote agents of
/// `project`: one per host, `{name: null, host, remote: true, agents}`,
/// each agent `{client_type, client_session_id, state, name, liveness,
/// unread: null}`.
pub fn remote_compact(view: &FedView, project: &str) -> Vec<serde_json::Value> {
    let mut by_host: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
    for r in remote_rows(view, project) {
        let host = r["host"].as_str().unwrap_or_default().to_string();
        let entry = serde_json::json!({
            "client_type": r["client_type"],
            "client_session_id": r["client_session_id"],
            "state": r["state"],
            "name": r["name"],
            "liveness": r["liveness"],
            "unread": null,
        });
        match by_host.iter_mut().find(|(h, _)| *h == host) {
            Some((_, v)) => v.push(entry),
            None => by_host.push((host, vec![entry])),
        }
    }
    by_host
        .into_iter()
        .map(|(host, agents)| {
            serde_json::json!({"name": null, "host": host, "remote": true, "agents": agents})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_one_repository_agree() {
        let want = "github.com/acme/widget";
        for u in [
            "git@GitHub.com:acme/widget.git",
            "https://github.com/acme/widget",
            "https://user@github.com/acme/widget.git/",
            "ssh://git@github.com:22/acme/widget.git",
            "git://github.com/acme/widget",
        ] {
            assert_eq!(normalize_origin(u), want, "{u}");
        }
        assert_eq!(normalize_origin("/srv/git/widget.git"), "srv/git/widget");
    }

    #[test]
    fn keys_need_root_and_origin_unless_overridden() {
        let roots = vec!["abc".to_string()];
        let k = project_key(&roots, Some("git@github.com:a/b.git"), None).unwrap();
        assert_eq!(k.len(), 20);
        assert_eq!(
            Some(k.clone()),
            project_key(&roots, Some("https://github.com/a/b"), None)
        );
        assert_ne!(
            Some(k),
            project_key(&roots, Some("https://github.com/a/c"), None)
        );
        assert_eq!(project_key(&roots, None, None), None);
        assert_eq!(project_key(&[], Some("x/y"), None), None);
        assert_eq!(
            project_key(&[], None, Some("team-1")).as_deref(),
            Some("team-1")
        );
        assert_eq!(project_key(&[], None, Some("a.b*")).unwrap().len(), 20);
    }

    #[test]
    fn outbox_keeps_order_and_sent_is_bounded() {
        let mut fed = FedState::default();
        let out = |id: &str| Outgoing {
            message: Message {
                message_id: id.into(),
                from: "a".into(),
                from_name: None,
                to: "b".into(),
                body: "x".into(),
                enqueued_ms: 1,
                request_id: None,
                reply_to: None,
                source_message_id: None,
                action_required: false,
                origin: crate::state::Origin::Peer,
                project: "p".into(),
                closes: None,
                offers: 0,
            },
            to: RemotePeer::default(),
            wake: None,
            tool: "send_message".into(),
        };
        apply_queue(&mut fed, &out("m1"));
        apply_queue(&mut fed, &out("m2"));
        apply_queue(&mut fed, &out("m1"));
        assert_eq!(fed.outbox.len(), 2);
        apply_sent(&mut fed, "m2", 5);
        assert_eq!(fed.outbox[0].message.message_id, "m1");
        assert_eq!(fed.sent[0].message_id, "m2");
        assert_eq!(fed.sent[0].sent_ms, 5);
    }
}
