// SPDX-License-Identifier: MIT
// Shared by the tests of `shannot mcp`: the built tool, a private config folder with a test
// profile, clients of the official SDKs, and /proc scans for processes left behind.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const inCI = process.env.CI === 'true';

/// Exits 77 (meson: skipped) or, under CI=true, fails: for what these tests need and cannot find.
export function unavailable(what) {
  if (inCI) {
    console.error(`FAIL: ${what} (CI=true: a missing client or tool is a failure)`);
    process.exit(1);
  }
  console.error(`SKIP: ${what}`);
  process.exit(77);
}

/// The official clients, imported here so a missing `npm ci` is a skip (or a CI failure), not a crash.
export async function sdk() {
  try {
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js');
    const types = await import('@modelcontextprotocol/sdk/types.js');
    return { Client, StdioClientTransport, types };
  } catch (e) {
    unavailable(`@modelcontextprotocol/sdk is not installed in tests/mcp (run \`npm ci\` there, or tools/dev.sh test): ${e.message}`);
  }
}

export async function sdkV2() {
  try {
    const client = await import('@modelcontextprotocol/client');
    const stdio = await import('@modelcontextprotocol/client/stdio');
    return { ...client, ...stdio };
  } catch (e) {
    unavailable(`@modelcontextprotocol/client is not installed in tests/mcp (run \`npm ci\` there): ${e.message}`);
  }
}

/// The tool meson built ($SHANNOT_CLI), checked once.
export function shannotPath() {
  const cli = process.env.SHANNOT_CLI;
  if (!cli || !fs.existsSync(cli)) unavailable(`the shannot tool is not built (SHANNOT_CLI=${cli ?? ''})`);
  return cli;
}

/// The commands the tests drive, on top of the built-in minimal profile.
export const toolCommands = ['ls', 'cat', 'grep', 'find', 'sh', 'sleep', 'head', 'tail', 'yes', 'echo', 'printf', 'true',
  'false', 'df', 'free', 'ps', 'uptime', 'env', 'pwd', 'wc'];

/// A private HOME and XDG_CONFIG_HOME holding the profile file tools.json (profile "tools"), so
/// the server finds the built-ins and that file, and nothing of the machine's user.
export function makeHome() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shannot-mcp-test-'));
  const exported = spawnSync(shannotPath(), ['export', '--profile', 'minimal'], { encoding: 'utf8' });
  if (exported.status !== 0) throw new Error(`shannot export failed: ${exported.stderr}`);
  const profile = JSON.parse(exported.stdout);
  profile.name = 'tools';
  profile.allowed_commands = toolCommands;
  fs.mkdirSync(path.join(dir, 'shannot', 'profiles'), { recursive: true });
  const profileFile = path.join(dir, 'shannot', 'profiles', 'tools.json');
  fs.writeFileSync(profileFile, JSON.stringify(profile, null, 2));
  return {
    dir,
    profileFile,
    env: { HOME: dir, XDG_CONFIG_HOME: dir },
    cleanup() { fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

/// Everything the tests started, stopped by stopAll() (each file calls it in after()), so a test
/// that fails half-way does not leave a server that keeps node, and meson, waiting.
const started = new Set();

export async function stopAll() {
  for (const stop of [...started]) await stop();
  started.clear();
}

/// A v1 SDK client connected to `shannot mcp ARGS` (the environment the SDK passes, plus `env`).
export async function connect(args = [], env = {}, name = 'shannot-tests') {
  const { Client, StdioClientTransport } = await sdk();
  const transport = new StdioClientTransport({ command: shannotPath(), args: ['mcp', ...args], env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (chunk) => { stderr += chunk; });
  const client = new Client({ name, version: '1.0.0' });
  const errors = [];
  client.onerror = (e) => errors.push(e);
  await client.connect(transport);
  started.add(() => client.close().catch(() => {}));
  return { client, transport, errors, stderr: () => stderr, pid: transport.pid };
}

/// Live processes whose command line (NUL-separated) starts with `words`.
export function processesRunning(words) {
  const prefix = words.join('\0') + '\0';
  const found = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'latin1');
      if (cmdline.startsWith(prefix)) found.push(Number(entry));
    } catch { /* gone */ }
  }
  return found;
}

export function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/// Peak resident memory of a process in KiB (VmHWM).
export function peakRssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  return Number(/VmHWM:\s+(\d+)/.exec(status)[1]);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/// Waits until `predicate()` holds, up to `ms`.
export async function eventually(predicate, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (predicate()) return true;
    await sleep(50);
  }
  return predicate();
}

/// A unique word for a command line, to find its process in /proc: a number (`sleep 1000 WORD`
/// sleeps the sum), different in every call.
export function marker() {
  return `0.${process.pid}${Math.floor(Math.random() * 1e9)}`;
}

/// `shannot mcp ARGS` as a raw child process speaking JSON-RPC lines: for what a well-behaved
/// client never sends.
export function rawServer(args = [], env = {}) {
  const child = spawn(shannotPath(), ['mcp', ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const messages = [];
  const waiters = [];
  let buffer = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      messages.push(JSON.parse(line));  // a line that is not JSON fails the test here
      for (const w of waiters.splice(0)) w();
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  started.add(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return {
    child,
    messages,
    exited,
    stderr: () => stderr,
    send(message) { child.stdin.write((typeof message === 'string' ? message : JSON.stringify(message)) + '\n'); },
    /// The response to request `id`.
    async response(id, ms = 20000) {
      const end = Date.now() + ms;
      for (;;) {
        const found = messages.find((m) => m.id === id && !('method' in m));
        if (found) return found;
        if (Date.now() > end) throw new Error(`no response to id ${JSON.stringify(id)} within ${ms} ms; stderr: ${stderr}`);
        await new Promise((resolve) => { waiters.push(resolve); setTimeout(resolve, 100); });
      }
    },
  };
}
