//! Config editing against realistic files that already hold other tools'
//! hooks and MCP servers, and a commented Codex config.toml: install,
//! reinstall and uninstall leave every third-party byte in place.

use oxtail_hooks::config::{Action, ClientPaths, Clients};
use oxtail_hooks::install::{
    hooks_command, installed_version, outdated_hooks_warning, plan_hooks_file, HookClient,
    HookOptions, HOOKS_VERSION,
};
use oxtail_hooks::setup::{
    plan_claude_mcp, plan_claude_project_approval, plan_codex_config, setup_command, Scope,
    SetupOptions,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const EXE: &str = "/opt/oxtail/bin/oxtail";

fn data(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

fn codex_fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/codex-0.169.0")
            .join(name),
    )
    .unwrap()
}

fn install(
    text: Option<&str>,
    client: HookClient,
    exe: &str,
) -> (String, Vec<String>, Vec<String>) {
    let mut w = Vec::new();
    let (t, d) = plan_hooks_file(
        Path::new("settings.json"),
        text,
        client,
        Path::new(exe),
        true,
        &mut w,
    )
    .unwrap();
    (t, d, w)
}

fn uninstall(text: &str, client: HookClient) -> (String, Vec<String>, Vec<String>) {
    let mut w = Vec::new();
    let (t, d) = plan_hooks_file(
        Path::new("settings.json"),
        Some(text),
        client,
        Path::new(EXE),
        false,
        &mut w,
    )
    .unwrap();
    (t, d, w)
}

