// SPDX-License-Identifier: MIT
// The stateless 2026-07-28 revision through the v2 client package (pinned), in the same server
// binary that serves the initialize era; and the revision's errors, sent raw.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeHome, rawServer, sdkV2, shannotPath, stopAll } from './support.mjs';

const home = makeHome();
after(async () => {
  await stopAll();
  home.cleanup();
});

async function connectModern(mode) {
  const { Client, StdioClientTransport } = await sdkV2();
  const transport = new StdioClientTransport({ command: shannotPath(), args: ['mcp', '--profile', home.profileFile, '--profile', 'diagnostics'], env: home.env, stderr: 'pipe' });
  const client = new Client({ name: 'modern-tests', version: '1.0.0' }, { versionNegotiation: { mode } });
  const errors = [];
  client.onerror = (e) => errors.push(e);
  await client.connect(transport);
  return { client, errors };
}

test('2026-07-28 pinned: discover, then tools, a run, resources and prompts, statelessly', async () => {
  const { client, errors } = await connectModern({ pin: '2026-07-28' });
  try {
    assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28');
    assert.equal(client.getServerVersion()?.name, 'shannot');
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).slice(0, 2), ['sandbox_tools', 'sandbox_diagnostics']);
    const r = await client.callTool({ name: 'sandbox_tools', arguments: { command: ['sh', '-c', 'echo modern; exit 2'] } });
    assert.equal(r.isError, false);
    assert.equal(r.structuredContent.stdout, 'modern\n');
    assert.equal(r.structuredContent.exit_code, 2);
    const refused = await client.callTool({ name: 'sandbox_diagnostics', arguments: { command: ['sh'] } });
    assert.equal(refused.isError, true);
    const { resources } = await client.listResources();
    assert.equal(resources.length, 2);
    const read = await client.readResource({ uri: 'sandbox://profiles/diagnostics' });
    assert.equal(JSON.parse(read.contents[0].text).profile.name, 'diagnostics');
    await assert.rejects(client.readResource({ uri: 'sandbox://profiles/none' }), (e) => e.code === -32602);
    const { prompts } = await client.listPrompts();
    assert.ok(prompts.some((p) => p.name === 'system-health-check'));
    const progress = [];
    await client.callTool({ name: 'sandbox_tools', arguments: { command: ['sleep', '1.5'] } }, { onprogress: (p) => progress.push(p) });
    assert.ok(progress.length >= 2);
    assert.deepEqual(errors, []);
  } finally {
    await client.close();
  }
});

test('auto negotiation picks 2026-07-28 from this server; legacy mode still gets the initialize era', async () => {
  const auto = await connectModern('auto');
  try {
    assert.equal(auto.client.getNegotiatedProtocolVersion(), '2026-07-28');
    assert.ok((await auto.client.listTools()).tools.length > 0);
  } finally {
    await auto.client.close();
  }
  const legacy = await connectModern('legacy');
  try {
    assert.equal(legacy.client.getNegotiatedProtocolVersion(), '2025-11-25');
    const r = await legacy.client.callTool({ name: 'sandbox_tools', arguments: { command: ['echo', 'legacy'] } });
    assert.equal(r.structuredContent.stdout, 'legacy\n');
  } finally {
    await legacy.client.close();
  }
});

test('raw: results carry resultType (and ttlMs, cacheScope on lists); bad envelopes are errors', async () => {
  const s = rawServer(['--profile', 'minimal'], home.env);
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
  s.send({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: meta } });
  const discover = (await s.response(1)).result;
  assert.equal(discover.resultType, 'complete');
  assert.deepEqual(discover.supportedVersions, ['2026-07-28', '2025-11-25', '2025-06-18']);
  assert.equal(discover._meta['io.modelcontextprotocol/serverInfo'].name, 'shannot');
  s.send({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: meta } });
  const list = (await s.response(2)).result;
  assert.equal(list.resultType, 'complete');
  assert.equal(typeof list.ttlMs, 'number');
  assert.equal(list.cacheScope, 'private');
  s.send({ jsonrpc: '2.0', id: 3, method: 'tools/list', params: { _meta: { ...meta, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } } });
  const unsupported = (await s.response(3)).error;
  assert.equal(unsupported.code, -32022);
  assert.deepEqual(unsupported.data, { supported: ['2026-07-28', '2025-11-25', '2025-06-18'], requested: '2099-01-01' });
  s.send({ jsonrpc: '2.0', id: 4, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } });
  const noCaps = (await s.response(4)).error;
  assert.equal(noCaps.code, -32602);
  assert.match(noCaps.message, /clientCapabilities/);
  // Control: the same request without the envelope is a legacy request, answered without resultType.
  s.send({ jsonrpc: '2.0', id: 5, method: 'tools/list', params: {} });
  assert.equal((await s.response(5)).result.resultType, undefined);
  s.child.stdin.end();
  assert.equal((await s.exited).code, 0);
});
