//! The durable state and the commands that change it.
//!
//! [`apply`] is the only function that mutates a [`State`]; it is pure (no
//! I/O, no clock, no randomness: every timestamp and id is inside the
//! [`Command`]) and infallible, so replaying the journal reproduces the state
//! exactly. Commands are produced by [`crate::tools`] after validation; the
//! core actor (`crate::actor`) makes each batch durable before applying it.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// The hash maps of [`State`]: [foldhash], several times faster than the
/// standard SipHash on the short id keys a restart rehashes millions of
/// (issue 12). Keys are ids the daemon made or the local user's clients
/// sent, so hash flooding is not a concern; seeds are still per map.
pub type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Deserializes a [`Map`] sized up front from the encoded length (postcard
/// and JSON objects both give it), instead of serde's cautious 1 MiB start
/// and a dozen rehashes: a snapshot with a million messages otherwise spends
/// a fifth of its restore moving entries. The length is capped, so a
/// damaged count cannot reserve unbounded memory.
fn presized<'de, D, K, V>(d: D) -> Result<Map<K, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Deserialize<'de> + Eq + std::hash::Hash,
    V: Deserialize<'de>,
{
    struct Visit<K, V>(std::marker::PhantomData<(K, V)>);
    impl<'de, K, V> serde::de::Visitor<'de> for Visit<K, V>
    where
        K: Deserialize<'de> + Eq + std::hash::Hash,
        V: Deserialize<'de>,
    {
        type Value = Map<K, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let n = a.size_hint().unwrap_or(0).min(1 << 24);
            let mut m = Map::with_capacity_and_hasher(n, Default::default());
            while let Some((k, v)) = a.next_entry()? {
                m.insert(k, v);
            }
            Ok(m)
        }
    }
    d.deserialize_map(Visit(std::marker::PhantomData))
}

/// A client session id (`client_session_id`): Claude Code's session id, or a
/// Codex thread id.
pub type SessionId = String;
/// A message id (`msg_…`).
pub type MessageId = String;

/// The process that hosts an agent: pid plus process start time, so a reused
/// pid is a different seat.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seat {
    /// The client process id.
    pub pid: u32,
    /// Its start time, seconds since the Unix epoch (0 when unknown).
    pub start_time: u64,
}

impl Seat {
    /// The map key for this seat: `"<pid>:<start_time>"`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.pid, self.start_time)
    }
}

/// Which project (and work tree) a directory belongs to.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// The project identity: the canonical common git dir of the repository
    /// (or the work tree, under `OXTAIL_SCOPE=worktree`; or the canonical
    /// directory outside git). Never shown to other projects.
    pub project: String,
    /// The directory people call the project (the main work tree).
    pub project_root: String,
    /// The work tree the directory is in.
    pub worktree: String,
    /// The checked-out branch, if on one.
    pub branch: Option<String>,
}

/// How a session id was learned. Explicit sources are never overridden by
/// automatic ones.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BindingSource {
    /// `claim_session`.
    Claim,
    /// `register_my_session`.
    Register,
    /// A hook event carrying `session_id` from the seat's client.
    Hook,
    /// The shim's environment or the call's `_meta`.
    Detected,
}

impl BindingSource {
    /// Claims and registrations are explicit.
    pub fn is_explicit(self) -> bool {
        matches!(self, BindingSource::Claim | BindingSource::Register)
    }
}

/// Which session a seat hosts, and how we know.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SeatBinding {
    /// The session.
    pub session_id: SessionId,
    /// How it was learned.
    pub source: BindingSource,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
}

