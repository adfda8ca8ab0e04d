// SPDX-License-Identifier: MIT
// `shannot mcp` through the official TypeScript SDK client: the tool list and its schemas, runs,
// a non-zero exit, a refusal, stdin, a timeout, 20 MB of output, the operation tools.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, makeHome, shannotPath, toolCommands, stopAll } from './support.mjs';

const home = makeHome();
let server;

before(async () => { server = await connect([], home.env); });
after(async () => {
  await stopAll();
  home.cleanup();
});

const call = (name, args, options) => server.client.callTool({ name, arguments: args }, undefined, options);

test('tools/list: a run tool per profile, then the operations, in a fixed order, with schemas the SDK compiles', async () => {
  const { tools } = await server.client.listTools();
  const names = tools.map((t) => t.name);
  assert.deepEqual(names, ['sandbox_minimal', 'sandbox_readonly', 'sandbox_diagnostics', 'sandbox_systemd', 'sandbox_tools',
    'read_file', 'list_directory', 'search_files', 'grep_content', 'check_disk_usage', 'check_memory']);
  for (const t of tools) {
    assert.equal(t.inputSchema.type, 'object', t.name);
    assert.equal(t.outputSchema.type, 'object', t.name);
    assert.ok(t.description.length > 40, t.name);
  }
  const tools_ = tools.find((t) => t.name === 'sandbox_tools');
  assert.deepEqual(tools_.inputSchema.required, ['command']);
  assert.deepEqual(Object.keys(tools_.inputSchema.properties).sort(), ['command', 'cwd', 'env', 'stdin', 'timeout_seconds']);
  for (const c of toolCommands) assert.ok(tools_.description.includes(c), `the description lists ${c}`);
  assert.match(tools_.description, /on this host/);
  assert.equal(tools_.annotations.readOnlyHint, true);
  for (const op of ['read_file', 'list_directory', 'search_files', 'grep_content', 'check_disk_usage', 'check_memory']) {
    const t = tools.find((x) => x.name === op);
    assert.ok(t.inputSchema.properties.profile.enum.includes('tools'), op);
  }
  // The order does not depend on the client: a second listing is the same.
  assert.deepEqual((await server.client.listTools()).tools.map((t) => t.name), names);
});

test('structuredContent is exactly what `shannot --json` prints for the same run, and validates', async () => {
  const r = await call('sandbox_tools', { command: ['ls', '/'] });
  assert.equal(r.isError, false);
  const s = r.structuredContent;
  assert.equal(s.exit_code, 0);
  assert.match(s.stdout, /^usr$/m);
  assert.equal(s.profile, 'tools');
  assert.equal(s.transport, 'local');
  assert.deepEqual(JSON.parse(r.content[0].text), s);
  const cli = spawnSync(shannotPath(), ['--json', '--profile', home.profileFile, 'ls', '/'], { env: { ...process.env, ...home.env }, encoding: 'utf8' });
  const printed = JSON.parse(cli.stdout);
  assert.deepEqual(Object.keys(s).sort(), Object.keys(printed).sort());
  for (const key of ['command', 'exit_code', 'signal', 'stdout', 'stderr', 'stdout_encoding', 'stdout_truncated', 'stdout_dropped', 'status', 'profile', 'transport'])
    assert.deepEqual(s[key], printed[key], key);
});

