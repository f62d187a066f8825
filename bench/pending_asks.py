#!/usr/bin/env python3
# Daemon memory held by 1 000 pending asks (issue 3): an asker makes 1 000
# `ask_peer` calls that time out (1 ms) unanswered, so each becomes a durable
# pending ask (plus its message and obligation). Reports the daemon's VmRSS
# before and after. Usage: cargo build --release && python3 bench/pending_asks.py
import json, os, socket, struct, subprocess, tempfile
B = os.environ.get("OXTAIL_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "oxtail"))
t = tempfile.mkdtemp(prefix="oxt-asks-bench-"); home = t + "/home"; repo = t + "/repo"
os.makedirs(repo); subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo)
env = dict(os.environ, OXTAIL_HOME=home)
subprocess.run([B, "ctl", "ping"], env=env, check=True, capture_output=True)
def frame(o):
    b = json.dumps(o).encode(); return struct.pack(">I", len(b)) + b
def recv(s):
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
    buf = b""
    while len(buf) < n: buf += s.recv(n - len(buf))
    return json.loads(buf)
def agent(sid):
    s = socket.socket(socket.AF_UNIX); s.connect(home + "/run/daemon.sock")
    s.sendall(frame({"frame": "hello", "protocol_major": 1, "protocol_minor": 0, "version": "0.1.0", "role": "shim", "pid": os.getpid()})); recv(s)
    s.sendall(frame({"frame": "request", "id": 1, "request": {"type": "shim_hello", "pid": os.getpid(), "ppid": os.getppid(), "cwd": repo, "env": {"CLAUDE_CODE_SESSION_ID": sid}}})); recv(s)
    s.sendall(frame({"frame": "request", "id": 2, "request": {"type": "tool", "name": "set_my_state", "args": {"purpose": sid}}})); recv(s)
    return s
asker, target = agent("asker"), agent("target")
pid = json.loads(subprocess.run([B, "ctl", "stats", "--json"], env=env, capture_output=True).stdout)["pid"]
def rss_kib():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
before = rss_kib()
for i in range(1000):
    asker.sendall(frame({"frame": "request", "id": 10 + i, "request": {"type": "tool", "name": "ask_peer", "args": {"target": "target", "body": f"question {i}: can you check module {i % 13}?", "timeout_ms": 1}}}))
    r = recv(asker)
    assert r["reply"]["value"]["status"] == "timed_out", r
stats = json.loads(subprocess.run([B, "ctl", "stats", "--json"], env=env, capture_output=True).stdout)
after = rss_kib()
print(json.dumps({"pending_asks": stats["pending_asks"], "rss_before_kib": before, "rss_after_kib": after, "delta_mib": round((after - before) / 1024, 2)}))
subprocess.run([B, "ctl", "shutdown"], env=env, capture_output=True)