/// One agent: one client session.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Its identity.
    pub session_id: SessionId,
    /// `claude-code`, `codex`, `gemini`, `opencode` or `other`.
    pub client_type: String,
    /// Its name, unique among the project's live agents: chosen with
    /// `set_my_state {name}`, given at launch (`OXTAIL_NAME`, a fleet pane),
    /// the tmux session of its pane, or `<client>-<n>` (see
    /// [`crate::identity::name_agents`]). `None` only until the naming pass
    /// runs.
    pub name: Option<String>,
    /// Where `name` came from; `None` on rows from journals older than
    /// naming (a name there was chosen with `set_my_state`).
    #[serde(default)]
    pub name_source: Option<NameSource>,
    /// `OXTAIL_NAME` from the client's environment, when it set one.
    #[serde(default)]
    pub launch_name: Option<String>,
    /// The tmux session of the agent's verified pane, as last seen (kept
    /// after the pane is gone, so rows and targets still show it).
    #[serde(default)]
    pub tmux_session: Option<String>,
    /// The state card (at most 200 characters).
    pub purpose: Option<String>,
    /// When the state card was set, ms since the epoch.
    pub purpose_at_ms: Option<u64>,
    /// Where the agent works.
    pub scope: Scope,
    /// Its working directory.
    pub cwd: String,
    /// The hosting client process, when known.
    pub seat: Option<Seat>,
    /// How its id was first resolved (strategy name).
    pub resolved_by: String,
    /// First seen, ms since the epoch.
    pub first_seen_ms: u64,
    /// Earlier session ids of this seat (`clear`/`resume`/…): mail to them
    /// reaches this agent.
    #[serde(default)]
    pub previous_ids: Vec<SessionId>,
    /// When the session ended (SessionEnd), if it did.
    #[serde(default)]
    pub ended_ms: Option<u64>,
    /// The tmux server the seat's environment named (`TMUX`, first field):
    /// only a hint of which server to search; panes are verified by the
    /// process tree.
    #[serde(default)]
    pub tmux_socket: Option<String>,
}

/// Where an agent's name came from, weakest first: a stronger source is
/// never replaced by a weaker one.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum NameSource {
    /// `<client>-<n>` (`claude-1`), for an agent with no pane and no name.
    Auto,
    /// The tmux session of its verified pane (`api`, or `api:1`, `api:1.0`
    /// when one session hosts several agents).
    Tmux,
    /// The fleet that started its pane (`@oxtail_agent`).
    Fleet,
    /// `OXTAIL_NAME` in the client's environment.
    Launch,
    /// `set_my_state {name}`.
    Chosen,
}

impl Agent {
    /// Where this agent's name came from (`Chosen` for a name from a journal
    /// older than name sources; `None` when it has no name).
    pub fn name_origin(&self) -> Option<NameSource> {
        self.name
            .as_ref()
            .map(|_| self.name_source.unwrap_or(NameSource::Chosen))
    }
}

/// Who wrote a message.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Another agent.
    Peer,
    /// The person at the cockpit.
    Operator,
}

/// One message.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub message_id: MessageId,
    /// Sender session.
    pub from: SessionId,
    /// Sender's name at send time.
    pub from_name: Option<String>,
    /// Receiver session.
    pub to: SessionId,
    /// UTF-8 body, at most 8192 bytes.
    pub body: String,
    /// When it was queued, ms since the epoch.
    pub enqueued_ms: u64,
    /// Set on asks: the id a correlated reply must carry in `reply_to`.
    pub request_id: Option<String>,
    /// The request_id or message_id this answers.
    pub reply_to: Option<String>,
    /// The message_id this replies to (derived by `reply_to_message`).
    pub source_message_id: Option<MessageId>,
    /// A delegation: the receiver owns an open obligation.
    pub action_required: bool,
    /// Peer or operator.
    pub origin: Origin,
    /// The project it was sent in.
    pub project: String,
    /// Set on the outcome message of `complete_work` / `block_work`.
    #[serde(default)]
    pub closes: Option<ObligationState>,
    /// How many times it was offered to its receiver without a confirmed
    /// hand-over ([`Command::Offer`]). Non-zero means a later hand-over may
    /// repeat one the agent already saw: it is flagged `redelivered`.
    #[serde(default)]
    pub offers: u32,
}

/// Where an obligation stands.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ObligationState {
    /// Delegated, not yet closed.
    Open,
    /// Closed by `complete_work`.
    Done,
    /// Closed by `block_work`.
    Blocked,
}

/// Work delegated with `action_required: true` (or by `ask_peer`): the
/// receiver owns it until it closes it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Obligation {
    /// The delegating message.
    pub message_id: MessageId,
    /// Who must do it (the receiver).
    pub owner: SessionId,
    /// Who asked (the sender).
    pub requester: SessionId,
    /// Set when the delegation was an ask.
    pub request_id: Option<String>,
    /// Open, done or blocked.
    pub state: ObligationState,
    /// When it was delegated, ms since the epoch.
    pub created_ms: u64,
    /// When it was closed.
    pub closed_ms: Option<u64>,
    /// The message that carried the outcome to the requester.
    pub outcome_message_id: Option<MessageId>,
}

