//! `oxtail doctor` as a user runs it, the real binary against a throwaway
//! HOME: everything missing on a fresh HOME (each problem with its fix),
//! all green for the clients after `oxtail setup` (but Codex's hooks still
//! untrusted until their trust records exist), the daemon once running, and
//! a precise failure after one hook is deleted. Also the smaller CLI points:
//! `ctl` errors for unknown ids and its human output, and the hint a bare
//! `oxtail mcp` prints on a terminal.

use oxtail_tests::harness::Instance;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// `oxtail <args>` with `HOME` = `home`, the instance's `OXTAIL_HOME`, and
/// `PATH` = `path` (the clients' PATH as doctor sees it).
fn run(ox: &Instance, home: &Path, path: &str, cwd: &Path, args: &[&str]) -> Output {
    ox.command()
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("PATH", path)
        .env_remove("CODEX_HOME")
        .env_remove("CLAUDE_CONFIG_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn doctor(ox: &Instance, home: &Path, path: &str, cwd: &Path) -> (Option<i32>, Value) {
    let o = run(ox, home, path, cwd, &["doctor", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code(), v)
}

fn check<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {v:#}"))
}

fn status<'a>(v: &'a Value, name: &str) -> &'a str {
    check(v, name)["status"].as_str().unwrap()
}

/// A PATH with `oxtail` (a link to the tested binary) first, then the
/// system's directories (for `git`, `tmux`).
fn path_with_oxtail(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("oxtail")).unwrap();
    format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display())
}

#[test]
fn doctor_on_a_fresh_home_names_every_missing_piece_with_its_fix() {
    let ox = Instance::new(BIN);
    let home = tempfile::tempdir().unwrap();
    let (code, v) = doctor(&ox, home.path(), "/usr/bin:/bin", home.path());
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["ok"], false);
    for name in [
        "claude_mcp",
        "claude_hooks",
        "claude_permissions",
        "codex_mcp",
        "codex_approval",
        "codex_hooks",
        "codex_hooks_trusted",
    ] {
        assert_eq!(status(&v, name), "fail", "{name}: {v:#}");
        assert!(
            check(&v, name)["fix"].is_string(),
            "{name} has a fix: {v:#}"
        );
    }
    assert!(check(&v, "claude_mcp")["fix"]
        .as_str()
        .unwrap()
        .contains("oxtail setup"));
    assert!(check(&v, "claude_hooks")["fix"]
        .as_str()
        .unwrap()
        .contains("oxtail install-hook --client claude"));
    // No `oxtail` on this PATH, and no daemon (doctor does not start one).
    assert_eq!(status(&v, "binary"), "warn", "{v:#}");
    assert_eq!(status(&v, "daemon"), "warn", "{v:#}");
    assert!(ox.daemon_pid().is_none(), "doctor started a daemon");
    assert_eq!(status(&v, "state_dir"), "ok", "{v:#}");

    // The human report prints each fix under its problem.
    let o = run(&ox, home.path(), "/usr/bin:/bin", home.path(), &["doctor"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1));
    assert!(text.contains("FAIL claude_permissions"), "{text}");
    assert!(text.contains("fix: oxtail setup --client claude"), "{text}");
    assert!(text.contains("problems"), "{text}");
}

