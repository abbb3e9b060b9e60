/** The README's runnable examples run and print what the README says. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { ROOT } from './helpers.ts';

const run = promisify(execFile);

test('examples/quickstart.ts', async () => {
  const { stdout } = await run(process.execPath, ['--conditions=mcumgr:source', '--import', 'tsx', join(ROOT, 'examples', 'quickstart.ts')], { cwd: ROOT });
  assert.match(stdout, /^echo: hello\nparams: buf_size=2048 buf_count=4\ninfo: Zephyr .*\nerror: os: invalid format \(err 0\/2\) \[OS_MGMT_ERR_INVALID_FORMAT\]\n$/);
});

test('examples/custom-group.ts', async () => {
  const { stdout } = await run(process.execPath, ['--conditions=mcumgr:source', '--import', 'tsx', join(ROOT, 'examples', 'custom-group.ts')], { cwd: ROOT });
  assert.equal(stdout, '{ value: 60 }\n{ value: 120 }\naccess denied (rc 11)\n{ value: 120 }\n');
});

test('examples/netmgmt.ts', async () => {
  const { stdout } = await run(process.execPath, ['--conditions=mcumgr:source', '--import', 'tsx', join(ROOT, 'examples', 'netmgmt.ts')], { cwd: ROOT });
  assert.equal(stdout, 'NET_EVENT_IF_UP eth0\nNET_EVENT_IPV4_ADDR_ADD on eth0: {"addr":"192.0.2.1"}\ninterfaces: 1\n');
});

test('examples/upgrade.ts', async () => {
  const { stdout } = await run(process.execPath, ['--conditions=mcumgr:source', '--import', 'tsx', join(ROOT, 'examples', 'upgrade.ts')], { cwd: ROOT });
  assert.equal(stdout, '- inspect\n- upload\n- test\n- reset\n- wait\n- verify\n- confirm\n- done\nupgraded 1.0.0 -> 2.1.0, confirmed: true\nslot 0: 2.1.0 active confirmed\nslot 1: 1.0.0\n');
});

test('examples/agent.ts', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', 'agent.ts')], { cwd: ROOT });
  assert.equal(stdout, 'listening: udp | udp open: true\necho: hello\nnet iface shows lo: true\nhost echo: from the host\n');
});