/// Our handlers in a hooks file: (event, command, async, asyncRewake).
fn our_handlers(v: &Value) -> Vec<(String, String, bool, bool)> {
    let mut out = Vec::new();
    for (event, groups) in v["hooks"].as_object().unwrap() {
        for g in groups.as_array().unwrap() {
            for h in g["hooks"].as_array().unwrap() {
                let c = h["command"].as_str().unwrap_or("");
                if c.contains(" hook ") && c.contains("--hooks-version") {
                    out.push((
                        event.clone(),
                        c.to_string(),
                        h["async"] == true,
                        h["asyncRewake"] == true,
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

/// The file's meaning with every oxtail handler (and group left empty by
/// removing it) taken out.
fn without_ours(mut v: Value) -> Value {
    if let Some(hooks) = v.get_mut("hooks").and_then(Value::as_object_mut) {
        for groups in hooks.values_mut() {
            let arr = groups.as_array_mut().unwrap();
            for g in arr.iter_mut() {
                if let Some(hs) = g.get_mut("hooks").and_then(Value::as_array_mut) {
                    hs.retain(|h| {
                        !h["command"]
                            .as_str()
                            .unwrap_or("")
                            .contains("--hooks-version")
                    });
                }
            }
            arr.retain(|g| g["hooks"].as_array().is_none_or(|h| !h.is_empty()));
        }
        hooks.retain(|_, g| !g.as_array().unwrap().is_empty());
    }
    v
}

#[test]
fn claude_install_reinstall_uninstall_keeps_third_party_hooks() {
    let original = data("claude_settings.json");
    let (installed, details, warnings) = install(Some(&original), HookClient::Claude, EXE);
    assert!(warnings.is_empty(), "{warnings:?}");
    // One line per entry written: Stop has two (sync stop, async idle-wait).
    assert_eq!(details.len(), 7, "{details:?}");
    assert!(details
        .iter()
        .any(|d| d.starts_with("added Stop hook: oxtail hook idle-wait")));
    let v: Value = serde_json::from_str(&installed).unwrap();
    let ours = our_handlers(&v);
    let cmd = |e: &str| format!("{EXE} hook {e} --hooks-version {HOOKS_VERSION}");
    assert_eq!(
        ours,
        vec![
            ("PostToolUse".into(), cmd("post-tool-use"), false, false),
            ("PreToolUse".into(), cmd("pre-tool-use"), false, false),
            ("SessionEnd".into(), cmd("session-end"), false, false),
            ("SessionStart".into(), cmd("session-start"), false, false),
            ("Stop".into(), cmd("idle-wait"), true, true),
            ("Stop".into(), cmd("stop"), false, false),
            (
                "UserPromptSubmit".into(),
                cmd("user-prompt-submit"),
                false,
                false
            ),
        ]
    );
    // The async rewake waits up to a day; the sync hooks have a short net.
    let stop = v["hooks"]["Stop"].as_array().unwrap();
    assert_eq!(stop.last().unwrap()["hooks"][0]["timeout"], 86_400);
    // Third-party content unchanged in meaning...
    let orig_v: Value = serde_json::from_str(&original).unwrap();
    assert_eq!(without_ours(v.clone()), orig_v);
    // ...and in bytes: every original line is still there, in order.
    let mut lines = installed.lines();
    for l in original.lines() {
        assert!(lines.any(|x| x == l), "lost or moved line {l:?}");
    }
    // Third-party groups keep their positions (ours are appended).
    assert_eq!(
        v["hooks"]["PreToolUse"][0],
        orig_v["hooks"]["PreToolUse"][0]
    );
    assert_eq!(v["hooks"]["Stop"][0], orig_v["hooks"]["Stop"][0]);

    // Reinstall: nothing to do, byte for byte.
    let (again, details, _) = install(Some(&installed), HookClient::Claude, EXE);
    assert_eq!(again, installed);
    assert!(details.is_empty(), "{details:?}");

    // Uninstall: back to the original bytes.
    let (removed, details, warnings) = uninstall(&installed, HookClient::Claude);
    assert_eq!(removed, original);
    assert_eq!(details.len(), 6);
    assert!(warnings.is_empty());
    // Uninstall again: no change.
    let (same, details, _) = uninstall(&removed, HookClient::Claude);
    assert_eq!(same, original);
    assert!(details.is_empty());
}

#[test]
fn codex_install_appends_so_trust_records_keep_pointing_at_the_same_hooks() {
    // The fixture hooks.json (one-space indent, no trailing newline) and its
    // config.toml trust records keyed `<file>:<event>:<group>:<handler>`.
    let original = codex_fixture("hooks.json");
    let (installed, details, warnings) = install(Some(&original), HookClient::Codex, EXE);
    assert!(warnings.is_empty());
    assert_eq!(details.len(), 5);
    let v: Value = serde_json::from_str(&installed).unwrap();
    let orig_v: Value = serde_json::from_str(&original).unwrap();
    assert_eq!(without_ours(v.clone()), orig_v);
    let config = codex_fixture("config.toml");
    let mut trusted = 0;
    for line in config.lines() {
        let Some(key) = line
            .strip_prefix("[hooks.state.\"")
            .and_then(|l| l.strip_suffix("\"]"))
        else {
            continue;
        };
        let parts: Vec<&str> = key.rsplitn(4, ':').collect();
        let (h, g, event) = (parts[0], parts[1], parts[2]);
        let event = match event {
            "pre_tool_use" => "PreToolUse",
            "post_tool_use" => "PostToolUse",
            "session_start" => "SessionStart",
            "user_prompt_submit" => "UserPromptSubmit",
            "stop" => "Stop",
            e => panic!("{e}"),
        };
        let g: usize = g.parse().unwrap();
        let h: usize = h.parse().unwrap();
        assert_eq!(
            v["hooks"][event][g]["hooks"][h], orig_v["hooks"][event][g]["hooks"][h],
            "trust key {key} would now point at another handler"
        );
        trusted += 1;
    }
    assert_eq!(trusted, 5);
    // No Claude-only fields in Codex's file.
    for (_, c, is_async, rewake) in our_handlers(&v) {
        assert!(!is_async && !rewake, "{c}");
        assert!(!c.contains("idle-wait"));
    }
    assert!(v["hooks"].get("SessionEnd").is_none());
    assert!(installed.contains("\n   {\n    \"hooks\": [\n     {\n      \"type\": \"command\",\n      \"command\": \"/opt/oxtail"), "kept the file's one-space indent:\n{installed}");
    let (again, d, _) = install(Some(&installed), HookClient::Codex, EXE);
    assert_eq!((again.as_str(), d.len()), (installed.as_str(), 0));
    let (removed, _, _) = uninstall(&installed, HookClient::Codex);
    assert_eq!(removed, original);
}

#[test]
fn upgrade_replaces_old_entries_without_duplicating() {
    let original = data("claude_settings.json");
    let (v0, _, _) = install(Some(&original), HookClient::Claude, "/old/place/oxtail");
    let old_version = v0.replace(
        &format!("--hooks-version {HOOKS_VERSION}"),
        "--hooks-version 0",
    );
    assert_eq!(installed_version(&old_version), Some(0));
    let (new, details, warnings) = install(Some(&old_version), HookClient::Claude, EXE);
    assert!(warnings.is_empty());
    assert!(
        details.iter().all(|d| d.starts_with("replaced")),
        "{details:?}"
    );
    assert_eq!(installed_version(&new), Some(HOOKS_VERSION));
    let v: Value = serde_json::from_str(&new).unwrap();
    assert_eq!(our_handlers(&v).len(), 7, "no duplicates");
    assert!(!new.contains("/old/place"));
    assert_eq!(
        without_ours(v),
        serde_json::from_str::<Value>(&original).unwrap()
    );
    // An entry moved away from the end (a user reordered) is put back last.
    let moved = r#"{"hooks":{"SessionEnd":[
        {"hooks":[{"type":"command","command":"/opt/oxtail/bin/oxtail hook session-end --hooks-version 1","timeout":10}]},
        {"hooks":[{"type":"command","command":"./cleanup.sh"}]}]}}"#;
    let (fixed, details, _) = install(Some(moved), HookClient::Claude, EXE);
    assert!(
        details
            .iter()
            .any(|d| d
                .starts_with("replaced SessionEnd hook: oxtail hook session-end (hooks version 1")),
        "{details:?}"
    );
    let v: Value = serde_json::from_str(&fixed).unwrap();
    assert_eq!(
        v["hooks"]["SessionEnd"][0]["hooks"][0]["command"],
        "./cleanup.sh"
    );
    assert_eq!(v["hooks"]["SessionEnd"].as_array().unwrap().len(), 2);
}

#[test]
fn shared_groups_and_hand_written_entries_are_handled_with_warnings() {
    let text = r#"{
  "hooks": {
    "PreToolUse": [
      {
        "matcher": "*",
        "hooks": [
          { "type": "command", "command": "audit-log" },
          { "type": "command", "command": "/usr/bin/oxtail hook pre-tool-use --hooks-version 1" }
        ]
      }
    ],
    "Stop": [
      { "hooks": [ { "type": "command", "command": "oxtail hook stop" } ] }
    ],
    "UserPromptSubmit": "not a list"
  }
}
"#;
    let (new, _, warnings) = install(Some(text), HookClient::Claude, EXE);
    let v: Value = serde_json::from_str(&new).unwrap();
    let pre = v["hooks"]["PreToolUse"].as_array().unwrap();
    assert_eq!(
        pre[0]["hooks"].as_array().unwrap().len(),
        1,
        "ours left the shared group"
    );
    assert_eq!(pre[0]["hooks"][0]["command"], "audit-log");
    assert_eq!(pre.len(), 2);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("shared with other hooks")),
        "{warnings:?}"
    );
    // The hand-written, unmarked entry is not ours to touch.
    assert_eq!(
        v["hooks"]["Stop"][0]["hooks"][0]["command"],
        "oxtail hook stop"
    );
    assert!(warnings
        .iter()
        .any(|w| w.contains("hand-written `oxtail hook stop`")));
    // A malformed event value is left as it is, with a warning.
    assert_eq!(v["hooks"]["UserPromptSubmit"], "not a list");
    assert!(warnings
        .iter()
        .any(|w| w.contains("UserPromptSubmit is not a list")));
}

#[test]
fn unusable_files_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let paths = ClientPaths::new(dir.path(), None, None);
    let settings = paths.claude_settings();
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let opts = HookOptions {
        clients: Clients::ALL,
        dry_run: false,
        exe: PathBuf::from(EXE),
        permissions: false,
    };
    for bad in ["{ \"hooks\": ", "[]", "{\"hooks\": []}", "{\"hooks\": 3}"] {
        std::fs::write(&settings, bad).unwrap();
        let err = hooks_command(&paths, &opts, true).unwrap_err();
        assert!(err.contains("settings.json"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&settings).unwrap(),
            bad,
            "untouched"
        );
        assert!(
            !paths.codex_hooks().exists(),
            "no file written when one fails"
        );
    }
}

