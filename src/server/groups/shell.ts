/**
 * Group 9, shell (smp-spec.md §3.6): runs argv through the device's shell registry
 * (src/server/shell.ts) and answers `{o, ret}`.
 *
 * Zephyr joins argv with single spaces into a line of at most CONFIG_SHELL_CMD_BUFF_SIZE bytes
 * (default 256, NUL included): a longer line answers err{9,2}, an empty argv err{9,3}. The
 * output is what the dummy shell backend captured, truncated to its buffer.
 */
import { commands } from '../../core/commands/index.ts';
import { Group, GROUP_NAMES } from '../../core/commands/command.ts';
import { ShellMgmtErr } from '../../core/error-codes.ts';
import { createDeviceServices, type DeviceServices } from '../device.ts';
import { MgmtError } from '../errors.ts';
import { defineGroup, handle, type MgmtGroup } from '../registry.ts';
import type { SmpServer } from '../server.ts';

/** CONFIG_SHELL_CMD_BUFF_SIZE. */
export const SHELL_CMD_BUFF_SIZE = 256;
/**
 * Output the shell keeps per command by default. Zephyr's shell group captures output in the
 * dummy backend's buffer (CONFIG_SHELL_BACKEND_DUMMY_BUF_SIZE, 300 bytes by default) and cuts the
 * rest; the emulator keeps up to one MCUmgr buffer so that listings such as `help` fit in an
 * answer (`serve --shell-output-max 300` gives Zephyr's). Nothing past it is ever held in memory.
 */
export const DEFAULT_SHELL_OUTPUT_MAX = 2048;
/** Room left for the response map's keys and the return code. */
const RESPONSE_OVERHEAD = 32;

export function createShellGroup(server: SmpServer, device: DeviceServices = createDeviceServices(server)): MgmtGroup {
  const { shell, options } = device;
  return defineGroup(Group.SHELL, GROUP_NAMES[Group.SHELL]!, [
    handle(commands.shell.exec, async ({ body, peer, signal }) => {
      if (body.argv.length === 0) throw MgmtError.group(Group.SHELL, ShellMgmtErr.EMPTY_COMMAND);
      const line = body.argv.join(' ');
      if (new TextEncoder().encode(line).length + 1 > SHELL_CMD_BUFF_SIZE) throw MgmtError.group(Group.SHELL, ShellMgmtErr.COMMAND_TOO_LONG);
      // Zephyr's shell splits the joined line again: quoting inside arguments is not preserved.
      const limit = Math.max(0, Math.min(server.bufSize, peer.mtu, options.shellOutputMax ?? DEFAULT_SHELL_OUTPUT_MAX) - 8 - RESPONSE_OVERHEAD);
      const { output, ret } = await shell.executeLine(line, { maxOutput: limit, ...(signal ? { signal } : {}) });
      return { o: truncateUtf8(output, limit), ret };
    }),
  ]);
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end));
}
