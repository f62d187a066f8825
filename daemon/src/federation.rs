//! Federation through NATS JetStream (issue 16): the daemon's one outbound
//! network connection, opened only when `OXTAIL_FEDERATION_URL` is set.
//!
//! One tokio task owns the client and posts everything to the actor as
//! [`crate::actor::ToActor::Federation`]; the actor never does this I/O
//! (the model is `crate::codex_app`). The pure side (outbox records, the
//! project key, remote rows) is [`crate::fedstate`].
//!
//! ```text
//!  federation task (tokio)                                   actor thread
//!  every heartbeat: ask for local projects+rows ──PresenceWanted──▶ rows of live agents per project
//!    git root commit + origin → key (cached)    ──Keys──────────▶ FedView::keys (who federates)
//!    KV put `<key>.<daemon>`; stream OXTAIL_<key>,
//!    durable consumer d_<daemon>; KV scan       ──Remote────────▶ FedView::remote (rows, reachable)
//!  publish, in order, one at a time   ◀──Publish── FedQueue journaled and fsynced (the outbox)
//!    Nats-Msg-Id = message id; ack    ──Published─▶ FedSent journaled; parked reply answered
//!  consumer: message                  ──Inbound───▶ tools::inbound → Enqueue …, fsync
//!    ack to JetStream                 ◀──done───── (only after the batch is durable)
//! ```

use crate::fedstate::{Envelope, Outgoing, Presence, PresenceRow, RemotePeer, RemoteRow};
use crate::server::CoreTx;
use async_nats::jetstream;
use futures_util::StreamExt;
use oxtail_proto::Reply;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The presence bucket.
pub const BUCKET: &str = "oxtail_presence";

/// Federation settings, from the daemon's environment.
#[derive(Debug, Clone, PartialEq)]
pub struct FedConfig {
    /// `OXTAIL_FEDERATION_URL`: `nats://host:port` or `tls://host:port`.
    pub url: String,
    /// `OXTAIL_FEDERATION_CREDS`: a NATS `.creds` file.
    pub creds: Option<PathBuf>,
    /// `OXTAIL_FEDERATION_PROJECT`: the federated key of every project of
    /// this daemon, instead of the root commit + origin.
    pub project: Option<String>,
    /// `OXTAIL_FEDERATION_HEARTBEAT_MS`: presence heartbeat (3000 ms).
    pub heartbeat: Duration,
    /// `OXTAIL_FEDERATION_TTL_MS`: a daemon silent this long is
    /// unreachable, and its presence key expires (15 000 ms).
    pub ttl: Duration,
}

impl FedConfig {
    /// The settings, or `None` when `OXTAIL_FEDERATION_URL` is unset or
    /// empty (federation off: no socket is opened).
    pub fn from_env() -> Option<FedConfig> {
        let url = std::env::var("OXTAIL_FEDERATION_URL").ok()?;
        let url = url.trim().to_string();
        if url.is_empty() {
            return None;
        }
        let nonempty = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        Some(FedConfig {
            url,
            creds: nonempty("OXTAIL_FEDERATION_CREDS").map(PathBuf::from),
            project: nonempty("OXTAIL_FEDERATION_PROJECT"),
            heartbeat: Duration::from_millis(
                crate::config::env_u64("OXTAIL_FEDERATION_HEARTBEAT_MS").unwrap_or(3000),
            ),
            ttl: Duration::from_millis(
                crate::config::env_u64("OXTAIL_FEDERATION_TTL_MS").unwrap_or(15_000),
            ),
        })
    }
}

/// `url` without a password or token (`nats://user:pw@h:4222` →
/// `nats://user@h:4222`), for logs and status.
pub fn redact(url: &str) -> String {
    oxtail_proto::status::redact_url(url)
}

/// The warning to show when message bodies would cross the network in the
/// clear to another machine: a plain `nats://` URL to a host that is not
/// loopback, without credentials. `None` otherwise.
pub fn insecure_warning(url: &str, creds: bool) -> Option<String> {
    oxtail_proto::status::federation_warning(url, creds)
}

