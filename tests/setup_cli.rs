//! `oxtail setup`, `install-hook` and `uninstall-hook` as a user runs them:
//! the real binary against a throwaway HOME that already holds other tools'
//! settings. Checks what is written, that a second run changes nothing, that
//! `--dry-run` writes nothing, that broken files are refused untouched, and
//! that the installed hook commands run under `sh -c` the way the clients
//! run them.

use oxtail_tests::harness::git;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        Home { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }
    fn json(&self, rel: &str) -> Value {
        serde_json::from_str(&self.read(rel)).unwrap()
    }
    fn oxtail(&self, args: &[&str], cwd: &Path) -> Output {
        Command::new(BIN)
            .args(args)
            .current_dir(cwd)
            .env("HOME", self.dir.path())
            .env_remove("CODEX_HOME")
            .env_remove("CLAUDE_CONFIG_DIR")
            .env("OXTAIL_HOME", self.path("oxtail-state"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn data(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("hooks/tests/data")
            .join(name),
    )
    .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn seed(h: &Home) {
    h.write(".claude.json", &data("claude_user_state.json"));
    h.write(".claude/settings.json", &data("claude_settings.json"));
    h.write(".codex/config.toml", &data("codex_config.toml"));
}

fn files(h: &Home) -> Vec<(String, Option<String>)> {
    [
        ".claude.json",
        ".claude/settings.json",
        ".codex/config.toml",
        ".codex/hooks.json",
    ]
    .iter()
    .map(|r| (r.to_string(), std::fs::read_to_string(h.path(r)).ok()))
    .collect()
}

#[test]
fn setup_dry_run_then_apply_then_idempotent() {
    let h = Home::new();
    seed(&h);
    let before = files(&h);
    let out = stdout(&h.oxtail(&["setup", "--dry-run"], h.dir.path()));
    assert!(out.contains("~/.claude.json: would update"), "{out}");
    assert!(out.contains("~/.codex/hooks.json: would create"), "{out}");
    assert!(
        out.contains("/hooks"),
        "Codex trust step is explained: {out}"
    );
    assert!(out.contains("dry run"), "{out}");
    assert_eq!(files(&h), before, "dry run wrote nothing");

    let out = stdout(&h.oxtail(&["setup"], h.dir.path()));
    assert!(out.contains("~/.claude.json: updated"), "{out}");
    assert!(out.contains("added MCP server \"oxtail\""), "{out}");
    let exe = std::fs::canonicalize(BIN).unwrap();
    let exe = exe.to_str().unwrap();
    let cj = h.json(".claude.json");
    assert_eq!(cj["mcpServers"]["oxtail"]["command"], exe);
    assert_eq!(cj["mcpServers"]["oxtail"]["args"][0], "mcp");
    assert_eq!(
        cj["mcpServers"]["github"]["env"]["GITHUB_PERSONAL_ACCESS_TOKEN"],
        "ghp_redacted"
    );
    assert_eq!(cj["numStartups"], 412);
    let toml = h.read(".codex/config.toml");
    assert!(toml.contains("# Tools I rely on every day."));
    assert!(toml.contains(&format!("[mcp_servers.oxtail]\ncommand = \"{exe}\"")));
    let settings = h.json(".claude/settings.json");
    assert_eq!(
        settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"],
        "python3 ~/.claude/hooks/bash_guard.py"
    );

    let json: Value =
        serde_json::from_str(&stdout(&h.oxtail(&["setup", "--json"], h.dir.path()))).unwrap();
    let actions: Vec<&str> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["unchanged"; 4], "{json}");
}

#[test]
fn installed_hook_commands_run_under_a_shell_and_fail_open() {
    let h = Home::new();
    stdout(&h.oxtail(&["install-hook"], h.dir.path()));
    let stdin = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/claude-code-2.1.329/hooks/002-PreToolUse.json"),
    )
    .unwrap();
    let stdin =
        serde_json::to_vec(&serde_json::from_slice::<Value>(&stdin).unwrap()["stdin"]).unwrap();
    for file in [".claude/settings.json", ".codex/hooks.json"] {
        let v = h.json(file);
        let mut n = 0;
        for groups in v["hooks"].as_object().unwrap().values() {
            for g in groups.as_array().unwrap() {
                for hk in g["hooks"].as_array().unwrap() {
                    let cmd = hk["command"].as_str().unwrap();
                    if cmd.contains("idle-wait") {
                        assert_eq!(hk["async"], true);
                        assert_eq!(hk["asyncRewake"], true);
                        continue;
                    }
                    if cmd.contains("session-start") {
                        // Would start a daemon (tested in hooks_failopen).
                        continue;
                    }
                    // As Claude Code (sh -c) and Codex ($SHELL -lc) run it;
                    // no daemon is running, so it must exit 0 silently.
                    let mut child = Command::new("sh")
                        .arg("-c")
                        .arg(cmd)
                        .env("OXTAIL_HOME", h.path("oxtail-state"))
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap();
                    child.stdin.take().unwrap().write_all(&stdin).unwrap();
                    let o = child.wait_with_output().unwrap();
                    assert_eq!(o.status.code(), Some(0), "{cmd}");
                    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{cmd}: {o:?}");
                    n += 1;
                }
            }
        }
        assert!(n >= 4, "{file}: {n} hooks");
    }
    assert!(
        !h.path("oxtail-state/run/daemon.sock").exists(),
        "no hook but session-start may start a daemon"
    );
}

#[test]
fn uninstall_hook_restores_the_settings_and_keeps_the_mcp_server() {
    let h = Home::new();
    seed(&h);
    stdout(&h.oxtail(&["setup"], h.dir.path()));
    let out = stdout(&h.oxtail(&["uninstall-hook"], h.dir.path()));
    assert!(out.contains("~/.claude/settings.json: updated"), "{out}");
    assert_eq!(
        h.read(".claude/settings.json"),
        data("claude_settings.json")
    );
    let codex = h.json(".codex/hooks.json");
    assert_eq!(codex, serde_json::json!({}), "only our entries were there");
    assert!(h.json(".claude.json")["mcpServers"]["oxtail"].is_object());
    let out = stdout(&h.oxtail(&["uninstall-hook", "--client", "claude"], h.dir.path()));
    assert!(out.contains("unchanged"), "{out}");
}

#[test]
fn broken_settings_are_refused_and_nothing_is_written() {
    let h = Home::new();
    h.write(".claude/settings.json", "{\n  \"hooks\": {\n");
    let o = h.oxtail(&["install-hook"], h.dir.path());
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("settings.json is not valid JSON"), "{err}");
    assert_eq!(h.read(".claude/settings.json"), "{\n  \"hooks\": {\n");
    assert!(!h.path(".codex/hooks.json").exists());
    let o = h.oxtail(&["install-hook", "--client", "gemini"], h.dir.path());
    assert_ne!(o.status.code(), Some(0), "clap rejects unknown clients");
}

