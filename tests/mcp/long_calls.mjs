// SPDX-License-Identifier: MIT
// Long calls through the official client: progress, cancellation that leaves nothing running,
// calls that do not block each other, --warm, and the end of stdin stopping everything.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { alive, connect, eventually, makeHome, marker, processesRunning, rawServer, sleep, stopAll } from './support.mjs';

const home = makeHome();
let server;

before(async () => { server = await connect(['--profile', home.profileFile, '--profile', 'minimal'], home.env); });
after(async () => {
  await stopAll();
  home.cleanup();
});

const call = (args, options) => server.client.callTool({ name: 'sandbox_tools', arguments: args }, undefined, options);

test('progress: a 3 s command with a progressToken hears at least once a second, increasing, then the result', async () => {
  const seen = [];
  const start = Date.now();
  const r = await call({ command: ['sleep', '3'] }, { onprogress: (p) => seen.push({ ...p, at: Date.now() - start }) });
  assert.equal(r.structuredContent.exit_code, 0);
  assert.ok(seen.length >= 3, `${seen.length} progress notifications`);
  for (let i = 1; i < seen.length; ++i) assert.ok(seen[i].progress > seen[i - 1].progress);
  const times = [0, ...seen.map((p) => p.at), Date.now() - start];
  for (let i = 1; i < times.length; ++i) assert.ok(times[i] - times[i - 1] < 1000, `a gap of ${times[i] - times[i - 1]} ms`);
  assert.equal(seen[0].total, 30);
  assert.match(seen[0].message, /running for/);
  // Progress only while the call runs, and only for calls that asked: the SDK reports a
  // notification for a token it does not wait on as an error.
  await server.client.callTool({ name: 'sandbox_tools', arguments: { command: ['sleep', '1.2'] } });
  await sleep(700);
  assert.deepEqual(server.errors, []);
});

test('cancellation stops the sandbox: nothing is left running and no response comes', async () => {
  const word = marker();
  const controller = new AbortController();
  const pending = call({ command: ['sleep', '1000', word] }, { signal: controller.signal });
  assert.ok(await eventually(() => processesRunning(['sleep', '1000', word]).length === 1), 'the sleep started');
  const pid = processesRunning(['sleep', '1000', word])[0];
  controller.abort('the test gave up');
  await assert.rejects(pending);
  assert.ok(await eventually(() => !alive(pid), 5000), 'the sleep was killed');
  assert.deepEqual(processesRunning(['sleep', '1000', word]), []);
  await sleep(300);
  // A response to the cancelled request would reach the client as an unknown id: none did.
  assert.deepEqual(server.errors, []);
  // The server goes on.
  assert.equal((await call({ command: ['echo', 'after'] })).structuredContent.stdout, 'after\n');
});

test('calls run concurrently: a slow call blocks neither tools/list nor another call', async () => {
  const word = marker();
  const slow = call({ command: ['sh', '-c', `sleep 4; echo ${word}`] });
  const start = Date.now();
  await server.client.listTools();
  const quick = await call({ command: ['echo', 'quick'] });
  assert.equal(quick.structuredContent.stdout, 'quick\n');
  assert.ok(Date.now() - start < 3000, `quick calls took ${Date.now() - start} ms behind a slow one`);
  assert.equal((await slow).structuredContent.stdout, `${word}\n`);
});

test('--warm: one sandbox per profile, kept between calls (its tmpfs, its working directory)', async () => {
  const warm = await connect(['--profile', home.profileFile, '--warm'], home.env);
  try {
    const c = (command) => warm.client.callTool({ name: 'sandbox_tools', arguments: { command } });
    assert.equal((await c(['sh', '-c', 'echo kept > /tmp/note'])).structuredContent.exit_code, 0);
    assert.equal((await c(['cat', '/tmp/note'])).structuredContent.stdout, 'kept\n');
    const tools = (await warm.client.listTools()).tools;
    assert.match(tools.find((t) => t.name === 'sandbox_tools').description, /same warm sandbox/);
  } finally {
    await warm.client.close();
  }
  // Control: without --warm each call has a fresh /tmp.
  await call({ command: ['sh', '-c', 'echo kept > /tmp/note'] });
  assert.equal((await call({ command: ['cat', '/tmp/note'] })).structuredContent.exit_code, 1);
});

test('closing stdin ends the server at once, killing the command it runs', async () => {
  const word = marker();
  const raw = rawServer(['--profile', home.profileFile], home.env);
  raw.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'sandbox_tools', arguments: { command: ['sleep', '1000', word] } } });
  assert.ok(await eventually(() => processesRunning(['sleep', '1000', word]).length === 1), 'the sleep started');
  const pid = processesRunning(['sleep', '1000', word])[0];
  const start = Date.now();
  raw.child.stdin.end();
  const { code, signal } = await raw.exited;
  assert.equal(signal, null);
  assert.equal(code, 0);
  assert.ok(Date.now() - start < 3000, `exit took ${Date.now() - start} ms`);
  assert.ok(!alive(pid), 'the sleep is gone');
  assert.deepEqual(raw.messages, []);  // no response for the call it stopped
});

test('the SDK\'s close (stdin first) ends the server before it would send SIGTERM', async () => {
  const s = await connect(['--profile', home.profileFile], home.env);
  const word = marker();
  s.client.callTool({ name: 'sandbox_tools', arguments: { command: ['sleep', '1000', word] } }).catch(() => {});
  assert.ok(await eventually(() => processesRunning(['sleep', '1000', word]).length === 1));
  const start = Date.now();
  await s.client.close();
  assert.ok(Date.now() - start < 1900, `close took ${Date.now() - start} ms (the SDK sends SIGTERM at 2 s)`);
  assert.ok(!alive(s.pid));
  assert.deepEqual(processesRunning(['sleep', '1000', word]), []);
});

test('--audit appends one JSON line per call', async () => {
  const log = path.join(home.dir, 'audit.jsonl');
  const s = await connect(['--profile', home.profileFile, '--audit', log], home.env, 'audit-client');
  await s.client.callTool({ name: 'sandbox_tools', arguments: { command: ['sh', '-c', 'printf 12345; exit 4'] } });
  await s.client.callTool({ name: 'sandbox_tools', arguments: { command: ['rm', '-rf', '/'] } });
  await s.client.callTool({ name: 'sandbox_tools', arguments: { command: ['sleep', '5'], timeout_seconds: 0.5 } });
  await s.client.close();
  const lines = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 3);
  const [ran, refused, timedOut] = lines;
  assert.equal(ran.client, 'audit-client');
  assert.equal(ran.tool, 'sandbox_tools');
  assert.equal(ran.profile, 'tools');
  assert.equal(ran.host, 'local');
  assert.deepEqual(ran.argv, ['sh', '-c', 'printf 12345; exit 4']);
  assert.equal(ran.exit, 4);
  assert.equal(ran.bytes, 5);
  assert.equal(ran.error, null);
  assert.equal(ran.limit_exceeded, null);
  assert.ok(ran.duration_ms > 0);
  assert.match(ran.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(refused.exit, null);
  assert.match(refused.error, /not allowed/);
  assert.equal(timedOut.timed_out, true);
  assert.match(timedOut.error, /timed out/);
});