/// What the task reports to the actor.
#[derive(Debug)]
pub enum Report {
    /// This daemon's federation id.
    Daemon(String),
    /// The link came up or went down.
    Link {
        /// Connected now.
        up: bool,
        /// Why not, when down.
        error: Option<String>,
    },
    /// Local project → federated key, for projects that have one.
    Keys(HashMap<String, String>),
    /// Every remote agent of the federated projects, as last seen.
    Remote(Vec<RemoteRow>),
    /// The publish of an outbox message finished.
    Published {
        /// The message.
        message_id: String,
        /// `Err` with the reason when JetStream did not acknowledge it.
        result: Result<(), String>,
    },
    /// A message from another machine. `done` is answered after the
    /// batch that enqueued it is durable: `Ok` → ack to JetStream;
    /// `Error` with code `federation-refused` → ack and drop; any other
    /// error → no ack (JetStream redelivers).
    Inbound {
        /// The message.
        env: Box<Envelope>,
        /// Where the answer goes.
        done: oneshot::Sender<Reply>,
    },
    /// A receipt for a message sent from here; `done` as for `Inbound`.
    Receipt {
        /// The receipt.
        receipt: crate::fedstate::RemoteReceipt,
        /// Where the answer goes.
        done: oneshot::Sender<Reply>,
    },
    /// The heartbeat wants the local projects (with agents that have not
    /// ended) and their presence rows.
    PresenceWanted(oneshot::Sender<Vec<LocalProject>>),
}

/// A local project with its presence rows (possibly none: its agents'
/// clients are gone for now, but their mail is still taken in).
#[derive(Debug, Clone)]
pub struct LocalProject {
    /// [`crate::state::Scope::project`].
    pub project: String,
    /// Its main work tree (where git runs for the key).
    pub root: String,
    /// Its live agents.
    pub rows: Vec<PresenceRow>,
}

enum Cmd {
    Publish(Box<Outgoing>),
    Resume,
    Receipt(Box<(RemotePeer, crate::fedstate::RemoteReceipt)>),
}

/// The handle the actor keeps.
pub struct Federation {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl Federation {
    /// Starts the task on `rt`; it connects (retrying forever) to
    /// `cfg.url`.
    pub fn spawn(rt: &tokio::runtime::Handle, core: CoreTx, cfg: FedConfig) -> Federation {
        let (tx, rx) = mpsc::unbounded_channel();
        rt.spawn(run(cfg, core, rx));
        Federation { tx }
    }

    /// Publishes `out` after every earlier one (in order, one at a time).
    pub fn publish(&self, out: Outgoing) {
        let _ = self.tx.send(Cmd::Publish(Box::new(out)));
    }

    /// Tells the daemon at `to` that its message reached our agent (best
    /// effort: not retried).
    pub fn receipt(&self, to: RemotePeer, receipt: crate::fedstate::RemoteReceipt) {
        let _ = self.tx.send(Cmd::Receipt(Box::new((to, receipt))));
    }

    /// After a failed publish every later one fails at once (order is
    /// kept); this lets publishing start again.
    pub fn resume(&self) {
        let _ = self.tx.send(Cmd::Resume);
    }
}

async fn post(core: &CoreTx, r: Report) -> bool {
    core.send(crate::actor::ToActor::Federation(Box::new(r)))
        .await
        .is_ok()
}

/// This daemon's federation id: a random id kept in
/// `<state dir>/federation-id`, so its durable consumer survives restarts.
fn daemon_id() -> String {
    let path = oxtail_proto::paths::state_dir().join("federation-id");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim();
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return s.to_string();
        }
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    if let Err(e) = oxtail_proto::fsutil::write_atomic(
        &path,
        &id,
        oxtail_proto::fsutil::FileMode::Exactly(0o600),
    ) {
        tracing::warn!(error = %e, path = %path.display(), "cannot keep the federation id; it changes at the next start");
    }
    id
}

