/**
 * West / nRF Connect SDK DFU packages (`dfu_application.zip`), read and written in memory with
 * fflate (portable: runs in browsers).
 *
 * Layout, as nRF Connect SDK's scripts/bootloader/generate_zip.py writes it (read 2026-07): the
 * signed image files (e.g. `zephyr.signed.bin` / `app_update.bin`, `net_core_app_update.bin`) and a
 * `manifest.json`:
 * ```json
 * { "format-version": 0, "time": 1700000000, "name": "...",
 *   "files": [ { "type": "application", "board": "...", "soc": "...", "load_address": 65536,
 *                "image_index": "0", "slot_index_primary": "1", "slot_index_secondary": "2",
 *                "version_MCUBOOT": "1.2.3+0", "size": 123456, "file": "app_update.bin", "modtime": 0 } ] }
 * ```
 * The per-file keys come from `key=value` build parameters, so values are strings unless they were
 * written as `0x...` (then numbers): `image_index` is usually the string `"0"`, `load_address` a
 * number. `image_index` names the MCUboot image number the file is uploaded to (0 application
 * core, 1 network core on nRF5340).
 */
import { strFromU8, strToU8, unzipSync, zipSync } from 'fflate';
import { ImageFormatError } from './errors.ts';

/** One image of a package. */
export interface DfuPackageImage {
  /** MCUboot image number (`image_index`). */
  image: number;
  /** File name in the zip. */
  file: string;
  bytes: Uint8Array;
  /** Further manifest fields as written (type, board, soc, load_address, version_MCUBOOT, ...). */
  info: Readonly<Record<string, unknown>>;
}

export interface DfuPackage {
  formatVersion: number;
  name: string | undefined;
  images: DfuPackageImage[];
}

/** Largest total uncompressed size accepted (a zip bomb is refused, not inflated). */
export const DFU_PACKAGE_MAX_BYTES = 64 * 1024 * 1024;

/** True when the bytes start like a zip archive (`PK\x03\x04`). */
export function isZipArchive(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

const bad = (message: string, cause?: unknown): ImageFormatError => new ImageFormatError('BAD_PACKAGE', message, undefined, cause === undefined ? undefined : { cause });

function intField(entry: Record<string, unknown>, key: string): number | undefined {
  const v = entry[key];
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(v.trim()) ? Number(v.trim()) : undefined;
  return n !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * Reads a DFU package. Throws {@link ImageFormatError} `BAD_PACKAGE` for anything unusable: not a
 * zip, too large, no or malformed `manifest.json`, a listed file missing, an `image_index` that is
 * not a number, or two files for one image.
 */
export function readDfuPackage(zip: Uint8Array): DfuPackage {
  if (!isZipArchive(zip)) throw bad('not a zip archive (a DFU package is dfu_application.zip)');
  let total = 0;
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(zip, {
      filter: (f) => {
        total += f.originalSize;
        if (total > DFU_PACKAGE_MAX_BYTES) throw bad(`the package unpacks to more than ${DFU_PACKAGE_MAX_BYTES} bytes`);
        return true;
      },
    });
  } catch (e) {
    if (e instanceof ImageFormatError) throw e;
    throw bad(`the zip archive is damaged: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  const manifestBytes = files['manifest.json'];
  if (!manifestBytes) throw bad('the package has no manifest.json');
  let manifest: unknown;
  try {
    manifest = JSON.parse(strFromU8(manifestBytes));
  } catch (e) {
    throw bad('manifest.json is not valid JSON', e);
  }
  if (typeof manifest !== 'object' || manifest === null || !Array.isArray((manifest as Record<string, unknown>)['files'])) {
    throw bad('manifest.json has no "files" list');
  }
  const m = manifest as Record<string, unknown>;
  const images: DfuPackageImage[] = [];
  for (const raw of m['files'] as unknown[]) {
    if (typeof raw !== 'object' || raw === null) throw bad('manifest.json: a "files" entry is not an object');
    const entry = raw as Record<string, unknown>;
    const file = entry['file'];
    if (typeof file !== 'string' || file === '') throw bad('manifest.json: a "files" entry has no "file" name');
    const bytes = Object.hasOwn(files, file) ? files[file] : undefined;
    if (!bytes) throw bad(`manifest.json names ${JSON.stringify(file)}, which is not in the package`);
    const image = entry['image_index'] === undefined ? 0 : intField(entry, 'image_index');
    if (image === undefined || image > 15) throw bad(`manifest.json: ${file} has image_index ${JSON.stringify(entry['image_index'])}, not an image number`);
    if (images.some((i) => i.image === image)) throw bad(`manifest.json lists two files for image ${image}`);
    const info: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(entry)) if (k !== 'file' && k !== 'image_index') info[k] = v;
    images.push({ image, file, bytes, info });
  }
  if (images.length === 0) throw bad('manifest.json lists no files');
  images.sort((a, b) => a.image - b.image);
  const formatVersion = intField(m, 'format-version') ?? 0;
  return { formatVersion, name: typeof m['name'] === 'string' ? m['name'] : undefined, images };
}

/** One image to put in a package ({@link buildDfuPackage}). */
export interface DfuPackageInput {
  image: number;
  file: string;
  bytes: Uint8Array;
  /** Further manifest fields (board, soc, load_address, version_MCUBOOT, ...). */
  info?: Record<string, unknown>;
}

/**
 * Writes a DFU package laid out as generate_zip.py does (manifest first-level keys
 * `format-version`, `time`, `name`, `files`; per file `image_index`, `slot_index_primary` and
 * `slot_index_secondary` as strings, `size`, `file`, `modtime`).
 */
export function buildDfuPackage(inputs: readonly DfuPackageInput[], options: { name?: string; time?: number } = {}): Uint8Array {
  const time = options.time ?? Math.floor(Date.now() / 1000);
  const manifest = {
    'format-version': 0,
    time,
    ...(options.name !== undefined ? { name: options.name } : {}),
    files: inputs.map((i) => ({
      type: 'application',
      image_index: String(i.image),
      slot_index_primary: String(2 * i.image + 1),
      slot_index_secondary: String(2 * i.image + 2),
      ...i.info,
      size: i.bytes.length,
      file: i.file,
      modtime: time,
    })),
  };
  const entries: Record<string, Uint8Array> = {};
  for (const i of inputs) entries[i.file] = i.bytes;
  entries['manifest.json'] = strToU8(JSON.stringify(manifest, null, 4));
  return zipSync(entries);
}