#[test]
fn project_scope_writes_the_repository_root() {
    let h = Home::new();
    let repo = h.path("work/app");
    std::fs::create_dir_all(repo.join("src/deep")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join(".mcp.json"), data("project_mcp.json")).unwrap();
    let out = stdout(&h.oxtail(
        &[
            "setup",
            "--scope",
            "project",
            "--client",
            "claude",
            "--no-hooks",
        ],
        &repo.join("src/deep"),
    ));
    assert!(out.contains(".mcp.json: updated"), "{out}");
    let mcp: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join(".mcp.json")).unwrap()).unwrap();
    assert_eq!(mcp["mcpServers"]["oxtail"]["alwaysLoad"], true);
    assert!(mcp["mcpServers"]["postgres"].is_object());
    let local: Value = serde_json::from_str(
        &std::fs::read_to_string(repo.join(".claude/settings.local.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        local["enabledMcpjsonServers"],
        serde_json::json!(["oxtail"])
    );
    assert!(!h.path(".claude.json").exists(), "user scope untouched");
    // --no-hooks: no hooks, but agents still get oxtail's tools without a
    // prompt.
    let settings = h.json(".claude/settings.json");
    assert_eq!(
        settings,
        serde_json::json!({"permissions": {"allow": ["mcp__oxtail"]}}),
        "--no-hooks"
    );
}

/// Codex gives its MCP servers almost no environment, so a non-default
/// state dir must travel in the server entry's own `env` table.
#[test]
fn setup_carries_a_custom_oxtail_home_into_codex_config() {
    let home = tempfile::tempdir().unwrap();
    let run = || {
        Command::new(BIN)
            .args(["setup", "--client", "codex"])
            .env("HOME", home.path())
            .env_remove("CODEX_HOME")
            .env("OXTAIL_HOME", "/srv/oxtail-state")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = std::fs::read_to_string(home.path().join(".codex/config.toml")).unwrap();
    assert!(
        toml.contains(r#"OXTAIL_HOME = "/srv/oxtail-state""#),
        "{toml}"
    );
    // Idempotent: a second run changes nothing.
    let again = run();
    assert!(again.status.success());
    assert_eq!(
        std::fs::read_to_string(home.path().join(".codex/config.toml")).unwrap(),
        toml
    );
}