fn host_name() -> String {
    std::env::var("OXTAIL_FEDERATION_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| sysinfo::System::host_name().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The federated key of the repository at `root` (blocking: runs git).
fn key_of_repo(root: &str, override_key: Option<&str>) -> Option<String> {
    if override_key.is_some() {
        return crate::fedstate::project_key(&[], None, override_key);
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let roots: Vec<String> = git(&["rev-list", "--max-parents=0", "HEAD"])?
        .lines()
        .map(str::to_string)
        .collect();
    let origin = git(&["config", "--get", "remote.origin.url"]);
    crate::fedstate::project_key(&roots, origin.as_deref(), None)
}

struct Task {
    cfg: FedConfig,
    core: CoreTx,
    js: jetstream::Context,
    daemon: String,
    host: String,
    /// project → (key, when computed); `None` keys are retried.
    keys: HashMap<String, (Option<String>, Instant)>,
    sent_keys: HashMap<String, String>,
    /// Keys whose stream and consumer are set up (since the last
    /// reconnect).
    ready: HashSet<String>,
    /// Keys with a consuming task.
    consuming: HashSet<String>,
    kv: Option<jetstream::kv::Store>,
    /// Presence key → (revision, when it last changed).
    seen: HashMap<String, (u64, Instant)>,
    /// Our own presence keys last written.
    mine: HashSet<String>,
    broken: bool,
    link_up: bool,
}

async fn run(cfg: FedConfig, core: CoreTx, mut rx: mpsc::UnboundedReceiver<Cmd>) {
    let daemon = tokio::task::spawn_blocking(daemon_id)
        .await
        .unwrap_or_else(|_| uuid::Uuid::new_v4().simple().to_string());
    if !post(&core, Report::Daemon(daemon.clone())).await {
        return;
    }
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<async_nats::Event>();
    let mut opts = async_nats::ConnectOptions::new()
        .name(format!("oxtail {}", oxtail_proto::version()))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|n| Duration::from_millis((n as u64 * 100).clamp(100, 2000)))
        .event_callback(move |e| {
            let t = ev_tx.clone();
            async move {
                let _ = t.send(e);
            }
        });
    if let Some(c) = &cfg.creds {
        opts = match opts.credentials_file(c).await {
            Ok(o) => o,
            Err(e) => {
                let why = format!("cannot read OXTAIL_FEDERATION_CREDS {}: {e}", c.display());
                tracing::error!("{why}; federation stays off");
                post(
                    &core,
                    Report::Link {
                        up: false,
                        error: Some(why),
                    },
                )
                .await;
                return;
            }
        };
    }
    let client = match opts.connect(cfg.url.as_str()).await {
        Ok(c) => c,
        Err(e) => {
            let why = format!("cannot connect to {}: {e}", redact(&cfg.url));
            tracing::error!("{why}; federation stays off");
            post(
                &core,
                Report::Link {
                    up: false,
                    error: Some(why),
                },
            )
            .await;
            return;
        }
    };
    // A publish not acknowledged within 3 s counts as failed: the message
    // stays in the outbox and goes again, in order (its id dedupes it).
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(3))
        .ack_timeout(Duration::from_secs(3))
        .build(client.clone());
    let mut t = Task {
        host: host_name(),
        cfg,
        core,
        js,
        daemon,
        keys: HashMap::new(),
        sent_keys: HashMap::new(),
        ready: HashSet::new(),
        consuming: HashSet::new(),
        kv: None,
        seen: HashMap::new(),
        mine: HashSet::new(),
        broken: false,
        link_up: false,
    };
    tracing::info!(url = %redact(&t.cfg.url), daemon = %t.daemon, host = %t.host, "federation: connecting");
    let mut hb = tokio::time::interval(t.cfg.heartbeat);
    hb.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut link = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => return,
                Some(Cmd::Resume) => t.broken = false,
                Some(Cmd::Receipt(r)) => {
                    let (to, receipt) = *r;
                    if let Err(e) = t.publish_receipt(&to, receipt).await {
                        tracing::debug!(error = %e, "federation: receipt not sent");
                    }
                }
                Some(Cmd::Publish(o)) => {
                    let id = o.message.message_id.clone();
                    let result = if t.broken {
                        Err("an earlier message is still unsent; kept in order".to_string())
                    } else {
                        t.publish(&o).await
                    };
                    if result.is_err() {
                        t.broken = true;
                    }
                    if !post(&t.core, Report::Published { message_id: id, result }).await {
                        return;
                    }
                }
            },
            Some(e) = ev_rx.recv() => {
                tracing::info!(event = %e, "federation: link event");
                t.check_link(&client).await;
                if t.link_up {
                    t.heartbeat().await;
                }
            }
            _ = link.tick() => {
                let was = t.link_up;
                t.check_link(&client).await;
                if t.link_up && !was {
                    t.heartbeat().await;
                }
            }
            _ = hb.tick() => t.heartbeat().await,
        }
    }
}

