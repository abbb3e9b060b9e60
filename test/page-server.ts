/**
 * A test page for browser tests: an esbuild bundle of one entry (no Node built-ins) served at `/`
 * on a free loopback port, which is a secure context (as Web Bluetooth and Web Serial need).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';

export async function servePage(entry: string, title = 'test'): Promise<{ url: string; close(): Promise<void> }> {
  const bundle = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', target: 'es2022' });
  const js = bundle.outputFiles[0]!.text;
  const html = `<!doctype html><meta charset="utf-8"><title>${title}</title><script type="module" src="/page.js"></script>`;
  const server: Server = createServer((req, res) => {
    if (req.url === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    else if (req.url === '/' || req.url === '/index.html') res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
