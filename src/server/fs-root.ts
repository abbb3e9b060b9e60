/**
 * The emulated device's file system as fs_mgmt (group 8) sees it: Zephyr paths such as
 * `/lfs/config.txt` mapped onto a directory under the data directory, with no way out.
 *
 * Mount points are the first path component (`/lfs` by default, like a LittleFS mount); each is a
 * directory `<dataDir>/fs/<mount>`. A path is refused as an invalid name (FS_MGMT_ERR_FILE_INVALID_NAME)
 * before anything touches the disk when it:
 * - does not start with `/`, or holds an empty component (`//`, trailing `/`), `.` or `..`,
 *   a NUL or a backslash;
 * - resolves (following symlinks on the host) to anything outside its mount directory.
 * A path on no mount point answers FILE_NOT_FOUND for reads and MOUNT_POINT_NOT_FOUND for writes,
 * as Zephyr's VFS does (-ENOENT from fs_open / fs_stat).
 */
import { lstat, mkdir, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';

export const FS_DEFAULT_MOUNTS = ['lfs'] as const;

export type ResolvedPath =
  | { ok: true; hostPath: string; mountDir: string; exists: boolean; isDirectory: boolean; size: number }
  | { ok: false; reason: 'invalid-name' | 'no-mount' };

export class FileSystemRoot {
  /** `<dataDir>/fs`: everything the file system holds lives below it. */
  readonly storageDir: string;
  readonly mounts: readonly string[];

  constructor(dataDir: string, mounts: readonly string[] = FS_DEFAULT_MOUNTS) {
    this.storageDir = join(dataDir, 'fs');
    this.mounts = mounts;
    for (const m of mounts) if (!/^[A-Za-z0-9_.-]+$/.test(m) || m === '.' || m === '..') throw new RangeError(`bad mount point name ${JSON.stringify(m)}`);
  }

  mountDir(mount: string): string {
    return join(this.storageDir, mount);
  }

  /** Creates the mount directories (at boot, and after an erase). */
  async ensureMounts(): Promise<void> {
    for (const m of this.mounts) await mkdir(this.mountDir(m), { recursive: true });
  }

  /** Checks a device path and maps it to a host path inside its mount directory. */
  async resolve(name: string): Promise<ResolvedPath> {
    if (!name.startsWith('/') || name.includes('\0') || name.includes('\\')) return { ok: false, reason: 'invalid-name' };
    const parts = name.slice(1).split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..')) return { ok: false, reason: 'invalid-name' };
    const mount = parts[0]!;
    if (!this.mounts.includes(mount)) return { ok: false, reason: 'no-mount' };
    const mountDir = this.mountDir(mount);
    let realMount: string;
    try {
      realMount = await realpath(mountDir);
    } catch {
      return { ok: false, reason: 'no-mount' };
    }
    const hostPath = join(mountDir, ...parts.slice(1));
    // Follow the path through the host's symlinks: the deepest existing ancestor (or the
    // path itself) must resolve inside the mount.
    let probe = hostPath;
    let exists = false;
    for (;;) {
      try {
        await lstat(probe);
        break;
      } catch {
        const parent = probe.slice(0, probe.lastIndexOf(sep));
        if (parent.length < mountDir.length) break;
        probe = parent;
      }
    }
    let real: string;
    try {
      real = await realpath(probe);
    } catch {
      return { ok: false, reason: 'invalid-name' }; // a dangling symlink
    }
    if (real !== realMount && !real.startsWith(realMount + sep)) return { ok: false, reason: 'invalid-name' };
    if (probe !== hostPath && probe !== mountDir) {
      // An existing ancestor that is a file: the path cannot exist below it.
      const st = await stat(probe).catch(() => undefined);
      if (st && !st.isDirectory()) return { ok: true, hostPath, mountDir, exists: false, isDirectory: false, size: 0 };
    }
    if (probe === hostPath) {
      exists = true;
      const st = await stat(hostPath);
      return { ok: true, hostPath, mountDir, exists, isDirectory: st.isDirectory(), size: st.size };
    }
    return { ok: true, hostPath, mountDir, exists: false, isDirectory: false, size: 0 };
  }
}
