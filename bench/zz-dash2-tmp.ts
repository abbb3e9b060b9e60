import { WebSocket as NodeWebSocket } from 'ws';
import { SmpClient } from '/work/wt/dashboard2/src/client/client.ts';
import { uploadImage } from '/work/wt/dashboard2/src/client/image-upload.ts';
import { commands } from '/work/wt/dashboard2/src/core/commands/index.ts';
import { buildImage } from '/work/wt/dashboard2/src/image/build.ts';
import { startDashboardServer } from '/work/wt/dashboard2/src/dashboard/server.ts';
import { ConntypeRegistry, udpConntype } from '/work/wt/dashboard2/src/cli/conntypes.ts';
import { openBridgeTransport, type WebSocketConstructor } from '/work/wt/dashboard2/src/transport/websocket.ts';
import { startServeProcess, tempDir } from '/work/wt/dashboard2/test/helpers.ts';
import { writeFile, mkdir } from 'node:fs/promises';
async function main() {
const conntypes = new ConntypeRegistry().register(udpConntype);
const data = await tempDir('dash2-x-');
const serve = await startServeProcess(['--data', data.path + '/dev']);
await mkdir(data.path + '/web'); await writeFile(data.path + '/web/index.html', 'x');
const image = (await buildImage({ payload: new Uint8Array(1024 * 1024 - 4096).map((_, i) => (i * 13) & 0xff), version: '2.0.0' })).bytes;
for (const pace of [true, false, true, false, true, false, true, false, true, false]) {
  const s = await startDashboardServer({ webRoot: data.path + '/web', port: 0, conntypes, pace, onPacerClosed: (_c, p) => console.log('  pacer', JSON.stringify(p.stats)) });
  const WS = class extends NodeWebSocket { constructor(u: string) { super(u, { origin: s.origin }); } } as unknown as WebSocketConstructor;
  const t = await openBridgeTransport({ url: `ws://127.0.0.1:${s.port}`, token: s.token, connection: `udp:127.0.0.1:${serve.port}`, WebSocket: WS });
  const c = new SmpClient(t, { timeoutMs: 3000, tries: 3 });
  await c.request(commands.image.erase, {});
  const u = await uploadImage(c, image);
  console.log(pace ? 'paced  ' : 'unpaced', (image.length / u.elapsedMs / 1000).toFixed(2), 'MB/s', 'retx', u.retransmissions, 'rewinds', u.rewinds, 'win', u.windowReached, 'srtt', u.srttMs?.toFixed(1), 'mean', u.meanRttMs?.toFixed(1));
  await c.close(); await new Promise((r) => setTimeout(r, 100)); await s.close();
}
await serve.stop(); await data.remove();

}
void main();
