// SPDX-License-Identifier: MIT
// Remote tools against the suite's private sshd (run under with_sshd): sandbox_<target>_<profile>
// runs on the host over ssh, no ssh starts before a remote tool is called, a failure names the
// host, and closing stdin ends the ssh processes too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { alive, connect, eventually, makeHome, marker, processesRunning, shannotPath, unavailable, stopAll } from './support.mjs';

const port = process.env.SHANNOT_TEST_SSH_PORT;
if (!port) unavailable('no test sshd (run this file under with_sshd, as meson does)');

const home = makeHome();
let server;

/// ssh processes that are children (or deeper) of `pid`.
function sshDescendants(pid) {
  const parents = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch { /* gone */ }
  }
  const found = [];
  for (const [child] of parents) {
    let p = child;
    for (let depth = 0; depth < 10 && p > 1; ++depth) {
      p = parents.get(p);
      if (p === pid) {
        try {
          if (fs.readFileSync(`/proc/${child}/comm`, 'latin1').trim() === 'ssh') found.push(child);
        } catch { /* gone */ }
        break;
      }
    }
  }
  return found;
}

before(async () => {
  const add = spawnSync(shannotPath(), ['remote', 'add', 'testhost', '127.0.0.1', '--port', port, '--user', process.env.SHANNOT_TEST_SSH_USER,
    '--key', process.env.SHANNOT_TEST_SSH_KEY, '--known-hosts', process.env.SHANNOT_TEST_SSH_KNOWN_HOSTS], { env: { ...process.env, ...home.env }, encoding: 'utf8' });
  assert.equal(add.status, 0, add.stderr);
  server = await connect(['--profile', home.profileFile, '--target', 'testhost'], home.env);
});
after(async () => {
  await stopAll();
  home.cleanup();
});

test('remote tools are listed per target and profile; no ssh runs until one is called', async () => {
  const { tools } = await server.client.listTools();
  assert.deepEqual(tools.map((t) => t.name).slice(0, 2), ['sandbox_tools', 'sandbox_testhost_tools']);
  const remote = tools.find((t) => t.name === 'sandbox_testhost_tools');
  assert.match(remote.description, /on the remote host remote 'testhost' \(.*127\.0\.0\.1:\d+\), over ssh/);
  assert.deepEqual(tools.find((t) => t.name === 'read_file').inputSchema.properties.target.enum, ['local', 'testhost']);
  assert.deepEqual(sshDescendants(server.pid), []);
  // Control: a local run starts no ssh either, a remote one does.
  await server.client.callTool({ name: 'sandbox_tools', arguments: { command: ['true'] } });
  assert.deepEqual(sshDescendants(server.pid), []);
});

test('a remote run: the command runs over ssh, its result as `shannot --json` prints it', async () => {
  const r = await server.client.callTool({ name: 'sandbox_testhost_tools', arguments: { command: ['sh', '-c', 'echo remote; exit 5'] } });
  assert.equal(r.isError, false);
  assert.equal(r.structuredContent.transport, 'ssh');
  assert.equal(r.structuredContent.stdout, 'remote\n');
  assert.equal(r.structuredContent.exit_code, 5);
  assert.equal(r.structuredContent.argv[0], 'ssh');
  assert.ok(sshDescendants(server.pid).length > 0);
  const op = await server.client.callTool({ name: 'read_file', arguments: { path: '/etc/os-release', profile: 'tools', target: 'testhost' } });
  assert.equal(op.isError, false);
  assert.equal(op.structuredContent.transport, 'ssh');
  assert.match(op.structuredContent.content, /ID=/);
  const refused = await server.client.callTool({ name: 'sandbox_testhost_tools', arguments: { command: ['rm', '/x'] } });
  assert.equal(refused.isError, true);
  assert.match(refused.content[0].text, /on remote 'testhost'.*not allowed by profile 'tools'/);
});

test('a remote timeout and a cancel stop the remote command', async () => {
  const word = marker();
  const timedOut = await server.client.callTool({ name: 'sandbox_testhost_tools', arguments: { command: ['sleep', '1000', word], timeout_seconds: 1 } });
  assert.equal(timedOut.isError, true);
  assert.equal(timedOut.structuredContent.timed_out, true);
  assert.ok(await eventually(() => processesRunning(['sleep', '1000', word]).length === 0, 10000));
  const word2 = marker();
  const controller = new AbortController();
  const pending = server.client.callTool({ name: 'sandbox_testhost_tools', arguments: { command: ['sleep', '1000', word2] } }, undefined, { signal: controller.signal });
  assert.ok(await eventually(() => processesRunning(['sleep', '1000', word2]).length === 1), 'the remote sleep started');
  controller.abort();
  await assert.rejects(pending);
  assert.ok(await eventually(() => processesRunning(['sleep', '1000', word2]).length === 0, 10000), 'the remote sleep was killed');
});

test('--warm on a remote: one warm sandbox there, kept between calls', async () => {
  const s = await connect(['--profile', home.profileFile, '--target', 'testhost', '--no-local', '--warm'], home.env);
  try {
    const c = (command) => s.client.callTool({ name: 'sandbox_testhost_tools', arguments: { command } });
    assert.equal((await c(['sh', '-c', 'echo kept > /tmp/note'])).structuredContent.exit_code, 0);
    const r = await c(['cat', '/tmp/note']);
    assert.equal(r.structuredContent.stdout, 'kept\n');
    assert.equal(r.structuredContent.transport, 'ssh');
  } finally {
    await s.client.close();
  }
  // Control: without --warm, each remote call has a fresh /tmp.
  await server.client.callTool({ name: 'sandbox_testhost_tools', arguments: { command: ['sh', '-c', 'echo kept > /tmp/note'] } });
  const fresh = await server.client.callTool({ name: 'sandbox_testhost_tools', arguments: { command: ['cat', '/tmp/note'] } });
  assert.equal(fresh.structuredContent.exit_code, 1);
});

test('an unreachable host: isError naming the host and the cause', async () => {
  const s = await connect(['--profile', home.profileFile, '--no-local', '--ssh', `${process.env.SHANNOT_TEST_SSH_USER}@127.0.0.1:1`, '-i', process.env.SHANNOT_TEST_SSH_KEY], home.env);
  try {
    const { tools } = await s.client.listTools();
    assert.equal(tools[0].name, 'sandbox_127.0.0.1_tools');
    const r = await s.client.callTool({ name: 'sandbox_127.0.0.1_tools', arguments: { command: ['true'] } });
    assert.equal(r.isError, true);
    assert.match(r.content[0].text, /on .*127\.0\.0\.1:1: /);
    assert.match(r.content[0].text, /connect|refused/i);
  } finally {
    await s.client.close();
  }
});

test('closing stdin ends the server and its ssh processes', async () => {
  const s = await connect(['--profile', home.profileFile, '--target', 'testhost', '--no-local'], home.env);
  await s.client.callTool({ name: 'sandbox_testhost_tools', arguments: { command: ['true'] } });
  const ssh = sshDescendants(s.pid);
  assert.ok(ssh.length > 0);
  await s.client.close();
  assert.ok(await eventually(() => ssh.every((p) => !alive(p)), 5000), `ssh processes left: ${ssh.filter(alive)}`);
});