#[test]
fn hooks_command_writes_reports_and_dry_runs() {
    let dir = tempfile::tempdir().unwrap();
    let paths = ClientPaths::new(dir.path(), None, Some(&dir.path().join("cx")));
    std::fs::create_dir_all(&paths.claude_dir).unwrap();
    std::fs::write(paths.claude_settings(), data("claude_settings.json")).unwrap();
    let mut opts = HookOptions {
        clients: Clients::ALL,
        dry_run: true,
        exe: PathBuf::from(EXE),
        permissions: false,
    };
    let r = hooks_command(&paths, &opts, true).unwrap();
    assert_eq!(r.changes[0].action, Action::Update);
    assert_eq!(r.changes[1].action, Action::Create);
    assert!(
        r.notes.iter().any(|n| n.contains("/hooks")),
        "Codex trust note"
    );
    assert_eq!(
        std::fs::read_to_string(paths.claude_settings()).unwrap(),
        data("claude_settings.json")
    );
    assert!(!paths.codex_hooks().exists());
    let text = r.render(&paths);
    assert!(
        text.contains("~/.claude/settings.json: would update"),
        "{text}"
    );
    assert!(text.contains("dry run"));

    opts.dry_run = false;
    let r = hooks_command(&paths, &opts, true).unwrap();
    assert!(r.render(&paths).contains("cx/hooks.json: created"));
    assert_eq!(
        installed_version(&std::fs::read_to_string(paths.codex_hooks()).unwrap()),
        Some(HOOKS_VERSION)
    );
    let r = hooks_command(&paths, &opts, true).unwrap();
    assert!(r.changes.iter().all(|c| c.action == Action::Unchanged));
    assert!(r.notes.is_empty(), "no trust note when nothing changed");
    assert_eq!(outdated_hooks_warning(&paths), None);

    // An older install triggers the shim's warning.
    let old = std::fs::read_to_string(paths.codex_hooks())
        .unwrap()
        .replace("--hooks-version 1", "--hooks-version 0");
    std::fs::write(paths.codex_hooks(), old).unwrap();
    let w = outdated_hooks_warning(&paths).unwrap();
    assert!(
        w.contains("hooks.json (version 0)") && w.contains("oxtail install-hook"),
        "{w}"
    );

    let r = hooks_command(&paths, &opts, false).unwrap();
    assert!(r.changes.iter().all(|c| c.action == Action::Update));
    assert_eq!(
        std::fs::read_to_string(paths.claude_settings()).unwrap(),
        data("claude_settings.json")
    );
}

