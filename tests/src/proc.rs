//! The one client runner under [`crate::claude::ClaudeRun`] and
//! [`crate::codex::CodexExec`]: spawn a command with piped output, wait at
//! most a timeout, kill its whole process group when it runs past it, and
//! collect what it wrote without waiting forever on pipes a grandchild (an
//! MCP server or hook still exiting) keeps open.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What [`run_with_timeout`] saw.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// Exit status; `None` if the process was killed on timeout.
    pub status: Option<ExitStatus>,
    /// Everything written to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything written to stderr (lossy UTF-8).
    pub stderr: String,
    /// Wall-clock time from spawn to exit.
    pub elapsed: Duration,
    /// Whether the process was killed because it ran past the timeout.
    pub timed_out: bool,
}

impl RunOutput {
    /// Exited on its own with status 0.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    /// A multi-line description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status: {:?}, timed_out: {}, elapsed: {:.2?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.timed_out, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// How long, after the process exited, its pipes may stay open before what
/// was read so far is taken as all.
const PIPE_GRACE: Duration = Duration::from_secs(3);

/// Spawns `cmd` with piped stdout/stderr and waits at most `timeout`. On
/// timeout the whole process group is killed (the command should lead one:
/// `CommandExt::process_group(0)`).
///
/// # Errors
/// When the command cannot be spawned or waited for.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> std::io::Result<RunOutput> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let stdout = PipeReader::spawn(child.stdout.take());
    let stderr = PipeReader::spawn(child.stderr.take());
    let deadline = started + timeout;
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait()? {
            break (Some(status), false);
        }
        if Instant::now() >= deadline {
            let pid = child.id() as libc::pid_t;
            // SAFETY: plain syscalls; the pid is our own child, which has not
            // been reaped yet, so its process-group id is still valid.
            unsafe {
                if libc::getpgid(pid) == pid {
                    libc::killpg(pid, libc::SIGKILL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let grace = Instant::now() + PIPE_GRACE;
    Ok(RunOutput {
        status,
        stdout: stdout.finish(grace),
        stderr: stderr.finish(grace),
        elapsed,
        timed_out,
    })
}

/// Collects a pipe's output on a background thread.
struct PipeReader {
    buf: Arc<Mutex<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PipeReader {
    fn spawn(pipe: Option<impl Read + Send + 'static>) -> PipeReader {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let thread = pipe.map(|mut pipe| {
            let buf = buf.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&chunk[..n]);
                }
            })
        });
        PipeReader { buf, thread }
    }

    /// What was read, waiting for EOF until `deadline` at most.
    fn finish(mut self, deadline: Instant) -> String {
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        let buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }
}