/// An `ask_peer` that has not been answered yet. While the asker's call is
/// still blocked it is "in flight" (an ephemeral waiter exists); otherwise it
/// is a pending ask whose late reply wakes the asker.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// The correlation id a reply must carry in `reply_to`.
    pub request_id: String,
    /// The asker.
    pub from: SessionId,
    /// The asked peer.
    pub to: SessionId,
    /// The ask message.
    pub message_id: MessageId,
    /// When it was asked, ms since the epoch.
    pub created_ms: u64,
    /// When a still-unanswered ask is forgotten (`OXTAIL_PENDING_ASK_TTL_MS`
    /// after the wait ends), ms since the epoch.
    pub expires_ms: u64,
}

/// A message was handed into its receiver's context.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// When, ms since the epoch.
    pub delivered_ms: u64,
    /// How: `read_my_messages`, `pre_tool_use`, `stop`, `idle_wait`, `ask_peer`.
    pub via: String,
    /// The session that received it.
    pub to: SessionId,
}

/// An advisory file lease taken with `claim_files` (see [`crate::files`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Its id (`lease_…`).
    pub id: String,
    /// The holder's session.
    pub holder: SessionId,
    /// The project it is in ([`Scope::project`]).
    pub project: String,
    /// The holder's work tree (absolute); the pattern is relative to it.
    pub worktree: String,
    /// The holder's branch when it claimed.
    pub branch: Option<String>,
    /// A work-tree relative path, directory or glob.
    pub pattern: String,
    /// Exclusive leases conflict with any other edit or claim; shared ones
    /// coexist.
    pub exclusive: bool,
    /// Why, as the holder said.
    pub reason: Option<String>,
    /// When it was taken, ms since the epoch.
    pub created_ms: u64,
    /// When it lapses, ms since the epoch.
    pub expires_ms: u64,
}

/// The whole durable state.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct State {
    /// Agents by session id.
    pub agents: BTreeMap<SessionId, Agent>,
    /// Earlier session id → current session id.
    #[serde(deserialize_with = "presized")]
    pub aliases: Map<SessionId, SessionId>,
    /// Seat key ([`Seat::key`]) → the session it hosts.
    pub seats: BTreeMap<String, SeatBinding>,
    /// Every retained message.
    #[serde(deserialize_with = "presized")]
    pub messages: Map<MessageId, Box<Message>>,
    /// Queued, undelivered messages per receiver, oldest first.
    #[serde(deserialize_with = "presized")]
    pub mailboxes: Map<SessionId, VecDeque<MessageId>>,
    /// The received-ledger: every message made visible to a receiver, oldest
    /// first (bounded by `OXTAIL_RECEIVED_MAX`, pruning journaled).
    #[serde(deserialize_with = "presized")]
    pub ledgers: Map<SessionId, VecDeque<MessageId>>,
    /// Delivery receipts by message id.
    #[serde(deserialize_with = "presized")]
    pub receipts: Map<MessageId, Receipt>,
    /// The comms log: message ids in send order (bounded).
    pub comms: VecDeque<MessageId>,
    /// Obligations by delegating message id (open ones are exempt from
    /// retention).
    #[serde(default, deserialize_with = "presized")]
    pub obligations: Map<MessageId, Obligation>,
    /// Unanswered asks by request_id.
    #[serde(default, deserialize_with = "presized")]
    pub asks: Map<String, Ask>,
    /// Wakes already fired per `(session, reply_to)`: one wake each.
    #[serde(default, deserialize_with = "presized")]
    pub wakes_fired: Map<String, u64>,
    /// File leases by id (`claim_files`); expired ones are ignored by every
    /// reader and pruned by [`Command::ReleaseFiles`].
    #[serde(default)]
    pub leases: BTreeMap<String, Lease>,
    /// Journaled edit touches per agent ([`Command::TouchFiles`]): the last
    /// journaled edit of each file, oldest first, at most
    /// [`crate::files::TOUCHES_PER_AGENT`] per agent; dropped when the agent
    /// ends and pruned past the touch window ([`Command::PruneEdits`]).
    /// Only what the conflict warnings need across a restart: the daemon
    /// seeds its ephemeral touch index from it at start.
    #[serde(default)]
    pub edits: BTreeMap<SessionId, VecDeque<EditTouch>>,
    /// Federation's durable records (issue 16): the outbox of messages to
    /// remote agents, what was sent, and where remote senders live. Skipped
    /// by serde: [`crate::codec`] appends it to a snapshot only when it is
    /// not empty, so the v2 layout is unchanged.
    #[serde(skip)]
    pub fed: crate::fedstate::FedState,
}