impl Task {
    async fn check_link(&mut self, client: &async_nats::Client) {
        let up = client.connection_state() == async_nats::connection::State::Connected;
        if up != self.link_up {
            self.link_up = up;
            if !up {
                // Reconnected later: set streams, consumers and the bucket
                // up again (the server may have restarted).
                self.kv = None;
            }
            let error = (!up).then(|| format!("not connected to {}", redact(&self.cfg.url)));
            tracing::info!(up, "federation: link");
            post(&self.core, Report::Link { up, error }).await;
        }
    }

    async fn publish(&mut self, o: &Outgoing) -> Result<(), String> {
        let env = Envelope {
            v: 1,
            message: o.message.clone(),
            from: RemotePeer {
                key: o.to.key.clone(),
                daemon: self.daemon.clone(),
                host: self.host.clone(),
                name: o.message.from_name.clone(),
            },
            wake: o.wake,
            tool: o.tool.clone(),
        };
        let payload = serde_json::to_vec(&env).map_err(|e| e.to_string())?;
        let subject = crate::fedstate::subject_for(&o.to, &o.message.to);
        let ack = self
            .js
            .send_publish(
                subject,
                jetstream::message::PublishMessage::build()
                    .payload(payload.into())
                    .message_id(&o.message.message_id),
            )
            .await
            .map_err(|e| format!("publish: {e}"))?;
        ack.await.map_err(|e| format!("publish ack: {e}"))?;
        Ok(())
    }

    async fn publish_receipt(
        &mut self,
        to: &RemotePeer,
        receipt: crate::fedstate::RemoteReceipt,
    ) -> Result<(), String> {
        if !self.link_up {
            return Err("link down".into());
        }
        let id = format!("rcpt_{}", receipt.message_id);
        let env = crate::fedstate::ReceiptEnvelope {
            v: 1,
            receipt,
            from: RemotePeer {
                key: to.key.clone(),
                daemon: self.daemon.clone(),
                host: self.host.clone(),
                name: None,
            },
        };
        let payload = serde_json::to_vec(&env).map_err(|e| e.to_string())?;
        let subject = format!("oxtail.{}.to.{}.receipts", to.key, to.daemon);
        let ack = self
            .js
            .send_publish(
                subject,
                jetstream::message::PublishMessage::build()
                    .payload(payload.into())
                    .message_id(&id),
            )
            .await
            .map_err(|e| format!("publish: {e}"))?;
        ack.await.map_err(|e| format!("publish ack: {e}"))?;
        Ok(())
    }

    async fn heartbeat(&mut self) {
        let (tx, rx) = oneshot::channel();
        if !post(&self.core, Report::PresenceWanted(tx)).await {
            return;
        }
        let Ok(projects) = rx.await else { return };
        // Keys: git runs off every thread that matters, cached.
        for p in &projects {
            let stale = match self.keys.get(&p.project) {
                None => true,
                Some((None, at)) => at.elapsed() > Duration::from_secs(30),
                Some(_) => false,
            };
            if stale {
                let root = p.root.clone();
                let ov = self.cfg.project.clone();
                let key = tokio::task::spawn_blocking(move || key_of_repo(&root, ov.as_deref()))
                    .await
                    .ok()
                    .flatten();
                self.keys.insert(p.project.clone(), (key, Instant::now()));
            }
        }
        let keys: HashMap<String, String> = self
            .keys
            .iter()
            .filter_map(|(p, (k, _))| k.clone().map(|k| (p.clone(), k)))
            .collect();
        if keys != self.sent_keys {
            self.sent_keys = keys.clone();
            post(&self.core, Report::Keys(keys.clone())).await;
        }
        if !self.link_up {
            return;
        }
        if let Err(e) = self.publish_presence(&projects, &keys).await {
            tracing::warn!(error = %e, "federation: presence");
        }
    }

