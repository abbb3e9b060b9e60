// The management agent as `mcumgr serve` runs it, from the library: UDP that closes while its
// address is gone (--close-on-disconnect), the host's network in the device shell, an allowed
// host program. Run: node --import tsx examples/agent.ts
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmpClient, commands } from 'mcumgr';
import { openUdpClient } from 'mcumgr/transport/udp';
import { createAgent } from 'mcumgr/server';

const agent = await createAgent({
  dataDir: await mkdtemp(join(tmpdir(), 'mcumgr-')),
  udp: { host: '127.0.0.1', port: 0 },
  closeOnDisconnect: true,
  device: { shellHostCommands: { allow: ['echo'] } },
  onStatus: (line) => console.error(`agent: ${line}`),
});
console.log('listening:', agent.listening().map((t) => t.kind).join(', '), '| udp open:', agent.udpSwitch?.open);

const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: agent.udp!.port }), { timeoutMs: 1000, tries: 3 });
console.log('echo:', (await client.request(commands.os.echo, { d: 'hello' })).r);
// The device shell: `net iface` lists the host's interfaces (loopback among them), `host echo` runs the host program.
const iface = await client.request(commands.shell.exec, { argv: ['net', 'iface'] });
console.log('net iface shows lo:', /\blo0?\b/.test(iface.o));
console.log('host echo:', (await client.request(commands.shell.exec, { argv: ['host', 'echo', 'from', 'the', 'host'] })).o.trim());

await client.close();
await agent.close();