/// One journaled edit of a file by an agent (see [`State::edits`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct EditTouch {
    /// The project ([`Scope::project`]).
    pub project: String,
    /// The agent's work tree (absolute).
    pub worktree: String,
    /// Its branch then.
    pub branch: Option<String>,
    /// The file, relative to the work tree.
    pub path: String,
    /// When it was journaled, ms since the epoch (the live index may hold
    /// a later edit of the same file: journaling is coarse, see
    /// [`crate::files::JOURNAL_EDIT_EVERY_MS`]).
    pub at_ms: u64,
}

/// Largest comms log kept.
pub const COMMS_MAX: usize = 10_000;

/// Per-agent work, indexed once (see [`State::work_index`]).
#[derive(Debug, Default)]
pub struct WorkIndex<'a> {
    /// Open obligations per owner.
    pub open: HashMap<&'a str, usize>,
    /// Unanswered asks per asker, oldest first.
    pub asks: HashMap<&'a str, Vec<&'a Ask>>,
}

impl<'a> WorkIndex<'a> {
    /// Open obligations owned by `id`.
    pub fn open_of(&self, id: &str) -> usize {
        self.open.get(id).copied().unwrap_or(0)
    }

    /// Unanswered asks by `id`, oldest first.
    pub fn asks_of(&self, id: &str) -> &[&'a Ask] {
        self.asks.get(id).map_or(&[], Vec::as_slice)
    }
}

