// A user-defined management group (id 64) on the device, a hook that guards it, and the client
// calling it with requestRaw. Run: node --import tsx examples/custom-group.ts
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmpClient, createLoopbackPair, deviceErrorOf } from 'mcumgr';
import { createEmulator, MgmtError } from 'mcumgr/server';

const { client: link, server: serverLink } = createLoopbackPair();
const device = await createEmulator({ dataDir: await mkdtemp(join(tmpdir(), 'mcumgr-')), transports: [serverLink] });

// Group 64, command 0: read returns a counter, write adds to it.
let counter = 0;
device.registerGroup({
  id: 64,
  name: 'counter mgmt',
  handlers: [
    {
      read: { fn: () => ({ value: counter }) },
      write: {
        fn: ({ body }) => {
          const add = (body as { add?: unknown }).add;
          if (typeof add !== 'number') throw MgmtError.rc(3, 'add must be a number');
          counter += add;
          return { value: counter };
        },
      },
    },
  ],
});
// Deny writes above 100 before the handler runs (Zephyr's command-received hook).
device.hooks.on('cmd_recv', ({ group, op }) => (group === 64 && op === 2 && counter >= 100 ? { rc: 11 } : undefined));

const client = new SmpClient(link);
console.log((await client.requestRaw(64, 0, 'write', { add: 60 })).body);
console.log((await client.requestRaw(64, 0, 'write', { add: 60 })).body);
const denied = await client.requestRaw(64, 0, 'write', { add: 1 });
console.log(deviceErrorOf(denied.body)?.message);
console.log((await client.requestRaw(64, 0, 'read', {})).body);
await client.close();
await device.close();
