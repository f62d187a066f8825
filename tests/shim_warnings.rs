//! The shim warns on stderr when the installed hooks are older than the
//! binary, and stays quiet when they are current.

use oxtail_tests::e2e::install_hooks;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

fn shim_stderr(home: &std::path::Path) -> String {
    let out = Command::new(BIN)
        .arg("mcp")
        .env("HOME", home)
        .env("OXTAIL_HOME", home.join("ox"))
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("CODEX_HOME")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = Command::new(BIN)
        .args(["ctl", "shutdown"])
        .env("OXTAIL_HOME", home.join("ox"))
        .output();
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn warns_about_outdated_hooks_only() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".claude")).unwrap();
    let settings = home.path().join(".claude/settings.json");
    std::fs::write(
        &settings,
        r#"{"hooks":{"PreToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"/usr/local/bin/oxtail hook pre-tool-use --hooks-version 0"}]}]}}"#,
    )
    .unwrap();
    let err = shim_stderr(home.path());
    assert!(
        err.contains("older than this oxtail") && err.contains("oxtail install-hook"),
        "{err}"
    );

    // After a real install the hooks are current: no warning.
    install_hooks(std::path::Path::new(BIN), "claude", home.path(), None).unwrap();
    let err = shim_stderr(home.path());
    assert!(!err.contains("older than this oxtail"), "{err}");
}