/// A durable change. One journal record holds the batch of commands of one
/// request, applied atomically.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Create an agent, or refresh its seat/scope/client type (name and state
    /// card are kept).
    UpsertAgent {
        /// The agent's new fields.
        agent: Agent,
    },
    /// Bind a seat to a session.
    BindSeat {
        /// [`Seat::key`].
        seat: String,
        /// The binding.
        binding: SeatBinding,
    },
    /// Set an agent's state card and optionally its name.
    SetState {
        /// The agent.
        session_id: SessionId,
        /// The card.
        purpose: String,
        /// A new name, if given.
        name: Option<String>,
        /// When.
        at_ms: u64,
    },
    /// Give an agent a name (decided by [`crate::identity::name_agents`],
    /// which keeps names unique among a project's live agents).
    Name {
        /// The agent.
        session_id: SessionId,
        /// Its name.
        name: String,
        /// Where the name came from.
        source: NameSource,
        /// The tmux session of its verified pane, if it has one now.
        #[serde(default)]
        tmux_session: Option<String>,
    },
    /// Queue a message and record it in the receiver's ledger (one record:
    /// visible ⇔ resolvable).
    Enqueue {
        /// The message.
        message: Message,
    },
    /// Queued messages are being handed to their receiver, not yet
    /// confirmed: each one's [`Message::offers`] grows by one, and they stay
    /// queued. Journaled before the reply that carries them leaves, so after
    /// a crash a hand-over that may have happened is flagged `redelivered`.
    Offer {
        /// The receiver's mailbox.
        session_id: SessionId,
        /// Which messages.
        message_ids: Vec<MessageId>,
    },
    /// Hand queued messages over to their receiver, with receipts: the
    /// receiving side confirmed that the agent has them.
    Drain {
        /// The receiver's mailbox.
        session_id: SessionId,
        /// Which messages (all must be queued there).
        message_ids: Vec<MessageId>,
        /// How they were handed over.
        via: String,
        /// When.
        at_ms: u64,
    },
    /// Drop ledger entries (retention).
    PruneLedger {
        /// Whose ledger.
        session_id: SessionId,
        /// Which entries.
        message_ids: Vec<MessageId>,
    },
    /// Forget messages entirely (retention): the message, its receipt, any
    /// ledger, mailbox and comms references.
    PruneMessages {
        /// Which messages.
        message_ids: Vec<MessageId>,
    },
    /// Close an obligation.
    CloseObligation {
        /// The delegating message.
        message_id: MessageId,
        /// Done or blocked.
        state: ObligationState,
        /// The outcome message sent to the requester.
        outcome_message_id: MessageId,
        /// When.
        at_ms: u64,
    },
    /// Record an ask awaiting its reply.
    OpenAsk {
        /// The ask.
        ask: Ask,
    },
    /// Forget an ask: answered (single winner) or expired.
    CloseAsk {
        /// Its request_id.
        request_id: String,
        /// `answered`, `expired`.
        reason: String,
    },
    /// A wake fired for `key` (`<session>|<reply_to>`): never again.
    RecordWake {
        /// `<session>|<reply_to>`.
        key: String,
        /// When.
        at_ms: u64,
    },
    /// The session ended (SessionEnd).
    EndSession {
        /// Which.
        session_id: SessionId,
        /// When.
        at_ms: u64,
    },
    /// Take file leases (`claim_files`), replacing `replaces` (the caller's
    /// earlier leases on the same patterns).
    ClaimFiles {
        /// The new leases.
        leases: Vec<Lease>,
        /// Lease ids to drop first.
        #[serde(default)]
        replaces: Vec<String>,
    },
    /// Drop file leases (`release_files`, or expired ones).
    ReleaseFiles {
        /// Which.
        lease_ids: Vec<String>,
    },
    /// An agent edited files (PostToolUse of an edit tool): remembered in
    /// [`State::edits`] so file-conflict warnings survive a restart.
    TouchFiles {
        /// The agent.
        session_id: SessionId,
        /// Its project.
        project: String,
        /// Its work tree (absolute).
        worktree: String,
        /// Its branch then.
        #[serde(default)]
        branch: Option<String>,
        /// The files, relative to the work tree.
        paths: Vec<String>,
        /// When.
        at_ms: u64,
    },
    /// Forget journaled edit touches older than `before_ms` (past the touch
    /// window).
    PruneEdits {
        /// Cut-off, ms since the epoch.
        before_ms: u64,
    },
    /// Forget wake dedupe records older than `before_ms` (retention).
    PruneWakes {
        /// Cut-off, ms since the epoch.
        before_ms: u64,
    },
    /// A message to an agent on another machine (federation, issue 16):
    /// into the durable outbox, published to JetStream while the link is
    /// up, kept until JetStream acknowledges it.
    FedQueue {
        /// The message and its route.
        out: crate::fedstate::Outgoing,
    },
    /// JetStream acknowledged an outbox message: it leaves the outbox.
    FedSent {
        /// Which.
        message_id: MessageId,
        /// When, ms since the epoch.
        at_ms: u64,
    },
    /// Mail came from a remote agent: where its replies go.
    FedPeer {
        /// The remote sender's session.
        session_id: SessionId,
        /// Where it lives.
        peer: crate::fedstate::RemotePeer,
    },
    /// The receiving daemon says its agent has a message sent from here.
    FedDelivered {
        /// Its receipt.
        receipt: crate::fedstate::RemoteReceipt,
    },
}

/// Something observers may want to know after a command applied (the wake
/// engine and waiters subscribe to these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message became visible in a mailbox.
    Enqueued {
        /// Receiver.
        to: SessionId,
        /// Message.
        message_id: MessageId,
    },
    /// Messages were handed over.
    Drained {
        /// Receiver.
        to: SessionId,
        /// Messages.
        message_ids: Vec<MessageId>,
    },
    /// An agent's row changed.
    AgentChanged {
        /// Which.
        session_id: SessionId,
    },
}

impl State {
    /// The current session id for `id` (following aliases), if known.
    pub fn canonical_id<'a>(&'a self, id: &'a str) -> Option<&'a str> {
        if self.agents.contains_key(id) {
            return Some(id);
        }
        self.aliases.get(id).map(|s| s.as_str())
    }

    /// Whether message `id` is still queued (retained and not yet handed
    /// over): O(1), since a drain receipts exactly what it removes from a
    /// mailbox.
    pub fn is_queued(&self, id: &str) -> bool {
        self.messages.contains_key(id) && !self.receipts.contains_key(id)
    }

    /// Messages queued for `session_id`.
    pub fn queued(&self, session_id: &str) -> usize {
        self.mailboxes.get(session_id).map_or(0, |q| q.len())
    }

    /// Total queued messages.
    pub fn total_queued(&self) -> usize {
        self.mailboxes.values().map(|q| q.len()).sum()
    }

