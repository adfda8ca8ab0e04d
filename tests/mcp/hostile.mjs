// SPDX-License-Identifier: MIT
// What no well-behaved client sends: every method with wrong params, broken JSON-RPC, a burst of
// 10,000 requests, a 50 MB line. Each gets an answer (an error, or isError), the server stays up,
// and its memory stays bounded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeHome, peakRssKiB, rawServer, stopAll } from './support.mjs';

const home = makeHome();
after(async () => {
  await stopAll();
  home.cleanup();
});

/// The peak memory a server holding a 50 MB request would exceed, with room for what it needs.
const rssBoundKiB = 40 * 1024;

async function ping(s, id) {
  s.send({ jsonrpc: '2.0', id, method: 'ping' });
  assert.deepEqual((await s.response(id)).result, {});
}

test('every method with wrong params gets an error naming the problem; the server goes on', async () => {
  const s = rawServer(['--profile', home.profileFile], home.env);
  const cases = [
    ['initialize', {}, -32602, /protocolVersion/],
    ['initialize', { protocolVersion: 7 }, -32602, /protocolVersion/],
    ['initialize', { protocolVersion: '2025-11-25', capabilities: 'all' }, -32602, /capabilities/],
    ['initialize', { protocolVersion: '2025-11-25', clientInfo: [] }, -32602, /clientInfo/],
    ['ping', [], -32602, /params/],
    ['tools/list', { cursor: 5 }, -32602, /cursor/],
    ['tools/list', { cursor: 'abc' }, -32602, /cursor/],
    ['tools/call', {}, -32602, /name/],
    ['tools/call', { name: 5 }, -32602, /name/],
    ['tools/call', { name: 'sandbox_tools', arguments: [] }, -32602, /arguments/],
    ['tools/call', { name: 'sandbox_tools', arguments: 'ls' }, -32602, /arguments/],
    ['tools/call', { name: 'nope', arguments: {} }, -32602, /unknown tool 'nope'/],
    ['resources/list', { cursor: {} }, -32602, /cursor/],
    ['resources/templates/list', { cursor: [] }, -32602, /cursor/],
    ['resources/read', {}, -32602, /uri/],
    ['resources/read', { uri: 42 }, -32602, /uri/],
    ['resources/read', { uri: 'file:///etc/passwd' }, -32002, /no resource/],
    ['prompts/list', { cursor: 1 }, -32602, /cursor/],
    ['prompts/get', {}, -32602, /name/],
    ['prompts/get', { name: 'monitor-processes', arguments: { sort_by: 3 } }, -32602, /must be a string/],
    ['prompts/get', { name: 'monitor-processes', arguments: { bogus: 'x' } }, -32602, /no argument 'bogus'/],
    ['prompts/get', { name: 'monitor-processes', arguments: 'cpu' }, -32602, /arguments/],
    ['server/discover', 'x', -32602, /params/],
    ['tools/list', { _meta: 'x' }, -32602, /_meta/],
    ['logging/setLevel', { level: 'debug' }, -32601, /not found/],
    ['completion/complete', {}, -32601, /not found/],
    ['no/such/method', {}, -32601, /no\/such\/method/],
  ];
  let id = 100;
  for (const [method, params, code, message] of cases) {
    s.send({ jsonrpc: '2.0', id: ++id, method, params });
    const r = await s.response(id);
    assert.ok(r.error, `${method} ${JSON.stringify(params)}: ${JSON.stringify(r)}`);
    assert.equal(r.error.code, code, `${method} ${JSON.stringify(params)}: ${r.error.message}`);
    assert.match(r.error.message, message);
  }
  // Broken JSON-RPC: answered with id null, or with the id when it can be read.
  const broken = [
    ['{"jsonrpc":"2.0","id":1,"method":', null, -32700],
    ['not json at all', null, -32700],
    ['[{"jsonrpc":"2.0","id":2,"method":"ping"}]', null, -32600],
    ['"a string"', null, -32600],
    ['{"jsonrpc":"1.0","id":3,"method":"ping"}', 3, -32600],
    ['{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}', null, -32600],
    ['{"jsonrpc":"2.0","id":4,"method":5}', 4, -32600],
    ['{"jsonrpc":"2.0","id":5}', null, -32600],
    ['{"jsonrpc":"2.0","id":6,"method":"ping","method":"ping"}', null, -32700],
    [`${'['.repeat(100000)}${']'.repeat(100000)}`, null, -32700],
    ['{"jsonrpc":"2.0","id":7,"method":"ping","params":{"x":"\xff"}}', 7, null],
  ];
  const before = s.messages.length;
  for (const [line] of broken) s.send(line);
  await ping(s, 'after-broken');
  const answers = s.messages.slice(before, -1);
  assert.equal(answers.length, broken.length);
  for (let i = 0; i < broken.length; ++i) {
    const [line, expectedId, code] = broken[i];
    if (code === null) continue;  // U+00FF is fine JSON: answered {}
    assert.ok(answers.some((a) => a.id === expectedId && a.error?.code === code), `${line.slice(0, 60)}: ${JSON.stringify(answers)}`);
  }
  // An id already in use by a call in progress is refused; that call goes on.
  s.send({ jsonrpc: '2.0', id: 'dup', method: 'tools/call', params: { name: 'sandbox_tools', arguments: { command: ['sleep', '1'] } } });
  s.send({ jsonrpc: '2.0', id: 'dup', method: 'tools/call', params: { name: 'sandbox_tools', arguments: { command: ['true'] } } });
  for (let i = 0; i < 100 && s.messages.filter((m) => m.id === 'dup').length < 2; ++i) await new Promise((r) => setTimeout(r, 100));
  const dup = s.messages.filter((m) => m.id === 'dup');
  assert.equal(dup.length, 2);
  assert.match(dup[0].error.message, /already in use by a call in progress/);
  assert.equal(dup[1].result.structuredContent.exit_code, 0);
  // Notifications with bad params, and responses nobody asked for, get no answer.
  const quiet = s.messages.length;
  s.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: { bad: 1 } } });
  s.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: 'x' });
  s.send({ jsonrpc: '2.0', method: 'notifications/unknown' });
  s.send({ jsonrpc: '2.0', id: 99, result: {} });
  await ping(s, 'after-notifications');
  assert.equal(s.messages.length, quiet + 1);
  s.child.stdin.end();
  assert.equal((await s.exited).code, 0);
});

