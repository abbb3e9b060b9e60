/**
 * A child process of the fleet benchmark (bench/fleet.ts): direct upgrades of the devices on the
 * given ports, `parallel` at once, from this one process, as a gateway process would run them.
 * Usage: node --import tsx bench/fleet-direct.ts IMAGE PARALLEL PORT...
 * Prints `ready`, starts on a line from stdin (so that two of them start together), then prints
 * `{"wall": s, "mean": s, "upgrades": n}`.
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { directUpgrades } from './fleet-upgrades.ts';

const [imagePath, parallelText, ...portTexts] = process.argv.slice(2);
const image = new Uint8Array(await readFile(imagePath!));
const ports = portTexts.map(Number);
const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();
const r = await directUpgrades(ports, image, Number(parallelText));
process.stdout.write(JSON.stringify({ ...r, upgrades: ports.length }) + '\n');
