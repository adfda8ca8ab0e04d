// SPDX-License-Identifier: MIT
// Resources (sandbox://profiles/{name}: the exported profile and its lint findings) and prompts
// (the diagnostic ones a profile allows the commands of), through the official client.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, makeHome, stopAll } from './support.mjs';

const home = makeHome();
after(async () => {
  await stopAll();
  home.cleanup();
});

test('resources: one per profile, read as the exported profile with its lint findings', async () => {
  const s = await connect([], home.env);
  try {
    const { resources } = await s.client.listResources();
    assert.deepEqual(resources.map((r) => r.uri), ['sandbox://profiles/minimal', 'sandbox://profiles/readonly',
      'sandbox://profiles/diagnostics', 'sandbox://profiles/systemd', 'sandbox://profiles/tools']);
    assert.equal(resources[0].mimeType, 'application/json');
    const { resourceTemplates } = await s.client.listResourceTemplates();
    assert.equal(resourceTemplates[0].uriTemplate, 'sandbox://profiles/{name}');
    const read = await s.client.readResource({ uri: 'sandbox://profiles/tools' });
    const body = JSON.parse(read.contents[0].text);
    assert.equal(body.profile.name, 'tools');
    assert.ok(body.profile.allowed_commands.includes('sleep'));
    assert.equal(body.source, home.profileFile);
    // `sh` and `find` run other commands: lint says so.
    assert.ok(body.lint.some((f) => f.severity === 'danger' && f.code === 'exec-capable' && /'sh'/.test(f.message)));
    const minimal = JSON.parse((await s.client.readResource({ uri: 'sandbox://profiles/minimal' })).contents[0].text);
    assert.deepEqual(minimal.profile.allowed_commands, ['ls', 'cat', 'grep', 'find']);
    await assert.rejects(s.client.readResource({ uri: 'sandbox://profiles/nope' }),
      (e) => e.code === -32002 && /no resource 'sandbox:\/\/profiles\/nope'/.test(e.message));
  } finally {
    await s.client.close();
  }
});

test('prompts: each listed only when some profile allows its commands', async () => {
  const all = await connect([], home.env);
  try {
    const { prompts } = await all.client.listPrompts();
    assert.deepEqual(prompts.map((p) => p.name),
      ['system-health-check', 'disk-usage-audit', 'analyze-logs', 'monitor-processes', 'check-service-status']);
    const health = await all.client.getPrompt({ name: 'system-health-check', arguments: {} });
    assert.equal(health.messages[0].role, 'user');
    assert.match(health.messages[0].content.text, /Use the tools sandbox_diagnostics, sandbox_systemd/);
    assert.match(health.messages[0].content.text, /`df -h`/);
    const service = await all.client.getPrompt({ name: 'check-service-status', arguments: { service_name: 'ssh' } });
    assert.match(service.messages[0].content.text, /sandbox_systemd/);
    assert.match(service.messages[0].content.text, /journalctl -u ssh/);
    await assert.rejects(all.client.getPrompt({ name: 'check-service-status', arguments: {} }), /needs the argument 'service_name'/);
    await assert.rejects(all.client.getPrompt({ name: 'nope' }), /no prompt named 'nope'/);
  } finally {
    await all.client.close();
  }
  // With the minimal profile alone (ls, cat, grep, find), no prompt's commands are all allowed.
  const minimal = await connect(['--profile', 'minimal'], home.env);
  try {
    assert.deepEqual((await minimal.client.listPrompts()).prompts, []);
    await assert.rejects(minimal.client.getPrompt({ name: 'system-health-check' }), /no prompt named/);
  } finally {
    await minimal.client.close();
  }
  // readonly adds tail: the logs prompt, only.
  const readonly = await connect(['--profile', 'readonly'], home.env);
  try {
    assert.deepEqual((await readonly.client.listPrompts()).prompts.map((p) => p.name), ['analyze-logs']);
  } finally {
    await readonly.client.close();
  }
});