    async fn bucket(&mut self) -> Result<jetstream::kv::Store, String> {
        if let Some(kv) = &self.kv {
            return Ok(kv.clone());
        }
        let kv = match self.js.get_key_value(BUCKET).await {
            Ok(kv) => kv,
            Err(_) => {
                // The bucket's stream, made as `create_key_value` would
                // (which first reads the account info, a shape servers
                // before 2.10 answer differently).
                self.js
                    .get_or_create_stream(jetstream::stream::Config {
                        name: format!("KV_{BUCKET}"),
                        description: Some("oxtail agents per federated project and daemon".into()),
                        subjects: vec![format!("$KV.{BUCKET}.>")],
                        max_messages_per_subject: 1,
                        max_age: self.cfg.ttl,
                        discard: jetstream::stream::DiscardPolicy::New,
                        allow_rollup: true,
                        deny_delete: true,
                        allow_direct: true,
                        storage: jetstream::stream::StorageType::File,
                        num_replicas: 1,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| format!("presence bucket: {e}"))?;
                self.js
                    .get_key_value(BUCKET)
                    .await
                    .map_err(|e| format!("presence bucket: {e}"))?
            }
        };
        self.ready.clear();
        self.kv = Some(kv.clone());
        Ok(kv)
    }

    async fn ensure_key(&mut self, key: &str) -> Result<(), String> {
        if self.ready.contains(key) {
            return Ok(());
        }
        consumer_for(&self.js, key, &self.daemon).await?;
        if self.consuming.insert(key.to_string()) {
            // One consuming task per key for the daemon's life: two on one
            // durable consumer would split (and reorder) its messages.
            tokio::spawn(consume(
                self.js.clone(),
                self.core.clone(),
                key.to_string(),
                self.daemon.clone(),
            ));
        }
        self.ready.insert(key.to_string());
        Ok(())
    }

    async fn publish_presence(
        &mut self,
        projects: &[LocalProject],
        keys: &HashMap<String, String>,
    ) -> Result<(), String> {
        let kv = self.bucket().await?;
        let mut by_key: HashMap<&str, Vec<PresenceRow>> = HashMap::new();
        for p in projects {
            if let Some(k) = keys.get(&p.project) {
                by_key.entry(k).or_default().extend(p.rows.iter().cloned());
            }
        }
        let mut mine = HashSet::new();
        for (k, rows) in by_key {
            self.ensure_key(k).await?;
            if rows.is_empty() {
                continue;
            }
            let entry = format!("{k}.{}", self.daemon);
            let v = Presence {
                daemon: self.daemon.clone(),
                host: self.host.clone(),
                rows,
            };
            let bytes = serde_json::to_vec(&v).map_err(|e| e.to_string())?;
            kv.put(&entry, bytes.into())
                .await
                .map_err(|e| format!("presence put: {e}"))?;
            mine.insert(entry);
        }
        for gone in self.mine.difference(&mine) {
            let _ = kv.delete(gone).await;
        }
        self.mine = mine;
        // Everyone else's rows in the projects we federate.
        let ours: HashSet<&String> = keys.values().collect();
        let mut names = kv.keys().await.map_err(|e| format!("presence keys: {e}"))?;
        let mut rows = Vec::new();
        let mut present = HashSet::new();
        while let Some(k) = names.next().await {
            let Ok(k) = k else { continue };
            let Some((key, daemon)) = k.split_once('.') else {
                continue;
            };
            if daemon == self.daemon || !ours.contains(&key.to_string()) {
                continue;
            }
            let Ok(Some(entry)) = kv.entry(k.clone()).await else {
                continue;
            };
            if entry.operation != jetstream::kv::Operation::Put {
                continue;
            }
            let Ok(p) = serde_json::from_slice::<Presence>(&entry.value) else {
                continue;
            };
            present.insert(k.clone());
            let seen = self
                .seen
                .entry(k.clone())
                .or_insert((entry.revision, Instant::now()));
            if seen.0 != entry.revision {
                *seen = (entry.revision, Instant::now());
            }
            let reachable = seen.1.elapsed() < self.cfg.ttl;
            for r in p.rows {
                rows.push(RemoteRow {
                    peer: RemotePeer {
                        key: key.to_string(),
                        daemon: p.daemon.clone(),
                        host: p.host.clone(),
                        name: r.name.clone(),
                    },
                    row: r,
                    reachable,
                });
            }
        }
        self.seen.retain(|k, _| present.contains(k));
        post(&self.core, Report::Remote(rows)).await;
        Ok(())
    }
}

/// The stream of federated project `key` and this daemon's durable
/// consumer on it, created when missing.
async fn consumer_for(
    js: &jetstream::Context,
    key: &str,
    daemon: &str,
) -> Result<jetstream::consumer::Consumer<jetstream::consumer::pull::Config>, String> {
    let stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: format!("OXTAIL_{key}"),
            subjects: vec![format!("oxtail.{key}.>")],
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            storage: jetstream::stream::StorageType::File,
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("stream OXTAIL_{key}: {e}"))?;
    let name = format!("d_{daemon}");
    stream
        .get_or_create_consumer(
            &name,
            jetstream::consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: format!("oxtail.{key}.to.{daemon}.>"),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(10),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("consumer {name}: {e}"))
}

