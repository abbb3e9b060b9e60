// Build a firmware image, then upgrade an emulated device with it: upload, test, reset, verify, confirm.
// Run: node --import tsx examples/upgrade.ts
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmpClient, upgradeImage, readImageState } from 'mcumgr';
import { buildImage } from 'mcumgr/image';
import { openUdpClient, createUdpServer } from 'mcumgr/transport/udp';
import { createEmulator } from 'mcumgr/server';

const udp = createUdpServer({ host: '127.0.0.1', port: 0 });
const device = await createEmulator({ dataDir: await mkdtemp(join(tmpdir(), 'mcumgr-')), transports: [udp], resetDelayMs: 50, bootTimeMs: 50 });
const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: udp.port }), { timeoutMs: 500, tries: 4 });

// An MCUboot image of 100 kB, version 2.1.0 (the emulator starts with 1.0.0).
const image = await buildImage({ payload: new Uint8Array(100_000).fill(0x5a), version: '2.1.0' });

const result = await upgradeImage(client, image.bytes, { onStage: (stage) => console.log(`- ${stage}`) });
console.log(`upgraded ${result.from?.version} -> ${result.to.version}, confirmed: ${result.confirmed}`);
for (const slot of await readImageState(client)) console.log(`slot ${slot.slot}: ${slot.version}${slot.active ? ' active' : ''}${slot.confirmed ? ' confirmed' : ''}`);

await client.close();
await device.close();
