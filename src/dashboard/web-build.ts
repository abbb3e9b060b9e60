/**
 * Builds the dashboard's web app (web/) into dist/web with esbuild: one minified ES module
 * (app.js), its stylesheet (app.css) and index.html. Everything the page needs is in these files;
 * nothing is fetched at run time. `npm run build:web` runs this file; `mcumgr dashboard` runs it
 * in a checkout whose build is missing or stale (web-root.ts).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative as relativePath, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Esbuild from 'esbuild';
import { packageRoot } from './web-root.ts';

export interface WebBuildOptions {
  /** Default dist/web of the package. */
  outDir?: string;
  /** Default true. */
  minify?: boolean;
}

export interface WebBuildResult {
  outDir: string;
  /** Output files and their sizes in bytes. */
  files: Record<string, number>;
}

export async function buildWeb(options: WebBuildOptions = {}): Promise<WebBuildResult> {
  const root = packageRoot();
  const outDir = options.outDir ?? join(root, 'dist', 'web');
  let esbuild: typeof Esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new Error('building the web app needs the esbuild package (a development dependency): run npm install');
  }
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { app: join(root, 'web', 'src', 'main.tsx') },
    bundle: true,
    format: 'esm',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    minify: options.minify ?? true,
    sourcemap: false,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: outDir,
    absWorkingDir: root,
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const files: Record<string, number> = {};
  const relative = (file: string): string => relativePath(outDir, resolve(root, file)).split(sep).join('/');
  for (const [file, info] of Object.entries(result.metafile.outputs)) files[relative(file)] = info.bytes;
  // The chunks app.js imports statically load in parallel with it, not after it has been parsed
  // (one round trip and one parse less before the page starts): modulepreload links in index.html.
  const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint !== undefined && relative(o.entryPoint) === relative(join(root, 'web', 'src', 'main.tsx')));
  const preloads = (entry?.[1].imports ?? []).filter((i) => i.kind === 'import-statement' && !i.external).map((i) => `    <link rel="modulepreload" href="${relative(i.path)}" />`);
  const html = await readFile(join(root, 'web', 'index.html'), 'utf8');
  const marker = '    <script type="module" src="app.js"></script>';
  if (!html.includes(marker)) throw new Error(`web/index.html has no ${marker.trim()}`);
  await writeFile(join(outDir, 'index.html'), html.replace(marker, [...preloads, marker].join('\n')));
  return { outDir, files };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = await buildWeb();
  console.log(`web app built into ${r.outDir}: ${Object.entries(r.files).map(([f, n]) => `${f} ${(n / 1024).toFixed(1)} KiB`).join(', ')}`);
}