test('a non-zero exit is a result, not an error; stdout and stderr stay apart', async () => {
  const r = await call('sandbox_tools', { command: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
  assert.equal(r.isError, false);
  assert.equal(r.structuredContent.exit_code, 3);
  assert.equal(r.structuredContent.stdout, 'out\n');
  assert.equal(r.structuredContent.stderr, 'err\n');
  assert.equal(r.structuredContent.status, 3);
});

test('a refused command is isError naming the allowlist; nothing ran', async () => {
  const r = await call('sandbox_minimal', { command: ['sh', '-c', 'echo hi'] });
  assert.equal(r.isError, true);
  assert.match(r.content[0].text, /'sh' is not allowed by profile 'minimal'/);
  assert.match(r.content[0].text, /allowed: ls, cat, grep, find/);
  assert.equal(r.structuredContent, undefined);
});

test('bad arguments are isError results that name the argument', async () => {
  const cases = [
    [{ command: 'ls /' }, /command: must be a non-empty array of strings/],
    [{ command: [] }, /command: must be a non-empty array/],
    [{ command: ['ls', 5] }, /command\[1\]: must be a string/],
    [{}, /command: required/],
    [{ command: ['ls'], cwd: 'tmp' }, /cwd: 'tmp' is not an absolute path/],
    [{ command: ['ls'], env: { 'A B': 'x' } }, /env: 'A B' is not a variable name/],
    [{ command: ['ls'], env: { A: 1 } }, /env\.A: must be a string/],
    [{ command: ['ls'], timeout_seconds: 0 }, /timeout_seconds: must be a number above 0/],
    [{ command: ['ls'], timeout_seconds: 100000 }, /at most 600/],
    [{ command: ['ls'], bogus: 1 }, /unknown argument 'bogus'/],
  ];
  for (const [args, message] of cases) {
    const r = await call('sandbox_tools', args);
    assert.equal(r.isError, true, JSON.stringify(args));
    assert.match(r.content[0].text, message);
  }
  await assert.rejects(call('no_such_tool', { command: ['ls'] }), /unknown tool 'no_such_tool'/);
});

test('cwd, env and stdin reach the command; the server\'s own stdin (the protocol stream) never does', async () => {
  const r = await call('sandbox_tools', { command: ['sh', '-c', 'pwd; echo "$GREETING"; cat'], cwd: '/tmp', env: { GREETING: 'hello' }, stdin: 'from stdin' });
  assert.equal(r.structuredContent.stdout, '/tmp\nhello\nfrom stdin');
  // Without stdin, `cat` reads an empty input and returns at once: it cannot eat the JSON-RPC
  // stream (the requests sent meanwhile are answered).
  const [catResult, listed] = await Promise.all([call('sandbox_tools', { command: ['cat'] }), server.client.listTools()]);
  assert.equal(catResult.structuredContent.exit_code, 0);
  assert.equal(catResult.structuredContent.stdout, '');
  assert.ok(listed.tools.length > 0);
  // Control: with input, cat does print what it reads.
  assert.equal((await call('sandbox_tools', { command: ['cat'], stdin: 'x' })).structuredContent.stdout, 'x');
});

test('a timeout stops the command: isError naming the limit, with the partial run', async () => {
  const start = Date.now();
  const r = await call('sandbox_tools', { command: ['sh', '-c', 'echo started; sleep 30'], timeout_seconds: 1 });
  assert.ok(Date.now() - start < 10000);
  assert.equal(r.isError, true);
  assert.match(r.content[0].text, /timed out after 1 s/);
  assert.equal(r.structuredContent.timed_out, true);
  assert.equal(r.structuredContent.stdout, 'started\n');
  assert.equal(r.structuredContent.status, 124);
});

test('20 MB of output: the head and tail of each stream, the middle counted, the response small', async () => {
  const r = await call('sandbox_tools', { command: ['sh', '-c', 'head -c 20000000 /dev/zero | tr "\\0" a; yes err | head -c 20000000 >&2'] });
  const s = r.structuredContent;
  assert.equal(r.isError, false);
  assert.equal(s.stdout_truncated, true);
  assert.equal(s.stderr_truncated, true);
  assert.equal(s.stdout.length, 256 * 1024);
  assert.equal(s.stdout_dropped, 20000000 - 256 * 1024);
  assert.equal(s.stderr_dropped + Buffer.byteLength(s.stderr), 20000000);
  assert.ok(JSON.stringify(r).length < 4 * 1024 * 1024);
});

test('output that JSON escapes six-fold still fits: the server trims it further and says so', async () => {
  const home2 = makeHome();
  const big = await connect(['--profile', home2.profileFile, '--max-output', '4194304'], home2.env);
  try {
    // 4 MiB per stream of \x01 bytes: valid UTF-8 that becomes \u0001 in JSON (24 MiB unless trimmed).
    const r = await big.client.callTool({ name: 'sandbox_tools', arguments: { command: ['sh', '-c', 'head -c 10000000 /dev/zero | tr "\\0" "\\1"'] } });
    assert.equal(r.structuredContent.stdout_truncated, true);
    assert.equal(r.structuredContent.stdout_dropped + r.structuredContent.stdout.length, 10000000);
    assert.ok(JSON.stringify(r).length < 5 * 1024 * 1024, `${JSON.stringify(r).length} bytes`);
  } finally {
    await big.client.close();
    home2.cleanup();
  }
});

test('a truncated stream is cut on whole characters, so it stays text', async () => {
  const r = await call('sandbox_tools', { command: ['sh', '-c', 'i=0; while [ $i -lt 100000 ]; do printf "\\303\\251t\\303\\251 "; i=$((i+1)); done'] });
  const s = r.structuredContent;
  assert.equal(s.stdout_truncated, true);
  assert.equal(s.stdout_encoding, 'utf-8');
  assert.equal(Buffer.byteLength(s.stdout) + s.stdout_dropped, 600000);
  // Control: the library's cut of the same output, as `shannot --json` prints it, splits a character.
  const cli = spawnSync(shannotPath(), ['--json', '--max-output', '262144', '--profile', home.profileFile, ...r.structuredContent.command],
    { env: { ...process.env, ...home.env }, encoding: 'utf8' });
  assert.equal(JSON.parse(cli.stdout).stdout_encoding, 'base64');
});

test('the operation tools run their command in the profile given, or the first that allows it', async () => {
  const read = await call('read_file', { path: '/etc/os-release', profile: 'tools' });
  assert.equal(read.isError, false);
  assert.match(read.structuredContent.content, /ID=/);
  assert.equal(read.structuredContent.encoding, 'utf-8');
  const listed = await call('list_directory', { path: '/', long: true });
  assert.equal(listed.structuredContent.command.join(' '), 'ls -l -- /');
  assert.match(listed.structuredContent.stdout, /usr/);
  const found = await call('search_files', { path: '/etc', pattern: 'os-release' });
  assert.match(found.structuredContent.stdout, /\/etc\/os-release/);
  const grep = await call('grep_content', { pattern: '^ID=', path: '/etc/os-release' });
  assert.match(grep.structuredContent.stdout, /^ID=/);
  const none = await call('grep_content', { pattern: 'no such text here', path: '/etc/os-release' });
  assert.equal(none.isError, false);
  assert.equal(none.structuredContent.exit_code, 1);
  const df = await call('check_disk_usage', {});
  assert.equal(df.structuredContent.profile, 'diagnostics');  // the first profile that allows df
  assert.match(df.structuredContent.stdout, /Filesystem/);
  const free = await call('check_memory', { profile: 'tools' });
  assert.match(free.structuredContent.stdout, /Mem:/);
  const refused = await call('check_memory', { profile: 'minimal' });
  assert.equal(refused.isError, true);
  assert.match(refused.content[0].text, /'free' is not allowed by profile 'minimal'/);
  const missing = await call('read_file', { path: '/no/such/file', profile: 'tools' });
  assert.equal(missing.isError, true);
  assert.match(missing.content[0].text, /No such file/);
  const relative = await call('read_file', { path: 'etc/passwd' });
  assert.equal(relative.isError, true);
  assert.match(relative.content[0].text, /not absolute/);
  const unknown = await call('read_file', { path: '/etc/hostname', profile: 'nope' });
  assert.match(unknown.content[0].text, /profile: no profile named 'nope'/);
  assert.match((await call('read_file', {})).content[0].text, /read_file: path: required/);
  assert.match((await call('search_files', { path: '/etc' })).content[0].text, /pattern: required/);
  assert.match((await call('list_directory', { path: '/', long: 'yes' })).content[0].text, /long: must be true or false/);
  assert.match((await call('check_memory', { target: 'mars' })).content[0].text, /unknown argument 'target'/);
});

test('no stray output: every line on stdout was a protocol message', async () => {
  assert.deepEqual(server.errors, []);
});