#[test]
fn claude_user_scope_mcp_registration() {
    let original = data("claude_user_state.json");
    let p = Path::new("/home/u/.claude.json");
    let (new, details) = plan_claude_mcp(p, Some(&original), Path::new(EXE), Scope::User).unwrap();
    assert_eq!(details.len(), 1);
    let v: Value = serde_json::from_str(&new).unwrap();
    assert_eq!(
        v["mcpServers"]["oxtail"],
        json!({"type": "stdio", "command": EXE, "args": ["mcp"], "alwaysLoad": true})
    );
    let mut o: Value = serde_json::from_str(&original).unwrap();
    let mut stripped = v.clone();
    stripped["mcpServers"]
        .as_object_mut()
        .unwrap()
        .remove("oxtail");
    assert_eq!(stripped, o, "github, sentry, projects, account: all kept");
    let (again, d) = plan_claude_mcp(p, Some(&new), Path::new(EXE), Scope::User).unwrap();
    assert_eq!((again.as_str(), d.len()), (new.as_str(), 0));

    // An existing entry with user additions: our keys updated, theirs kept.
    o["mcpServers"]["oxtail"] = json!({"command": "/old/oxtail", "env": {"OXTAIL_LOG": "debug"}});
    let text = serde_json::to_string_pretty(&o).unwrap();
    let (new, details) = plan_claude_mcp(p, Some(&text), Path::new(EXE), Scope::User).unwrap();
    assert!(details[0].starts_with("updated"));
    let v: Value = serde_json::from_str(&new).unwrap();
    assert_eq!(v["mcpServers"]["oxtail"]["command"], EXE);
    assert_eq!(v["mcpServers"]["oxtail"]["env"]["OXTAIL_LOG"], "debug");
    assert!(plan_claude_mcp(p, Some("{\"mcpServers\": []}"), Path::new(EXE), Scope::User).is_err());
}

#[test]
fn claude_project_scope_registration_and_approval() {
    let original = data("project_mcp.json");
    let p = Path::new("/repo/.mcp.json");
    let (new, _) = plan_claude_mcp(p, Some(&original), Path::new(EXE), Scope::Project).unwrap();
    let v: Value = serde_json::from_str(&new).unwrap();
    assert_eq!(
        v["mcpServers"]["oxtail"],
        json!({"command": EXE, "args": ["mcp"], "alwaysLoad": true})
    );
    assert_eq!(
        v["mcpServers"]["postgres"],
        serde_json::from_str::<Value>(&original).unwrap()["mcpServers"]["postgres"]
    );
    let s = Path::new("/repo/.claude/settings.local.json");
    let (t, d) = plan_claude_project_approval(s, None).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&t).unwrap(),
        json!({"enabledMcpjsonServers": ["oxtail"]})
    );
    let (t2, d2) = plan_claude_project_approval(s, Some(&t)).unwrap();
    assert_eq!((t2.as_str(), d2.len()), (t.as_str(), 0));
    let existing = "{\n  \"enabledMcpjsonServers\": [\"postgres\"],\n  \"permissions\": {}\n}\n";
    let (t3, _) = plan_claude_project_approval(s, Some(existing)).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&t3).unwrap()["enabledMcpjsonServers"],
        json!(["postgres", "oxtail"])
    );
}

