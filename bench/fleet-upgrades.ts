/** Direct upgrades for the fleet benchmark (bench/fleet.ts, bench/fleet-direct.ts). */
import { SmpClient } from '../src/client/client.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { upgradeImage } from '../src/client/upgrade.ts';

/** Upgrades the devices on `ports` directly, `parallel` at once; the wall time and the mean time of one upgrade, in s. */
export async function directUpgrades(ports: readonly number[], image: Uint8Array, parallel: number): Promise<{ wall: number; mean: number }> {
  const queue = [...ports];
  let sum = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let port = queue.shift(); port !== undefined; port = queue.shift()) {
        const c = new SmpClient(await openUdpClient({ host: '127.0.0.1', port, mtu: 2048 }), { timeoutMs: 2000, tries: 5 });
        const t0 = performance.now();
        try {
          await upgradeImage(c, image);
        } finally {
          await c.close();
        }
        sum += performance.now() - t0;
      }
    }),
  );
  return { wall: (performance.now() - t) / 1000, mean: sum / ports.length / 1000 };
}
