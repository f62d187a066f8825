//! Proves the Claude Code e2e harness against the real `claude` CLI, without
//! oxtail: a scripted plain-text answer, and a scripted call of a trivial
//! Python MCP server's `echo` tool. Skips (passes, printing why) when the CLI
//! is not installed.

use std::path::{Path, PathBuf};

use oxtail_tests::claude::{claude_or_skip, write_mcp_json, ClaudeHome, ClaudeRun, McpServer};
use oxtail_tests::fake_anthropic::{
    by_prompt, first_user_text, latest_tool_results, tool_names, FakeAnthropic, ScriptedTurn,
};
use serde_json::{json, Value};

/// A minimal stdio MCP server with one tool, `echo`, answering
/// `echo: <text>`. At start it dumps its environment, cwd and parent pid as
/// JSON to `$PROBE_ENV_FILE` so tests can check what Claude Code passed it.
const PROBE_MCP_SERVER: &str = r#"
import json, os, sys

env_file = os.environ.get("PROBE_ENV_FILE")
if env_file:
    with open(env_file, "w") as f:
        json.dump({"env": dict(os.environ), "cwd": os.getcwd(), "ppid": os.getppid()}, f)

def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()

for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    msg = json.loads(line)
    mid, method = msg.get("id"), msg.get("method")
    if mid is None:
        continue  # notification
    if method == "initialize":
        result = {
            "protocolVersion": msg["params"].get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "probe", "version": "0.0.1"},
        }
    elif method == "tools/list":
        result = {"tools": [{
            "name": "echo",
            "description": "Echo the given text back.",
            "inputSchema": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
        }]}
    elif method == "tools/call":
        text = msg["params"].get("arguments", {}).get("text", "")
        result = {"content": [{"type": "text", "text": "echo: " + text}], "isError": False}
    elif method == "ping":
        result = {}
    else:
        # Includes Claude Code's first probe, `server/discover`: answering it
        # with an error at once avoids a ~3 s fallback delay.
        send({"jsonrpc": "2.0", "id": mid,
              "error": {"code": -32601, "message": "method not found: %s" % method}})
        continue
    send({"jsonrpc": "2.0", "id": mid, "result": result})
"#;

/// Write the probe server into `dir` and return its `.mcp.json` entry named
/// `probe`, dumping its environment to `env_file`.
fn probe_server(dir: &Path, env_file: &Path) -> McpServer {
    let script = dir.join("probe_mcp.py");
    std::fs::write(&script, PROBE_MCP_SERVER).expect("write probe script");
    McpServer::new("probe", "python3")
        .arg("-u")
        .arg(&script)
        .env("PROBE_ENV_FILE", env_file)
        .env("PROBE_MARKER", "from-mcp-json")
}

fn project_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("create project dir");
    dir
}

#[test]
fn headless_plain_text_answer() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let answer = "HARNESS-PLAIN-TEXT-7f3a";
    let server = FakeAnthropic::start(vec![ScriptedTurn::text(answer)]);
    let home = ClaudeHome::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let project = project_dir(root.path(), "project");

    let prompt = "please say the magic words";
    let out = ClaudeRun::new(&claude, &home, &project, server.base_url(), prompt)
        .run()
        .unwrap();
    eprintln!(
        "claude -p took {:.2?}\n{}",
        out.elapsed,
        server.transcript()
    );

    assert!(out.success(), "{}", out.describe());
    let result = out
        .json()
        .unwrap_or_else(|| panic!("no JSON: {}", out.describe()));
    assert_eq!(result["type"], "result", "{result}");
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(
        out.result_text().as_deref(),
        Some(answer),
        "{}",
        out.describe()
    );

    let requests = server.agent_requests();
    assert_eq!(requests.len(), 1, "{}", server.transcript());
    assert_eq!(requests[0]["stream"], true);
    assert!(first_user_text(&requests[0]).contains(prompt));
    assert!(server.saw(prompt));
}