#[test]
fn codex_config_toml_keeps_comments() {
    let original = data("codex_config.toml");
    let p = Path::new("/h/.codex/config.toml");
    let (new, details) =
        plan_codex_config(p, Some(&original), Path::new(EXE), false, false).unwrap();
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(
        !details.iter().any(|n| n.contains("daemon_auto_start")),
        "setup no longer pushes --codex-no-daemon: {details:?}"
    );
    for line in original.lines() {
        assert!(new.contains(line), "lost {line:?} in\n{new}");
    }
    assert!(
        new.contains(&format!(
            "[mcp_servers.oxtail]\ncommand = \"{EXE}\"\nargs = [\"mcp\"]\n"
        )),
        "{new}"
    );
    assert!(
        !new.contains("[mcp_servers]\n"),
        "no empty parent table header"
    );
    let parsed: toml_edit::DocumentMut = new.parse().unwrap();
    assert_eq!(
        parsed["mcp_servers"]["github"]["command"].as_str(),
        Some("npx")
    );

    let (again, d) = plan_codex_config(p, Some(&new), Path::new(EXE), false, false).unwrap();
    assert_eq!((again.as_str(), d.len()), (new.as_str(), 0));

    // --codex-no-daemon adds the feature flag once.
    let (nd, d) = plan_codex_config(p, Some(&new), Path::new(EXE), true, false).unwrap();
    assert_eq!(d.len(), 1);
    let parsed: toml_edit::DocumentMut = nd.parse().unwrap();
    assert_eq!(
        parsed["features"]["daemon_auto_start"].as_bool(),
        Some(false)
    );
    let (nd2, d) = plan_codex_config(p, Some(&nd), Path::new(EXE), true, false).unwrap();
    assert_eq!((nd2.as_str(), d.len()), (nd.as_str(), 0));

    // The captured Codex config (comments, trust records, flag already set).
    let fixture = codex_fixture("config.toml");
    let (fx, _) = plan_codex_config(p, Some(&fixture), Path::new(EXE), false, false).unwrap();
    for line in fixture.lines() {
        assert!(fx.contains(line), "lost {line:?}");
    }
    // A user's own keys in our table survive an update.
    let custom =
        "[mcp_servers.oxtail]\ncommand = \"/old\"\nargs = []\ntool_timeout_sec = 120 # long asks\n";
    let (c, _) = plan_codex_config(p, Some(custom), Path::new(EXE), false, false).unwrap();
    assert!(c.contains("tool_timeout_sec = 120 # long asks"), "{c}");
    assert!(plan_codex_config(p, Some("model = ["), Path::new(EXE), false, false).is_err());
    assert!(plan_codex_config(p, Some("mcp_servers = 3\n"), Path::new(EXE), false, false).is_err());
}