#[test]
fn doctor_after_setup_then_after_a_hook_is_deleted() {
    let ox = Instance::new(BIN);
    let home = tempfile::tempdir().unwrap();
    let path = path_with_oxtail(home.path());
    let o = run(&ox, home.path(), &path, home.path(), &["setup"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ox.ctl(&["ping"]).unwrap();

    let (code, v) = doctor(&ox, home.path(), &path, home.path());
    for name in [
        "binary",
        "claude_mcp",
        "claude_hooks",
        "claude_permissions",
        "codex_mcp",
        "codex_approval",
        "codex_hooks",
        "daemon",
        "state_dir",
    ] {
        assert_eq!(status(&v, name), "ok", "{name}: {v:#}");
    }
    assert!(check(&v, "daemon")["detail"]
        .as_str()
        .unwrap()
        .contains(env!("CARGO_PKG_VERSION")));
    // Codex runs its hooks only once a person trusted them.
    assert_eq!(status(&v, "codex_hooks_trusted"), "fail", "{v:#}");
    assert!(check(&v, "codex_hooks_trusted")["fix"]
        .as_str()
        .unwrap()
        .contains("/hooks"));
    assert_eq!(code, Some(1));

    // Trust records as Codex 0.169 writes them (fixtures' config.toml:
    // `[hooks.state."<hooks.json>:<event>:<group>:<handler>"]`).
    let hooks_json = home.path().join(".codex/hooks.json");
    let mut config = std::fs::read_to_string(home.path().join(".codex/config.toml")).unwrap();
    for event in [
        "session_start",
        "user_prompt_submit",
        "pre_tool_use",
        "post_tool_use",
        "stop",
    ] {
        config.push_str(&format!(
            "\n[hooks.state.\"{}:{event}:0:0\"]\ntrusted_hash = \"sha256:00\"\n",
            hooks_json.display()
        ));
    }
    std::fs::write(home.path().join(".codex/config.toml"), config).unwrap();
    let (code, v) = doctor(&ox, home.path(), &path, home.path());
    assert_eq!(status(&v, "codex_hooks_trusted"), "ok", "{v:#}");
    if status(&v, "tmux") == "ok" {
        assert_eq!(code, Some(0), "{v:#}");
        assert_eq!(v["ok"], true);
    }

    // Delete the async idle-wait Stop hook by hand.
    let settings_path = home.path().join(".claude/settings.json");
    let mut settings: Value =
        serde_json::from_str(&std::fs::read_to_string(&settings_path).unwrap()).unwrap();
    let stop = settings["hooks"]["Stop"].as_array_mut().unwrap();
    stop.retain(|g| !g.to_string().contains("idle-wait"));
    std::fs::write(&settings_path, settings.to_string()).unwrap();
    let (code, v) = doctor(&ox, home.path(), &path, home.path());
    assert_eq!(code, Some(1));
    assert_eq!(status(&v, "claude_hooks"), "fail", "{v:#}");
    let c = check(&v, "claude_hooks");
    assert!(
        c["detail"].as_str().unwrap().contains("Stop idle-wait"),
        "{c}"
    );
    assert_eq!(c["fix"], "oxtail install-hook --client claude");
    // The fix fixes it.
    let o = run(
        &ox,
        home.path(),
        &path,
        home.path(),
        &["install-hook", "--client", "claude"],
    );
    assert!(o.status.success());
    let (_, v) = doctor(&ox, home.path(), &path, home.path());
    assert_eq!(status(&v, "claude_hooks"), "ok", "{v:#}");
}

#[test]
fn ctl_refuses_unknown_ids_and_speaks_human_by_default() {
    let ox = Instance::new(BIN);
    ox.ctl(&["ping"]).unwrap();
    for args in [
        &["ctl", "inbox", "nosuch"][..],
        &["ctl", "mark", "nosuch", "busy"],
    ] {
        let o = ox
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?} must fail");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("target-not-found"), "{err}");
        assert!(err.contains("no agent with session id `nosuch`"), "{err}");
    }
    let o = ox
        .command()
        .args(["ctl", "ping"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("pong from oxtail daemon"), "{out}");
    let v = ox.ctl(&["ping"]).unwrap();
    assert_eq!(v["pong"], true);
}

#[test]
fn a_bare_oxtail_on_a_terminal_says_what_it_is() {
    use std::io::{Read, Write};
    // script(1) gives `oxtail mcp` a real terminal on stdin.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping: script(1) not installed");
        return;
    }
    let ox = Instance::new(BIN);
    let mut child = Command::new("script")
        .args(["-qfec", &format!("{BIN} mcp"), "/dev/null"])
        .env("OXTAIL_HOME", ox.home())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = String::new();
    while !seen.contains("oxtail doctor") && std::time::Instant::now() < deadline {
        if let Ok(b) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            seen.push_str(&String::from_utf8_lossy(&b));
        }
    }
    // Ctrl-D ends it, as the hint says.
    let _ = child.stdin.as_mut().unwrap().write_all(b"\x04");
    let _ = child.stdin.take();
    let gone = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > gone {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.wait();
    assert!(seen.contains("waiting for JSON-RPC on stdin"), "{seen}");
    assert!(seen.contains("oxtail setup"), "{seen}");

    // Not on a terminal (as the clients run it): no hint.
    let o = ox
        .command()
        .arg("mcp")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("oxtail setup"), "{err}");
}

/// Issue 15: doctor says whether oxtail can reach Codex through its
/// app-server: usable with Codex's default daemon, a warning (keys only)
/// under `daemon_auto_start = false`, a failure when the control socket is
/// open to other users.
#[test]
fn doctor_says_whether_the_codex_app_server_route_is_usable() {
    use std::os::unix::fs::PermissionsExt;
    let ox = Instance::new(BIN);
    let home = tempfile::tempdir().unwrap();
    let path = path_with_oxtail(home.path());
    let o = run(
        &ox,
        home.path(),
        &path,
        home.path(),
        &["setup", "--client", "codex"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config = std::fs::read_to_string(home.path().join(".codex/config.toml")).unwrap();
    assert!(!config.contains("daemon_auto_start"), "{config}");

    let (_, v) = doctor(&ox, home.path(), &path, home.path());
    assert_eq!(status(&v, "codex_app_server"), "ok", "{v:#}");
    let detail = check(&v, "codex_app_server")["detail"].as_str().unwrap();
    assert!(detail.starts_with("usable"), "{detail}");
    assert!(detail.contains("turn/start"), "{detail}");

    // A socket as Codex makes it (a symlink to a private socket), but open
    // to everyone: oxtail will not use it.
    let ctl = home.path().join(".codex/app-server-control");
    std::fs::create_dir_all(&ctl).unwrap();
    let real = home.path().join("daemon.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&real).unwrap();
    std::os::unix::fs::symlink(&real, ctl.join("app-server-control.sock")).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, v) = doctor(&ox, home.path(), &path, home.path());
    assert_eq!(status(&v, "codex_app_server"), "ok", "{v:#}");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, v) = doctor(&ox, home.path(), &path, home.path());
    assert_eq!(status(&v, "codex_app_server"), "fail", "{v:#}");
    assert!(check(&v, "codex_app_server")["detail"]
        .as_str()
        .unwrap()
        .contains("open to other users"));
    assert_eq!(code, Some(1));

    // The hidden --codex-no-daemon still works, and doctor warns about it.
    let o = run(
        &ox,
        home.path(),
        &path,
        home.path(),
        &["setup", "--client", "codex", "--codex-no-daemon"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, v) = doctor(&ox, home.path(), &path, home.path());
    assert_eq!(status(&v, "codex_app_server"), "warn", "{v:#}");
    let c = check(&v, "codex_app_server");
    assert!(c["detail"].as_str().unwrap().contains("typing"), "{c}");
    assert!(
        c["fix"].as_str().unwrap().contains("daemon_auto_start"),
        "{c}"
    );
}