    /// `id` and every earlier id that aliases to it.
    pub fn all_ids_of<'a>(&'a self, id: &'a str) -> Vec<&'a str> {
        let mut v = vec![id];
        if let Some(a) = self.agents.get(id) {
            v.extend(a.previous_ids.iter().map(String::as_str));
        }
        v
    }

    /// Open obligations owned by `id`, oldest first.
    pub fn open_work(&self, id: &str) -> Vec<&Obligation> {
        let mut v: Vec<&Obligation> = self
            .obligations
            .values()
            .filter(|o| o.owner == id && o.state == ObligationState::Open)
            .collect();
        v.sort_by(|a, b| (a.created_ms, &a.message_id).cmp(&(b.created_ms, &b.message_id)));
        v
    }

    /// Open-obligation counts by owner and unanswered asks by asker (oldest
    /// first), in one pass: for views that show many agents at once.
    pub fn work_index(&self) -> WorkIndex<'_> {
        let mut open: HashMap<&str, usize> = HashMap::new();
        for o in self
            .obligations
            .values()
            .filter(|o| o.state == ObligationState::Open)
        {
            *open.entry(o.owner.as_str()).or_default() += 1;
        }
        let mut asks: HashMap<&str, Vec<&Ask>> = HashMap::new();
        for a in self.asks.values() {
            asks.entry(a.from.as_str()).or_default().push(a);
        }
        for v in asks.values_mut() {
            v.sort_by(|a, b| (a.created_ms, &a.request_id).cmp(&(b.created_ms, &b.request_id)));
        }
        WorkIndex { open, asks }
    }

    /// Unanswered asks made by `id`, oldest first.
    pub fn asks_by(&self, id: &str) -> Vec<&Ask> {
        let mut v: Vec<&Ask> = self.asks.values().filter(|a| a.from == id).collect();
        v.sort_by(|a, b| (a.created_ms, &a.request_id).cmp(&(b.created_ms, &b.request_id)));
        v
    }
}

/// Removes `ids` from an oldest-first queue: from the front while they are
/// there (the common case: retention evicts the oldest), then one pass for
/// the rest.
fn prune_ordered(q: &mut VecDeque<MessageId>, ids: &[MessageId]) {
    let mut left: HashSet<&str> = ids.iter().map(String::as_str).collect();
    while let Some(front) = q.front() {
        if left.remove(front.as_str()) {
            q.pop_front();
        } else {
            break;
        }
    }
    if !left.is_empty() {
        q.retain(|x| !left.contains(x.as_str()));
    }
}

/// As [`apply`], taking the command by value: a message is moved into the
/// state rather than copied (recovery and the live commit path, where the
/// command is not needed afterwards).
pub fn apply_owned(state: &mut State, cmd: Command, events: &mut Vec<Event>) {
    match cmd {
        Command::Enqueue { message } => enqueue(state, Box::new(message), events),
        other => apply(state, &other, events),
    }
}

/// [`Command::Enqueue`]: the message into the store, its receiver's
/// mailbox and ledger, and the comms log; an open obligation when it is a
/// delegation.
fn enqueue(state: &mut State, message: Box<Message>, events: &mut Vec<Event>) {
    let id = message.message_id.clone();
    let to = message.to.clone();
    if message.action_required {
        state.obligations.insert(
            id.clone(),
            Obligation {
                message_id: id.clone(),
                owner: to.clone(),
                requester: message.from.clone(),
                request_id: message.request_id.clone(),
                state: ObligationState::Open,
                created_ms: message.enqueued_ms,
                closed_ms: None,
                outcome_message_id: None,
            },
        );
    }
    state.messages.insert(id.clone(), message);
    state
        .mailboxes
        .entry(to.clone())
        .or_default()
        .push_back(id.clone());
    state
        .ledgers
        .entry(to.clone())
        .or_default()
        .push_back(id.clone());
    state.comms.push_back(id.clone());
    while state.comms.len() > COMMS_MAX {
        state.comms.pop_front();
    }
    events.push(Event::Enqueued { to, message_id: id });
}