#[test]
fn headless_mcp_tool_call_round_trip() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let server = FakeAnthropic::start(vec![
        ScriptedTurn::tool_use("mcp__probe__echo", json!({ "text": "ping-4c1d" })),
        ScriptedTurn::text("all done"),
    ]);
    let home = ClaudeHome::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let project = project_dir(root.path(), "project");
    let env_file = root.path().join("probe-env.json");
    write_mcp_json(&project, &[probe_server(root.path(), &env_file)]).unwrap();

    let out = ClaudeRun::new(
        &claude,
        &home,
        &project,
        server.base_url(),
        "call the echo tool",
    )
    .run()
    .unwrap();
    eprintln!(
        "claude -p took {:.2?}\n{}",
        out.elapsed,
        server.transcript()
    );
    assert!(out.success(), "{}", out.describe());
    assert_eq!(
        out.result_text().as_deref(),
        Some("all done"),
        "{}",
        out.describe()
    );

    let requests = server.agent_requests();
    assert_eq!(requests.len(), 2, "{}", server.transcript());
    assert!(
        tool_names(&requests[0])
            .iter()
            .any(|t| t == "mcp__probe__echo"),
        "probe tool not offered: {:?}",
        tool_names(&requests[0])
    );
    // The request after the tool call carries the MCP server's answer.
    let latest = latest_tool_results(&requests[1]);
    assert_eq!(latest.len(), 1, "{}", server.transcript());
    assert_eq!(latest[0].tool_name.as_deref(), Some("mcp__probe__echo"));
    assert_eq!(latest[0].text, "echo: ping-4c1d");
    assert!(!latest[0].is_error);
    assert_eq!(server.tool_results_for("mcp__probe__echo").len(), 1);
    assert!(server.saw("echo: ping-4c1d"));

    // What Claude Code handed the MCP server.
    let probe: Value =
        serde_json::from_str(&std::fs::read_to_string(&env_file).expect("probe env dump")).unwrap();
    let env = &probe["env"];
    assert_eq!(env["PROBE_MARKER"], "from-mcp-json", "{probe}");
    assert_eq!(env["CLAUDECODE"], "1", "{probe}");
    assert_eq!(
        env["HOME"],
        home.path().to_string_lossy().as_ref(),
        "{probe}"
    );
    let canonical = |p: &str| std::fs::canonicalize(p).unwrap();
    assert_eq!(
        canonical(env["CLAUDE_PROJECT_DIR"].as_str().unwrap()),
        canonical(project.to_str().unwrap())
    );
    assert_eq!(
        canonical(probe["cwd"].as_str().unwrap()),
        canonical(project.to_str().unwrap())
    );
}

/// Two CLI processes share one fake server, each following its own script
/// (selected by a marker in its prompt), concurrently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_sessions_get_their_own_scripts() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let server = FakeAnthropic::start_with(by_prompt([
        (
            "[agent-A]",
            vec![
                ScriptedTurn::tool_use("mcp__probe__echo", json!({ "text": "from A" })),
                ScriptedTurn::text("A finished"),
            ],
        ),
        (
            "[agent-B]",
            vec![
                ScriptedTurn::tool_use("mcp__probe__echo", json!({ "text": "from B" })),
                ScriptedTurn::text("B finished"),
            ],
        ),
    ]));
    let home = ClaudeHome::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for name in ["A", "B"] {
        let project = project_dir(root.path(), name);
        let env_file = root.path().join(format!("probe-env-{name}.json"));
        write_mcp_json(&project, &[probe_server(root.path(), &env_file)]).unwrap();
        runs.push(ClaudeRun::new(
            &claude,
            &home,
            &project,
            server.base_url(),
            format!("[agent-{name}] please echo"),
        ));
    }
    let (a, b) = tokio::join!(runs[0].run_async(), runs[1].run_async());
    let (a, b) = (a.unwrap(), b.unwrap());
    eprintln!("{}", server.transcript());
    assert_eq!(
        a.result_text().as_deref(),
        Some("A finished"),
        "{}",
        a.describe()
    );
    assert_eq!(
        b.result_text().as_deref(),
        Some("B finished"),
        "{}",
        b.describe()
    );

    let texts: Vec<String> = server
        .tool_results_for("mcp__probe__echo")
        .into_iter()
        .map(|r| r.text)
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts.contains(&"echo: from A".to_owned()), "{texts:?}");
    assert!(texts.contains(&"echo: from B".to_owned()), "{texts:?}");
    // B's follow-up request carries B's result, not A's.
    let b_followup = server
        .requests_mentioning("echo: from B")
        .into_iter()
        .find(|r| first_user_text(r).contains("[agent-B]"));
    assert!(b_followup.is_some(), "{}", server.transcript());
    assert!(server
        .requests_mentioning("echo: from A")
        .iter()
        .all(|r| first_user_text(r).contains("[agent-A]")));
}
