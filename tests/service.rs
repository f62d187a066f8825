//! `oxtail service install|uninstall|status` against the real binary, in a
//! temp HOME / XDG_CONFIG_HOME, with no reachable systemd user manager (a
//! bus address that points nowhere), which is what CI containers have.
//! The rendered unit is checked by the real `systemd-analyze verify` when it
//! is installed.

use oxtail_tests::harness::Instance;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

/// A fake user: its own HOME and config dir, no user bus, its own
/// OXTAIL_HOME (from the harness instance).
struct User {
    ox: Instance,
}

impl User {
    fn new() -> User {
        let ox = Instance::new(BIN);
        std::fs::create_dir_all(ox.dir.path().join("userhome")).unwrap();
        std::fs::create_dir_all(ox.dir.path().join("xdg-run")).unwrap();
        User { ox }
    }

    fn config(&self) -> PathBuf {
        self.ox.dir.path().join("userhome/.config")
    }

    fn unit(&self) -> PathBuf {
        self.config().join("systemd/user/oxtail.service")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.ox.command();
        for (k, _) in std::env::vars() {
            if k.starts_with("OXTAIL_") && k != "OXTAIL_HOME" {
                c.env_remove(k);
            }
        }
        c.env("HOME", self.ox.dir.path().join("userhome"))
            .env("XDG_CONFIG_HOME", self.config())
            .env("XDG_RUNTIME_DIR", self.ox.dir.path().join("xdg-run"))
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}", self.ox.dir.path().join("no-bus").display()),
            )
            .env_remove("OXTAIL_LOG")
            .arg("service")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("oxtail runs");
        assert!(
            out.status.success(),
            "oxtail service {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.run(&a);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

fn bin_canonical() -> String {
    Path::new(BIN)
        .canonicalize()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn install_writes_the_unit_and_says_clearly_it_could_not_enable_it() {
    let u = User::new();
    // Dry run: the full unit, nothing written.
    let plan = u.json(&["install", "--dry-run"]);
    assert_eq!(plan["file"], "created", "{plan}");
    assert_eq!(plan["dry_run"], true);
    assert!(!u.unit().exists(), "a dry run writes nothing");
    let unit_text = plan["unit_text"].as_str().unwrap().to_string();
    assert!(
        unit_text.contains(&format!(
            "\nExecStart=\"{}\" daemon --foreground\n",
            bin_canonical()
        )),
        "{unit_text}"
    );
    for line in [
        "Restart=on-failure",
        "WantedBy=default.target",
        &format!("Environment=\"OXTAIL_HOME={}\"", u.ox.home().display()),
        "SyslogIdentifier=oxtail",
    ] {
        assert!(
            unit_text.lines().any(|l| l == line),
            "missing `{line}` in\n{unit_text}"
        );
    }

    // The real install, as a person runs it.
    let out = u.run(&["install"]);
    let said = text(&out);
    assert!(said.contains("could not be enabled"), "{said}");
    assert!(
        said.contains("cannot reach a user service manager"),
        "{said}"
    );
    assert!(
        said.contains("systemctl --user enable --now oxtail.service"),
        "tells how to enable it: {said}"
    );
    let written = std::fs::read_to_string(u.unit()).unwrap();
    assert_eq!(written, unit_text, "install writes what the dry run showed");
    let mode = std::fs::metadata(u.unit()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    // systemd itself parses the unit (when systemd-analyze is installed).
    match Command::new("systemd-analyze")
        .arg("verify")
        .arg(u.unit())
        .output()
    {
        Ok(v) => {
            let err = String::from_utf8_lossy(&v.stderr);
            assert!(
                v.status.success() && !err.contains("Unknown") && !err.contains("not executable"),
                "systemd-analyze verify: {err}"
            );
        }
        Err(_) => oxtail_tests::skip::skip_or_fail(
            "systemd-analyze verify: systemd-analyze is not installed (.ci/run installs systemd)",
        ),
    }
}

#[test]
fn install_and_uninstall_are_idempotent_and_status_follows() {
    let u = User::new();
    let st = u.json(&["status"]);
    assert_eq!(st["installed"], false, "{st}");
    assert_eq!(st["manager"]["available"], false, "{st}");
    assert_eq!(st["daemon"]["running"], false, "{st}");
    let human = text(&u.run(&["status"]));
    assert!(human.contains("not installed"), "{human}");
    assert!(
        human.contains("NOT AVAILABLE") && human.contains("cannot reach a user service manager"),
        "status says clearly there is no service manager: {human}"
    );

    let first = u.json(&["install"]);
    assert_eq!(first["file"], "created", "{first}");
    assert_eq!(first["manager"]["available"], false);
    assert_eq!(first["enabled"], Value::Null);
    let before = std::fs::read(u.unit()).unwrap();
    let mtime = std::fs::metadata(u.unit()).unwrap().modified().unwrap();
    let second = u.json(&["install"]);
    assert_eq!(second["file"], "unchanged", "{second}");
    assert_eq!(std::fs::read(u.unit()).unwrap(), before);
    assert_eq!(
        std::fs::metadata(u.unit()).unwrap().modified().unwrap(),
        mtime,
        "an unchanged unit is not rewritten"
    );

    let st = u.json(&["status"]);
    assert_eq!(st["installed"], true, "{st}");
    assert_eq!(st["up_to_date"], true, "{st}");
    assert_eq!(st["installed_exec"], bin_canonical());
    assert_eq!(st["installed_exec_exists"], true);
    assert_eq!(st["enabled"], Value::Null, "unknown without a manager");
    assert!(
        st["next_steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().contains("enable --now")),
        "{st}"
    );

    let gone = u.json(&["uninstall"]);
    assert_eq!(gone["file"], "removed", "{gone}");
    assert!(!u.unit().exists());
    let again = u.json(&["uninstall"]);
    assert_eq!(again["file"], "absent", "{again}");
    assert_eq!(u.json(&["status"])["installed"], false);
}

#[test]
fn status_flags_an_outdated_unit_and_install_updates_it() {
    let u = User::new();
    u.run(&["install"]);
    // Same binary, other environment: what install would write differs.
    let out = u
        .cmd(&["status", "--json"])
        .env("OXTAIL_RECEIVED_MAX", "50")
        .output()
        .unwrap();
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["up_to_date"], false, "{st}");
    let out = u
        .cmd(&["install", "--json"])
        .env("OXTAIL_RECEIVED_MAX", "50")
        .env("OXTAIL_FAULT_JOURNAL_FULL_AFTER_BYTES", "10")
        .env("OXTAIL_DAEMON_IDLE_EXIT_S", "5")
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["file"], "updated", "{r}");
    let unit = std::fs::read_to_string(u.unit()).unwrap();
    assert!(
        unit.contains("Environment=\"OXTAIL_RECEIVED_MAX=50\""),
        "{unit}"
    );
    assert!(
        !unit.contains("OXTAIL_FAULT_"),
        "test-only faults never reach a unit"
    );
    assert!(!unit.contains("IDLE_EXIT"), "the service never idles out");
    // A hand-edited unit is also seen as out of date.
    std::fs::write(u.unit(), unit.replace("Restart=on-failure", "Restart=no")).unwrap();
    let st = u
        .cmd(&["status", "--json"])
        .env("OXTAIL_RECEIVED_MAX", "50")
        .output()
        .unwrap();
    let st: Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["up_to_date"], false, "{st}");
}

#[test]
fn uninstall_removes_the_enable_link_even_without_a_manager() {
    let u = User::new();
    u.run(&["install"]);
    // What `systemctl --user enable` left behind in a session that had a bus.
    let wants = u.config().join("systemd/user/default.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(u.unit(), wants.join("oxtail.service")).unwrap();
    let out = u.run(&["uninstall"]);
    let said = text(&out);
    assert!(!u.unit().exists());
    assert!(
        std::fs::symlink_metadata(wants.join("oxtail.service")).is_err(),
        "the enable link is gone"
    );
    assert!(
        said.contains("could not be stopped or disabled")
            && said.contains("systemctl --user disable --now oxtail.service"),
        "{said}"
    );
}

#[test]
fn without_systemctl_on_path_every_command_says_so() {
    let u = User::new();
    let empty = u.ox.dir.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    for args in [&["status"][..], &["install"], &["uninstall"]] {
        let out = u.cmd(args).env("PATH", &empty).output().unwrap();
        let said = text(&out);
        assert!(out.status.success(), "{args:?}: {said}");
        assert!(
            said.contains("systemctl is not installed"),
            "{args:?} names the missing manager: {said}"
        );
    }
}

#[test]
fn status_shows_the_on_demand_daemon() {
    let u = User::new();
    let ping = u.ox.ctl(&["ping"]).unwrap();
    let pid = ping["pid"].as_u64().unwrap();
    let st = u.json(&["status"]);
    assert_eq!(st["daemon"]["running"], true, "{st}");
    assert_eq!(st["daemon"]["pid"].as_u64(), Some(pid));
    assert_eq!(st["daemon"]["foreground"], false, "{st}");
    let human = text(&u.run(&["status"]));
    assert!(
        human.contains(&format!("pid {pid}")) && human.contains("started on demand"),
        "{human}"
    );
}