/// Applies one command. Pure and infallible: a command that refers to
/// something missing does what it can and nothing else.
pub fn apply(state: &mut State, cmd: &Command, events: &mut Vec<Event>) {
    match cmd {
        Command::UpsertAgent { agent } => {
            let id = agent.session_id.clone();
            match state.agents.get_mut(&id) {
                Some(existing) => {
                    existing.client_type = agent.client_type.clone();
                    existing.scope = agent.scope.clone();
                    existing.cwd = agent.cwd.clone();
                    existing.seat = agent.seat.clone();
                    existing.ended_ms = agent.ended_ms;
                    existing.tmux_socket = agent.tmux_socket.clone();
                    if agent.launch_name.is_some() {
                        existing.launch_name = agent.launch_name.clone();
                    }
                    for p in &agent.previous_ids {
                        if !existing.previous_ids.contains(p) {
                            existing.previous_ids.push(p.clone());
                        }
                    }
                }
                None => {
                    state.agents.insert(id.clone(), agent.clone());
                }
            }
            for p in &agent.previous_ids {
                if p == &id {
                    continue;
                }
                state.aliases.insert(p.clone(), id.clone());
                // Anything that aliased to p now aliases to id.
                for v in state.aliases.values_mut() {
                    if v == p {
                        *v = id.clone();
                    }
                }
                // The earlier session's mail, ledger and work move here.
                if let Some(old) = state.agents.remove(p) {
                    if let Some(a) = state.agents.get_mut(&id) {
                        // The name stays with the seat unless the new
                        // session brought a stronger one of its own.
                        if old.name.is_some() && old.name_origin() >= a.name_origin() {
                            a.name_source = old.name_origin();
                            a.name = old.name;
                        }
                        if a.tmux_session.is_none() {
                            a.tmux_session = old.tmux_session;
                        }
                        if a.purpose.is_none() {
                            a.purpose = old.purpose;
                            a.purpose_at_ms = old.purpose_at_ms;
                        }
                    }
                }
                if let Some(q) = state.mailboxes.remove(p) {
                    for m in &q {
                        if let Some(msg) = state.messages.get_mut(m) {
                            msg.to = id.clone();
                        }
                    }
                    state.mailboxes.entry(id.clone()).or_default().extend(q);
                }
                if let Some(l) = state.ledgers.remove(p) {
                    state.ledgers.entry(id.clone()).or_default().extend(l);
                }
                for o in state.obligations.values_mut() {
                    if &o.owner == p {
                        o.owner = id.clone();
                    }
                    if &o.requester == p {
                        o.requester = id.clone();
                    }
                }
                for a in state.asks.values_mut() {
                    if &a.from == p {
                        a.from = id.clone();
                    }
                    if &a.to == p {
                        a.to = id.clone();
                    }
                }
            }
            state.aliases.remove(&id);
            events.push(Event::AgentChanged { session_id: id });
        }
        Command::BindSeat { seat, binding } => {
            state.seats.insert(seat.clone(), binding.clone());
        }
        Command::SetState {
            session_id,
            purpose,
            name,
            at_ms,
        } => {
            if let Some(a) = state.agents.get_mut(session_id) {
                a.purpose = Some(purpose.clone());
                a.purpose_at_ms = Some(*at_ms);
                if name.is_some() {
                    a.name = name.clone();
                    a.name_source = Some(NameSource::Chosen);
                }
                events.push(Event::AgentChanged {
                    session_id: session_id.clone(),
                });
            }
        }
        Command::Name {
            session_id,
            name,
            source,
            tmux_session,
        } => {
            if let Some(a) = state.agents.get_mut(session_id) {
                a.name = Some(name.clone());
                a.name_source = Some(*source);
                if tmux_session.is_some() {
                    a.tmux_session = tmux_session.clone();
                }
                events.push(Event::AgentChanged {
                    session_id: session_id.clone(),
                });
            }
        }
        Command::Enqueue { message } => enqueue(state, Box::new(message.clone()), events),
        Command::Drain {
            session_id,
            message_ids,
            via,
            at_ms,
        } => {
            let mut drained = Vec::new();
            if let Some(q) = state.mailboxes.get_mut(session_id) {
                for id in message_ids {
                    if let Some(pos) = q.iter().position(|m| m == id) {
                        q.remove(pos);
                        drained.push(id.clone());
                    }
                }
                if q.is_empty() {
                    state.mailboxes.remove(session_id);
                }
            }
            for id in &drained {
                state.receipts.insert(
                    id.clone(),
                    Receipt {
                        delivered_ms: *at_ms,
                        via: via.clone(),
                        to: session_id.clone(),
                    },
                );
            }
            if !drained.is_empty() {
                events.push(Event::Drained {
                    to: session_id.clone(),
                    message_ids: drained,
                });
            }
        }
        Command::Offer {
            session_id,
            message_ids,
        } => {
            for id in message_ids {
                if let Some(m) = state.messages.get_mut(id) {
                    if &m.to == session_id && !state.receipts.contains_key(id) {
                        m.offers = m.offers.saturating_add(1);
                    }
                }
            }
        }
        Command::PruneLedger {
            session_id,
            message_ids,
        } => {
            if let Some(l) = state.ledgers.get_mut(session_id) {
                prune_ordered(l, message_ids);
                if l.is_empty() {
                    state.ledgers.remove(session_id);
                }
            }
        }
        Command::PruneMessages { message_ids } => {
            // One pass per affected queue, not one per message.
            let gone: HashSet<&str> = message_ids.iter().map(String::as_str).collect();
            let mut receivers: HashSet<SessionId> = HashSet::new();
            for id in message_ids {
                if let Some(m) = state.messages.remove(id) {
                    receivers.insert(m.to);
                }
                state.receipts.remove(id);
                state.obligations.remove(id);
            }
            for to in receivers {
                if let Some(q) = state.mailboxes.get_mut(&to) {
                    q.retain(|x| !gone.contains(x.as_str()));
                    if q.is_empty() {
                        state.mailboxes.remove(&to);
                    }
                }
                if let Some(l) = state.ledgers.get_mut(&to) {
                    l.retain(|x| !gone.contains(x.as_str()));
                    if l.is_empty() {
                        state.ledgers.remove(&to);
                    }
                }
            }
            state.comms.retain(|x| !gone.contains(x.as_str()));
        }
        Command::CloseObligation {
            message_id,
            state: st,
            outcome_message_id,
            at_ms,
        } => {
            if let Some(o) = state.obligations.get_mut(message_id) {
                o.state = *st;
                o.closed_ms = Some(*at_ms);
                o.outcome_message_id = Some(outcome_message_id.clone());
            }
        }
        Command::OpenAsk { ask } => {
            state.asks.insert(ask.request_id.clone(), ask.clone());
        }
        Command::CloseAsk { request_id, .. } => {
            state.asks.remove(request_id);
        }
        Command::RecordWake { key, at_ms } => {
            state.wakes_fired.insert(key.clone(), *at_ms);
        }
        Command::EndSession { session_id, at_ms } => {
            state.leases.retain(|_, l| l.holder != *session_id);
            state.edits.remove(session_id);
            if let Some(a) = state.agents.get_mut(session_id) {
                a.ended_ms = Some(*at_ms);
                events.push(Event::AgentChanged {
                    session_id: session_id.clone(),
                });
            }
        }
        Command::ClaimFiles { leases, replaces } => {
            for id in replaces {
                state.leases.remove(id);
            }
            for l in leases {
                state.leases.insert(l.id.clone(), l.clone());
            }
        }
        Command::ReleaseFiles { lease_ids } => {
            for id in lease_ids {
                state.leases.remove(id);
            }
        }
        Command::PruneWakes { before_ms } => {
            state.wakes_fired.retain(|_, at| *at >= *before_ms);
        }
        Command::FedQueue { out } => crate::fedstate::apply_queue(&mut state.fed, out),
        Command::FedSent { message_id, at_ms } => {
            crate::fedstate::apply_sent(&mut state.fed, message_id, *at_ms)
        }
        Command::FedPeer { session_id, peer } => {
            crate::fedstate::apply_peer(&mut state.fed, session_id, peer)
        }
        Command::FedDelivered { receipt } => {
            crate::fedstate::apply_delivered(&mut state.fed, receipt)
        }
        Command::TouchFiles {
            session_id,
            project,
            worktree,
            branch,
            paths,
            at_ms,
        } => {
            let list = state.edits.entry(session_id.clone()).or_default();
            for path in paths {
                list.retain(|e| {
                    !(e.path == *path && e.worktree == *worktree && e.project == *project)
                });
                list.push_back(EditTouch {
                    project: project.clone(),
                    worktree: worktree.clone(),
                    branch: branch.clone(),
                    path: path.clone(),
                    at_ms: *at_ms,
                });
            }
            while list.len() > crate::files::TOUCHES_PER_AGENT {
                list.pop_front();
            }
        }
        Command::PruneEdits { before_ms } => {
            state.edits.retain(|_, list| {
                list.retain(|e| e.at_ms >= *before_ms);
                !list.is_empty()
            });
        }
    }
}
