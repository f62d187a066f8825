//! The durable state and the commands that change it.
//!
//! [`apply`] is the only function that mutates a [`State`]; it is pure (no
//! I/O, no clock, no randomness: every timestamp and id is inside the
//! [`Command`]) and infallible, so replaying the journal reproduces the state
//! exactly. Commands are produced by [`crate::tools`] after validation; the I/O
//! layer ([`crate::server`]) makes each batch durable before applying it.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

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
    /// A unique name in the project, set with `set_my_state {name}`.
    pub name: Option<String>,
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

/// The whole durable state.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct State {
    /// Agents by session id.
    pub agents: BTreeMap<SessionId, Agent>,
    /// Earlier session id → current session id.
    pub aliases: HashMap<SessionId, SessionId>,
    /// Seat key ([`Seat::key`]) → the session it hosts.
    pub seats: BTreeMap<String, SeatBinding>,
    /// Every retained message.
    pub messages: HashMap<MessageId, Message>,
    /// Queued, undelivered messages per receiver, oldest first.
    pub mailboxes: HashMap<SessionId, VecDeque<MessageId>>,
    /// The received-ledger: every message made visible to a receiver, oldest
    /// first (bounded by `OXTAIL_RECEIVED_MAX`, pruning journaled).
    pub ledgers: HashMap<SessionId, VecDeque<MessageId>>,
    /// Delivery receipts by message id.
    pub receipts: HashMap<MessageId, Receipt>,
    /// The comms log: message ids in send order (bounded).
    pub comms: VecDeque<MessageId>,
}

/// Largest comms log kept.
pub const COMMS_MAX: usize = 10_000;

/// A durable change. One journal record holds the batch of commands of one
/// request, applied atomically.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
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
    /// Queue a message and record it in the receiver's ledger (one record:
    /// visible ⇔ resolvable).
    Enqueue {
        /// The message.
        message: Message,
    },
    /// Hand queued messages over to their receiver, with receipts.
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

    /// Messages queued for `session_id`.
    pub fn queued(&self, session_id: &str) -> usize {
        self.mailboxes.get(session_id).map_or(0, |q| q.len())
    }

    /// Total queued messages.
    pub fn total_queued(&self) -> usize {
        self.mailboxes.values().map(|q| q.len()).sum()
    }
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
                if p != &id {
                    state.aliases.insert(p.clone(), id.clone());
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
                }
                events.push(Event::AgentChanged {
                    session_id: session_id.clone(),
                });
            }
        }
        Command::Enqueue { message } => {
            let id = message.message_id.clone();
            let to = message.to.clone();
            state.messages.insert(id.clone(), message.clone());
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
        Command::PruneLedger {
            session_id,
            message_ids,
        } => {
            if let Some(l) = state.ledgers.get_mut(session_id) {
                l.retain(|m| !message_ids.contains(m));
                if l.is_empty() {
                    state.ledgers.remove(session_id);
                }
            }
        }
        Command::PruneMessages { message_ids } => {
            for id in message_ids {
                if let Some(m) = state.messages.remove(id) {
                    if let Some(q) = state.mailboxes.get_mut(&m.to) {
                        q.retain(|x| x != id);
                        if q.is_empty() {
                            state.mailboxes.remove(&m.to);
                        }
                    }
                    if let Some(l) = state.ledgers.get_mut(&m.to) {
                        l.retain(|x| x != id);
                        if l.is_empty() {
                            state.ledgers.remove(&m.to);
                        }
                    }
                }
                state.receipts.remove(id);
            }
            state.comms.retain(|x| !message_ids.contains(x));
        }
    }
}
