// `npm run build`: ESM JavaScript, declarations and source maps of the library (src/ but the CLI)
// into dist/ (tsc with tsconfig.build.json, which rewrites `./x.ts` imports to `./x.js` in the
// JavaScript). tsc leaves the `.ts` specifiers in the declarations, which a NodeNext consumer
// rejects (TS5097): they are rewritten here the same way. The CLI (src/cli) is bundled by esbuild
// into dist/cli/ (scripts/build-cli.mjs).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, URL } from 'node:url';
import process from 'node:process';
import { buildCli } from './build-cli.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

const relativeTs = /((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*?)\.ts(['"])/g;
function rewrite(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) rewrite(path);
    else if (entry.name.endsWith('.d.ts')) {
      const text = readFileSync(path, 'utf8');
      const out = text.replace(relativeTs, '$1$2.js$3');
      if (out !== text) writeFileSync(path, out);
    }
  }
}
rewrite(dist);

await buildCli(root);
