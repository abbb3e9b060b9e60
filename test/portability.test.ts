/**
 * The portable layers run in a browser: bundling the package entry for the browser with esbuild,
 * with no Node polyfills, must succeed and pull in no Node built-in and no Buffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { ROOT } from './helpers.ts';

const portableEntries = ['src/index.ts', 'src/core/index.ts', 'src/client/index.ts', 'src/transport/loopback.ts', 'src/transport/ble/index.ts'];
for (const dir of ['src/framing', 'src/image']) {
  try {
    if (readdirSync(join(ROOT, dir)).includes('index.ts')) portableEntries.push(`${dir}/index.ts`);
  } catch {
    // layer not present yet
  }
}

test('portability: the browser bundle builds without Node built-ins or Buffer', async () => {
  for (const entry of portableEntries) {
    const result = await build({
      entryPoints: [join(ROOT, entry)],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      metafile: true,
    });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(!inputs.some((i) => i.startsWith('node:')), `${entry} pulls in a Node built-in`);
    const code = result.outputFiles[0]!.text;
    assert.ok(!/\bBuffer\.(from|alloc|concat|isBuffer)\b/.test(code), `${entry} uses Buffer`);
    assert.ok(!/\brequire\(["']node:/.test(code), `${entry} requires a Node built-in`);
  }
});

test('portability: a browser-style run of client and emulator-free loopback works', async () => {
  // The portable bundle exercised in-process: a loopback pair with a minimal device answering echo.
  const mod = await import('../src/index.ts');
  const { client: ct, server: st } = mod.createLoopbackPair();
  await st.start((packet, peer) => {
    const h = mod.decodeHeader(packet);
    const body = mod.decodeCbor(packet.subarray(8)) as { d: string };
    void peer.reply(mod.encodeMessage({ op: 3, version: h.version, flags: 0, group: 0, seq: h.seq, id: 0 }, { r: body.d }));
  });
  const client = new mod.SmpClient(ct);
  assert.deepEqual(await client.request(mod.commands.os.echo, { d: 'browser' }), { r: 'browser' });
  await client.close();
});
