#!/usr/bin/env python3
# End-to-end `oxtail status` wall time with 50 agents and 10 000 comms-log
# entries (issue 5): 50 raw daemon connections register as agents and send
# 10 000 messages, then the real `oxtail status` (text and --json) is timed.
# Usage: cargo build --release && python3 bench/status_e2e.py
import json, os, socket, struct, subprocess, sys, time, statistics
B = os.environ.get("OXTAIL_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "oxtail"))
import tempfile; _t = tempfile.mkdtemp(prefix="oxt-status-bench-"); home = _t + "/home"; repo = _t + "/repo"
os.makedirs(repo, exist_ok=True); subprocess.run(["git","init","-q","-b","main"], cwd=repo)
env = dict(os.environ, OXTAIL_HOME=home)
subprocess.run([B,"ctl","ping"], env=env, check=True, capture_output=True)
sock_path = home + "/run/daemon.sock"
def frame(o):
    b = json.dumps(o).encode(); return struct.pack(">I", len(b)) + b
def recv(s):
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
    buf = b""
    while len(buf) < n: buf += s.recv(n - len(buf))
    return json.loads(buf)
conns = []
for i in range(50):
    s = socket.socket(socket.AF_UNIX); s.connect(sock_path)
    s.sendall(frame({"frame":"hello","protocol_major":1,"protocol_minor":0,"version":"0.1.0","role":"shim","pid":os.getpid()}))
    recv(s)
    s.sendall(frame({"frame":"request","id":1,"request":{"type":"shim_hello","pid":os.getpid(),"ppid":os.getppid(),"cwd":repo,"env":{"CLAUDE_CODE_SESSION_ID":f"agent-{i}","CLAUDECODE":"1"}}}))
    recv(s)
    s.sendall(frame({"frame":"request","id":2,"request":{"type":"tool","name":"set_my_state","args":{"purpose":f"working on part {i}","name":f"a{i}"}}}))
    recv(s)
    conns.append(s)
t0 = time.time(); rid = 10
for k in range(10000):
    i = k % 50; s = conns[i]; rid += 1
    s.sendall(frame({"frame":"request","id":rid,"request":{"type":"tool","name":"send_message","args":{"target":f"agent-{(i+1)%50}","body":f"message {k} about the refactor of module {k%17}"}}}))
    r = recv(s)
    if k % 500 == 0:
        for c in conns: pass
print("sent 10000 in %.1fs" % (time.time()-t0), file=sys.stderr)
times = []
for _ in range(25):
    t = time.perf_counter()
    subprocess.run([B,"status","--project",repo], env=env, capture_output=True, check=True)
    times.append((time.perf_counter()-t)*1000)
jt = []
for _ in range(15):
    t = time.perf_counter()
    out = subprocess.run([B,"status","--json","--project",repo], env=env, capture_output=True, check=True).stdout
    jt.append((time.perf_counter()-t)*1000)
v = json.loads(out)
print(json.dumps({"status_text_median_ms": statistics.median(times), "status_text_p90_ms": sorted(times)[int(len(times)*0.9)],
  "status_json_median_ms": statistics.median(jt), "agents": len(v["agents"]), "comms_total": v["comms_total"], "comms_shown": len(v["comms"])}))
subprocess.run([B,"ctl","shutdown"], env=env, capture_output=True)
