#!/usr/bin/env node
// npm wrapper for the native `oxtail` binary (packaging/INSTALL.md §3).
// Finds the binary and runs it with this process's arguments and stdio, so
// it works as an MCP server over stdio too. Exit code and signals are
// passed through.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

function executable(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function findBinary() {
  const tried = [];
  const fromEnv = process.env.OXTAIL_BINARY;
  if (fromEnv) {
    if (executable(fromEnv)) return { bin: fromEnv, tried };
    tried.push(`OXTAIL_BINARY=${fromEnv} (not an executable file)`);
  }
  const pkg = `oxtail-${process.platform}-${process.arch}`;
  try {
    const p = path.join(path.dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'oxtail');
    if (executable(p)) return { bin: p, tried };
    tried.push(`${p} (not executable)`);
  } catch {
    tried.push(`npm package ${pkg} (not installed)`);
  }
  const self = fs.realpathSync(__filename);
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, 'oxtail');
    if (!executable(p)) continue;
    let real = p;
    try { real = fs.realpathSync(p); } catch { /* keep p */ }
    if (real === self) continue; // this wrapper's own npm shim
    return { bin: p, tried };
  }
  tried.push('oxtail on PATH (none besides this wrapper)');
  return { bin: null, tried };
}

const { bin, tried } = findBinary();
if (!bin) {
  process.stderr.write(
    'oxtail: the native oxtail binary was not found. Looked at:\n' +
      tried.map((t) => `  - ${t}\n`).join('') +
      'Install it with `cargo install --locked --path .` from a checkout, or set OXTAIL_BINARY.\n'
  );
  process.exit(127);
}
const r = spawnSync(bin, process.argv.slice(2), { stdio: 'inherit' });
if (r.error) {
  process.stderr.write(`oxtail: could not run ${bin}: ${r.error.message}\n`);
  process.exit(126);
}
if (r.signal) process.kill(process.pid, r.signal);
process.exit(r.status === null ? 1 : r.status);