test('10,000 requests in a burst: each answered, in bounded memory; calls beyond the queue are refused at once', async (t) => {
  const s = rawServer(['--profile', home.profileFile], home.env);
  let lines = '';
  const n = 10000;
  for (let i = 0; i < n; ++i) {
    const kind = i % 4;
    const message = kind === 0 ? { jsonrpc: '2.0', id: i, method: 'ping' }
      : kind === 1 ? { jsonrpc: '2.0', id: i, method: 'tools/list' }
        : kind === 2 ? { jsonrpc: '2.0', id: i, method: 'resources/read', params: { uri: 'sandbox://profiles/tools' } }
          : { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'sandbox_tools', arguments: { command: ['true'] } } };
    lines += JSON.stringify(message) + '\n';
  }
  s.child.stdin.write(lines);
  const start = Date.now();
  while (new Set(s.messages.map((m) => m.id)).size < n && Date.now() - start < 120000) await new Promise((r) => setTimeout(r, 100));
  const ids = new Set(s.messages.map((m) => m.id));
  assert.equal(ids.size, n);
  const calls = s.messages.filter((m) => m.id % 4 === 3);
  const ran = calls.filter((m) => m.result?.structuredContent?.exit_code === 0).length;
  const busy = calls.filter((m) => m.result?.isError && /server is busy/.test(m.result.content[0].text)).length;
  assert.equal(ran + busy, n / 4);
  assert.ok(ran >= 8 + 64, `${ran} calls ran`);
  assert.ok(busy > 0);
  t.diagnostic(`${ran} calls ran, ${busy} were refused as busy; answered in ${Date.now() - start} ms; server peak RSS ${peakRssKiB(s.child.pid)} KiB`);
  assert.ok(peakRssKiB(s.child.pid) < rssBoundKiB, `peak RSS ${peakRssKiB(s.child.pid)} KiB`);
  await ping(s, 'after-burst');
  s.child.stdin.end();
  assert.equal((await s.exited).code, 0);
});

test('a 50 MB line gets an error with its id; the server never holds it and goes on', async (t) => {
  const s = rawServer(['--profile', home.profileFile], home.env);
  await ping(s, 'before');
  const big = 'A'.repeat(50 * 1000 * 1000);
  s.send(`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"sandbox_tools","arguments":{"command":["cat"],"stdin":"${big}"}},"id":77}`);
  const r = await s.response(77, 60000);
  assert.equal(r.error.code, -32600);
  assert.match(r.error.message, /50000\d+ bytes, more than this server reads in one \(4 MiB\)/);
  // Without an id where it can be read, the error has id null.
  s.send(`{"jsonrpc":"2.0","method":"ping","params":{"pad":"${'B'.repeat(5 * 1000 * 1000)}"},"id":{"odd":1}}`);
  await ping(s, 'after');
  assert.ok(s.messages.some((m) => m.id === null && m.error?.code === -32600));
  t.diagnostic(`server peak RSS ${peakRssKiB(s.child.pid)} KiB after a 50 MB and a 5 MB line`);
  assert.ok(peakRssKiB(s.child.pid) < rssBoundKiB, `peak RSS ${peakRssKiB(s.child.pid)} KiB`);
  s.child.stdin.end();
  assert.equal((await s.exited).code, 0);
});