/// Consumes this daemon's messages of one federated project, one at a
/// time and in order: each goes to the actor, and is acked to JetStream
/// only once the actor says its batch is durable. After an error (a server
/// restart) it sets the consumer up again and pulls on.
async fn consume(js: jetstream::Context, core: CoreTx, key: String, daemon: String) {
    loop {
        let consumer = match consumer_for(&js, &key, &daemon).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(key, error = %e, "federation: consumer not ready");
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        let mut msgs = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(key, error = %e, "federation: consumer");
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        while let Some(m) = msgs.next().await {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(key, error = %e, "federation: consumer stream");
                    break;
                }
            };
            let (tx, rx) = oneshot::channel();
            let (id, report) = match serde_json::from_slice::<Envelope>(&m.payload) {
                Ok(env) => (
                    env.message.message_id.clone(),
                    Report::Inbound {
                        env: Box::new(env),
                        done: tx,
                    },
                ),
                Err(e) => {
                    match serde_json::from_slice::<crate::fedstate::ReceiptEnvelope>(&m.payload) {
                        Ok(r) => (
                            r.receipt.message_id.clone(),
                            Report::Receipt {
                                receipt: r.receipt,
                                done: tx,
                            },
                        ),
                        Err(_) => {
                            tracing::warn!(key, error = %e, "federation: undecodable message dropped");
                            let _ = m.ack().await;
                            continue;
                        }
                    }
                }
            };
            if !post(&core, report).await {
                return;
            }
            match rx.await {
                Ok(Reply::Ok { .. }) => {
                    if let Err(e) = m.double_ack().await {
                        tracing::warn!(key, message_id = %id, error = %e, "federation: ack failed (it will be redelivered and deduplicated)");
                    }
                }
                Ok(Reply::Error { code, message }) if code == "federation-refused" => {
                    tracing::warn!(key, message_id = %id, reason = %message, "federation: message refused and dropped");
                    let _ = m.ack().await;
                }
                Ok(Reply::Error { message, .. }) => {
                    tracing::warn!(key, message_id = %id, reason = %message, "federation: not stored; JetStream redelivers it");
                }
                Err(_) => return,
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
