// The CLI bundle (dist/cli): esbuild bundles src/cli/main.ts into one entry file plus a chunk per
// lazily loaded command family (faster to start than resolving each module file); dependencies
// stay external. Used by `npm run build` (scripts/build.mjs) and by the tests, which rebuild a
// stale CLI before spawning it (test/helpers.ts) instead of running the sources through tsx.
//
// Safe while CLI processes run and while another process rebuilds: the files are written by this
// script, chunks first (content-hashed names, so a running process still finds the chunks it
// loads lazily), the entry last and atomically (a temporary file renamed over it).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';

export async function buildCli(root) {
  const outdir = join(root, 'dist', 'cli');
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [join(root, 'src', 'cli', 'main.ts')],
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    sourcesContent: true,
    chunkNames: 'chunks/[name]-[hash]',
    logLevel: 'warning',
    write: false,
  });
  const entry = join(outdir, 'main.js');
  const files = [...result.outputFiles].sort((a, b) => Number(a.path === entry) - Number(b.path === entry));
  for (const f of files) {
    mkdirSync(dirname(f.path), { recursive: true });
    const tmp = `${f.path}.${process.pid}.tmp`;
    writeFileSync(tmp, f.contents);
    renameSync(tmp, f.path);
  }
}