#[test]
fn setup_user_scope_end_to_end_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let paths = ClientPaths::new(dir.path(), None, None);
    std::fs::create_dir_all(&paths.claude_dir).unwrap();
    std::fs::create_dir_all(&paths.codex_home).unwrap();
    std::fs::write(&paths.claude_json, data("claude_user_state.json")).unwrap();
    std::fs::write(paths.claude_settings(), data("claude_settings.json")).unwrap();
    std::fs::write(paths.codex_config(), data("codex_config.toml")).unwrap();
    let opts = SetupOptions {
        clients: Clients::ALL,
        scope: Scope::User,
        dry_run: false,
        exe: PathBuf::from(EXE),
        cwd: dir.path().to_path_buf(),
        codex_no_daemon: false,
        skip_hooks: false,
        allow: true,
        undo: false,
    };
    let before_settings = std::fs::read_to_string(paths.claude_settings()).unwrap();
    let before_config = std::fs::read_to_string(paths.codex_config()).unwrap();
    let before_claude_json = std::fs::read_to_string(&paths.claude_json).unwrap();
    let r = setup_command(&paths, &opts).unwrap();
    let files: Vec<_> = r
        .changes
        .iter()
        .map(|c| (paths.display(&c.path), c.action))
        .collect();
    assert_eq!(
        files,
        vec![
            ("~/.claude.json".to_string(), Action::Update),
            ("~/.codex/config.toml".to_string(), Action::Update),
            ("~/.claude/settings.json".to_string(), Action::Update),
            ("~/.codex/hooks.json".to_string(), Action::Create),
        ]
    );
    // Every entry written is listed, the async idle-wait and the
    // permissions included.
    let details: Vec<&String> = r.changes.iter().flat_map(|c| &c.details).collect();
    let has = |s: &str| details.iter().any(|d| d.contains(s));
    assert!(
        has("Stop hook: oxtail hook stop (hooks version"),
        "{details:?}"
    );
    assert!(has("Stop hook: oxtail hook idle-wait"), "{details:?}");
    assert!(has("async rewake"), "{details:?}");
    assert!(has("permissions.allow += \"mcp__oxtail\""), "{details:?}");
    assert!(
        has("default_tools_approval_mode = \"approve\""),
        "{details:?}"
    );
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(paths.claude_settings()).unwrap()).unwrap();
    assert!(
        settings["permissions"]["allow"]
            .as_array()
            .unwrap()
            .contains(&json!("mcp__oxtail")),
        "{settings}"
    );
    let config: toml_edit::DocumentMut = std::fs::read_to_string(paths.codex_config())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        config["mcp_servers"]["oxtail"]["default_tools_approval_mode"].as_str(),
        Some("approve")
    );
    let again = setup_command(&paths, &opts).unwrap();
    assert!(
        again.changes.iter().all(|c| c.action == Action::Unchanged),
        "{again:?}"
    );

    // --undo removes exactly what setup added: every byte of the other
    // tools' settings is back.
    let undo = SetupOptions {
        undo: true,
        ..opts.clone()
    };
    let r = setup_command(&paths, &undo).unwrap();
    assert!(
        r.changes.iter().any(|c| c.action == Action::Update),
        "{r:?}"
    );
    assert_eq!(
        std::fs::read_to_string(paths.claude_settings()).unwrap(),
        before_settings
    );
    assert_eq!(
        std::fs::read_to_string(paths.codex_config()).unwrap(),
        before_config
    );
    assert_eq!(
        std::fs::read_to_string(&paths.claude_json).unwrap(),
        before_claude_json
    );
    let hooks = std::fs::read_to_string(paths.codex_hooks()).unwrap();
    assert_eq!(installed_version(&hooks), None, "{hooks}");
}

#[test]
fn no_allow_skips_the_permissions_and_uninstall_hook_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let paths = ClientPaths::new(dir.path(), None, None);
    let opts = SetupOptions {
        clients: Clients::ALL,
        scope: Scope::User,
        dry_run: false,
        exe: PathBuf::from(EXE),
        cwd: dir.path().to_path_buf(),
        codex_no_daemon: false,
        skip_hooks: false,
        allow: false,
        undo: false,
    };
    setup_command(&paths, &opts).unwrap();
    let settings = std::fs::read_to_string(paths.claude_settings()).unwrap();
    assert!(!settings.contains("mcp__oxtail"), "{settings}");
    let config = std::fs::read_to_string(paths.codex_config()).unwrap();
    assert!(!config.contains("default_tools_approval_mode"), "{config}");

    setup_command(
        &paths,
        &SetupOptions {
            allow: true,
            ..opts.clone()
        },
    )
    .unwrap();
    let r = hooks_command(
        &paths,
        &HookOptions {
            clients: Clients::ALL,
            dry_run: false,
            exe: PathBuf::from(EXE),
            permissions: true,
        },
        false,
    )
    .unwrap();
    let text = r.render(&paths);
    assert!(text.contains("removed \"mcp__oxtail\""), "{text}");
    assert!(
        text.contains("removed default_tools_approval_mode"),
        "{text}"
    );
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(paths.claude_settings()).unwrap()).unwrap();
    assert_eq!(settings, json!({}), "only oxtail's entries were there");
    let config = std::fs::read_to_string(paths.codex_config()).unwrap();
    assert!(!config.contains("default_tools_approval_mode"), "{config}");
    assert!(
        config.contains("[mcp_servers.oxtail]"),
        "the registration stays: {config}"
    );
}
