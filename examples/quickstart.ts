// Start an emulated device and talk to it over UDP: the library and server APIs in one file.
// Run: node --import tsx examples/quickstart.ts
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmpClient, commands, DeviceError } from 'mcumgr';
import { openUdpClient, createUdpServer } from 'mcumgr/transport/udp';
import { createEmulator } from 'mcumgr/server';

// The device: an emulator on 127.0.0.1, any free port, state in a temp directory.
const udp = createUdpServer({ host: '127.0.0.1', port: 0 });
const device = await createEmulator({ dataDir: await mkdtemp(join(tmpdir(), 'mcumgr-')), transports: [udp] });

// The client: typed requests from the command table.
const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: udp.port }), { timeoutMs: 1000, tries: 3 });
const { r } = await client.request(commands.os.echo, { d: 'hello' });
console.log('echo:', r);
const { buf_size, buf_count } = await client.request(commands.os.params, {});
console.log(`params: buf_size=${buf_size} buf_count=${buf_count}`);
console.log('info:', (await client.request(commands.os.info, { format: 'a' })).output);

// Device errors arrive typed and named.
try {
  await client.request(commands.os.info, { format: 'q' });
} catch (e) {
  if (e instanceof DeviceError) console.log(`error: ${e.message} [${e.errorName}]`);
}

await client.close();
await device.close();
