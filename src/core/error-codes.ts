/**
 * Every error number SMP defines, with names, messages and (for group errors) the legacy v1 `rc`
 * a v1 request receives instead. Source: Zephyr's `mgmt_defines.h` and each group's header
 * (smp-spec.md §2.4–2.5).
 */

/** `enum mcumgr_err_t`: SMP-level `rc` values. */
export const MgmtErr = {
  EOK: 0,
  EUNKNOWN: 1,
  ENOMEM: 2,
  EINVAL: 3,
  ETIMEOUT: 4,
  ENOENT: 5,
  EBADSTATE: 6,
  EMSGSIZE: 7,
  ENOTSUP: 8,
  ECORRUPT: 9,
  EBUSY: 10,
  EACCESSDENIED: 11,
  UNSUPPORTED_TOO_OLD: 12,
  UNSUPPORTED_TOO_NEW: 13,
  EPERUSER: 256,
} as const;
export type MgmtErrCode = (typeof MgmtErr)[keyof typeof MgmtErr];

const MGMT_ERR_MESSAGES: Record<number, [string, string]> = {
  0: ['MGMT_ERR_EOK', 'no error'],
  1: ['MGMT_ERR_EUNKNOWN', 'unknown error'],
  2: ['MGMT_ERR_ENOMEM', 'insufficient memory'],
  3: ['MGMT_ERR_EINVAL', 'invalid value in request'],
  4: ['MGMT_ERR_ETIMEOUT', 'operation timed out'],
  5: ['MGMT_ERR_ENOENT', 'no such file or entry'],
  6: ['MGMT_ERR_EBADSTATE', 'current state disallows the command'],
  7: ['MGMT_ERR_EMSGSIZE', 'response too large'],
  8: ['MGMT_ERR_ENOTSUP', 'command not supported'],
  9: ['MGMT_ERR_ECORRUPT', 'corrupt request'],
  10: ['MGMT_ERR_EBUSY', 'busy with another command'],
  11: ['MGMT_ERR_EACCESSDENIED', 'access denied'],
  12: ['MGMT_ERR_UNSUPPORTED_TOO_OLD', 'SMP protocol version too old for the device'],
  13: ['MGMT_ERR_UNSUPPORTED_TOO_NEW', 'SMP protocol version too new for the device'],
};

/** One group's error codes: rc → [NAME suffix, message, legacy v1 rc]. */
type ErrorCodes = Readonly<Record<number, readonly [string, string, number]>>;

/** One group's error enum, declared `as const` so that its names are types. */
interface GroupErrorTable<C extends ErrorCodes = ErrorCodes> {
  readonly group: number;
  readonly groupName: string;
  readonly prefix: string;
  readonly codes: C;
}

const OS = {
  group: 0, groupName: 'os', prefix: 'OS_MGMT_ERR_',
  codes: {
    1: ['UNKNOWN', 'unknown error', 1],
    2: ['INVALID_FORMAT', 'invalid format', 3],
    3: ['QUERY_YIELDS_NO_ANSWER', 'query yields no answer', 5],
    4: ['RTC_NOT_SET', 'RTC not set', 5],
    5: ['RTC_COMMAND_FAILED', 'RTC command failed', 1],
    6: ['QUERY_RESPONSE_VALUE_NOT_VALID', 'query response value not valid', 1],
    7: ['HEAP_STATS_FETCH_FAILED', 'heap statistics fetch failed', 1],
  },
} as const satisfies GroupErrorTable;

const IMG = {
  group: 1, groupName: 'image', prefix: 'IMG_MGMT_ERR_',
  codes: {
    1: ['UNKNOWN', 'unknown error', 1],
    2: ['FLASH_CONFIG_QUERY_FAIL', 'flash configuration query failed', 1],
    3: ['NO_IMAGE', 'no image', 5],
    4: ['NO_TLVS', 'no TLVs in image', 5],
    5: ['INVALID_TLV', 'invalid TLV', 1],
    6: ['TLV_MULTIPLE_HASHES_FOUND', 'multiple hash TLVs found', 1],
    7: ['TLV_INVALID_SIZE', 'invalid TLV size', 1],
    8: ['HASH_NOT_FOUND', 'hash not found', 1],
    9: ['NO_FREE_SLOT', 'no free slot', 6],
    10: ['FLASH_OPEN_FAILED', 'flash open failed', 1],
    11: ['FLASH_READ_FAILED', 'flash read failed', 1],
    12: ['FLASH_WRITE_FAILED', 'flash write failed', 1],
    13: ['FLASH_ERASE_FAILED', 'flash erase failed', 1],
    14: ['INVALID_SLOT', 'invalid slot', 3],
    15: ['NO_FREE_MEMORY', 'no free memory', 2],
    16: ['FLASH_CONTEXT_ALREADY_SET', 'flash context already set', 1],
    17: ['FLASH_CONTEXT_NOT_SET', 'flash context not set', 1],
    18: ['FLASH_AREA_DEVICE_NULL', 'flash area device is null', 1],
    19: ['INVALID_PAGE_OFFSET', 'invalid page offset', 3],
    20: ['INVALID_OFFSET', 'invalid or missing offset', 3],
    21: ['INVALID_LENGTH', 'invalid or missing length', 3],
    22: ['INVALID_IMAGE_HEADER', 'invalid image header', 3],
    23: ['INVALID_IMAGE_HEADER_MAGIC', 'invalid image header magic', 1],
    24: ['INVALID_HASH', 'invalid hash', 3],
    25: ['INVALID_FLASH_ADDRESS', 'invalid flash address', 3],
    26: ['VERSION_GET_FAILED', 'could not read the running version', 1],
    27: ['CURRENT_VERSION_IS_NEWER', 'running version is newer (downgrade refused)', 6],
    28: ['IMAGE_ALREADY_PENDING', 'an image is already pending', 6],
    29: ['INVALID_IMAGE_VECTOR_TABLE', 'invalid image vector table', 1],
    30: ['INVALID_IMAGE_TOO_LARGE', 'image too large for the slot', 1],
    31: ['INVALID_IMAGE_DATA_OVERRUN', 'image data overrun', 1],
    32: ['IMAGE_CONFIRMATION_DENIED', 'image confirmation denied', 1],
    33: ['IMAGE_SETTING_TEST_TO_ACTIVE_DENIED', 'cannot mark the active image for test', 1],
    34: ['ACTIVE_SLOT_NOT_KNOWN', 'active slot not known', 1],
  },
} as const satisfies GroupErrorTable;

const STAT = {
  group: 2, groupName: 'stat', prefix: 'STAT_MGMT_ERR_',
  codes: {
    1: ['UNKNOWN', 'unknown error', 1],
    2: ['INVALID_GROUP', 'no such statistics group', 5],
    3: ['INVALID_STAT_NAME', 'invalid statistic name', 5],
    4: ['INVALID_STAT_SIZE', 'invalid statistic size', 3],
    5: ['WALK_ABORTED', 'statistics walk aborted', 1],
  },
} as const satisfies GroupErrorTable;

const SETTINGS = {
  group: 3, groupName: 'settings', prefix: 'SETTINGS_MGMT_ERR_',
  codes: {
    1: ['UNKNOWN', 'unknown error', 1],
    2: ['KEY_TOO_LONG', 'key too long', 3],
    3: ['KEY_NOT_FOUND', 'key not found', 5],
    4: ['READ_NOT_SUPPORTED', 'read not supported', 5],
    5: ['ROOT_KEY_NOT_FOUND', 'root key not found', 1],
    6: ['WRITE_NOT_SUPPORTED', 'write not supported', 1],
    7: ['DELETE_NOT_SUPPORTED', 'delete not supported', 1],
    8: ['SAVE_NOT_SUPPORTED', 'save not supported', 1],
  },
} as const satisfies GroupErrorTable;

const FS = {
  group: 8, groupName: 'fs', prefix: 'FS_MGMT_ERR_',
  codes: {
    1: ['UNKNOWN', 'unknown error', 1],
    2: ['FILE_INVALID_NAME', 'invalid file name', 3],
    3: ['FILE_NOT_FOUND', 'file not found', 5],
    4: ['FILE_IS_DIRECTORY', 'file is a directory', 1],
    5: ['FILE_OPEN_FAILED', 'file open failed', 1],
    6: ['FILE_SEEK_FAILED', 'file seek failed', 1],
    7: ['FILE_READ_FAILED', 'file read failed', 1],
    8: ['FILE_TRUNCATE_FAILED', 'file truncate failed', 1],
    9: ['FILE_DELETE_FAILED', 'file delete failed', 1],
    10: ['FILE_WRITE_FAILED', 'file write failed', 1],
    11: ['FILE_OFFSET_NOT_VALID', 'file offset not valid', 1],
    12: ['FILE_OFFSET_LARGER_THAN_FILE', 'offset larger than file', 1],
    13: ['CHECKSUM_HASH_NOT_FOUND', 'checksum or hash type not supported', 3],
    14: ['MOUNT_POINT_NOT_FOUND', 'mount point not found', 5],
    15: ['READ_ONLY_FILESYSTEM', 'read-only file system', 1],
    16: ['FILE_EMPTY', 'file is empty', 1],
    17: ['FILE_CLOSE_FAILED', 'file close failed', 1],
  },
} as const satisfies GroupErrorTable;

const SHELL = {
  group: 9, groupName: 'shell', prefix: 'SHELL_MGMT_ERR_',
  codes: {
    1: ['UNKNOWN', 'unknown error', 1],
    2: ['COMMAND_TOO_LONG', 'command too long', 3],
    3: ['EMPTY_COMMAND', 'empty command', 3],
  },
} as const satisfies GroupErrorTable;

const ENUM = {
  group: 10, groupName: 'enum', prefix: 'ENUM_MGMT_ERR_',
  codes: {
    1: ['UNKNOWN', 'unknown error', 1],
    2: ['TOO_MANY_GROUP_ENTRIES', 'too many group entries', 3],
    3: ['INSUFFICIENT_HEAP_FOR_ENTRIES', 'insufficient heap for entries', 1],
    4: ['INDEX_TOO_LARGE', 'index too large', 1],
  },
} as const satisfies GroupErrorTable;

const TRANSPORT = {
  group: 11, groupName: 'transport', prefix: 'TRANSPORT_MGMT_ERR_',
  codes: {
    1: ['UNKNOWN', 'unknown error', 1],
    2: ['TRANSPORT_MISSING_REQUIRED_FUNCTIONS', 'transport lacks required functions', 1],
    3: ['TRANSPORT_MISSING_INFO_FUNCTIONS', 'transport lacks info functions', 1],
    4: ['INVALID_TRANSPORT', 'invalid transport', 1],
    5: ['INVALID_MODE', 'invalid mode', 1],
    6: ['ALL_CONTEXTS_USED', 'all contexts in use', 1],
    7: ['BOTH_TRANSPORT_AND_ALL_PARAMETERS', 'both transport and all given', 1],
    8: ['NOT_BRIDGED', 'not bridged', 1],
    9: ['SAME_BRIDGE_DEVICE_DISALLOWED', 'cannot bridge a device to itself', 1],
    10: ['TRANSPORT_INGOING_NOT_SUPPORTED', 'incoming not supported', 1],
    11: ['TRANSPORT_OUTGOING_NOT_SUPPORTED', 'outgoing not supported', 1],
    12: ['TRANSPORT_INCOMING_TRANSPORT_ALREADY_BRIDGED', 'incoming transport already bridged', 1],
    13: ['TRANSPORT_OUTGOING_TRANSPORT_ALREADY_BRIDGED', 'outgoing transport already bridged', 1],
    14: ['CONNECT_MISSING_PARAMETER', 'missing connect parameter', 1],
    15: ['CONNECT_INVALID_PARAMETER', 'invalid connect parameter', 1],
    16: ['CONNECT_UNSUPPORTED_PARAMETER', 'unsupported connect parameter', 1],
    17: ['CONNECT_FAILED', 'connect failed', 1],
  },
} as const satisfies GroupErrorTable;

const BASIC = {
  group: 63, groupName: 'zephyr-basic', prefix: 'ZEPHYRBASIC_MGMT_ERR_',
  codes: {
    1: ['UNKNOWN', 'unknown error', 1],
    2: ['FLASH_OPEN_FAILED', 'storage open failed', 5],
    // Zephyr's translator maps these two to rc 0 (a bug, smp-spec.md §8.4); we keep it faithful.
    3: ['FLASH_CONFIG_QUERY_FAIL', 'storage configuration query failed', 0],
    4: ['FLASH_ERASE_FAILED', 'storage erase failed', 0],
  },
} as const satisfies GroupErrorTable;

const GROUP_TABLES: ReadonlyMap<number, GroupErrorTable> = new Map(
  ([OS, IMG, STAT, SETTINGS, FS, SHELL, ENUM, TRANSPORT, BASIC] as GroupErrorTable[]).map((t) => [t.group, t]),
);

/** `{NAME: rc}` of a table, typed: `ImgMgmtErr.NO_FREE_SLOT` is `9`, and a misspelt name does not compile. */
export type ErrorEnum<C extends ErrorCodes> = { readonly OK: 0 } & {
  readonly [K in keyof C as C[K] extends readonly [infer Name extends string, string, number] ? Name : never]: K;
};

/** Group error enums as `{NAME: rc}` objects, for code that raises them. */
function enumOf<C extends ErrorCodes>(t: GroupErrorTable<C>): ErrorEnum<C> {
  const out: Record<string, number> = { OK: 0 };
  for (const [rc, [name]] of Object.entries(t.codes)) out[name] = Number(rc);
  return Object.freeze(out) as ErrorEnum<C>;
}
export const OsMgmtErr = enumOf(OS);
export const ImgMgmtErr = enumOf(IMG);
export const StatMgmtErr = enumOf(STAT);
export const SettingsMgmtErr = enumOf(SETTINGS);
export const FsMgmtErr = enumOf(FS);
export const ShellMgmtErr = enumOf(SHELL);
export const EnumMgmtErr = enumOf(ENUM);
export const TransportMgmtErr = enumOf(TRANSPORT);
export const BasicMgmtErr = enumOf(BASIC);

export interface DeviceErrorInfo {
  /** Symbolic name, e.g. `MGMT_ERR_ENOTSUP` or `IMG_MGMT_ERR_HASH_NOT_FOUND`. */
  name: string;
  message: string;
  /** Short group name for group errors (`image`), empty for SMP-level errors. */
  groupName: string;
}

/** Name and message for an SMP-level rc (group undefined) or a v2 group error. */
export function describeDeviceError(rc: number, group?: number): DeviceErrorInfo {
  if (group === undefined) {
    const known = MGMT_ERR_MESSAGES[rc];
    if (known) return { name: known[0], message: known[1], groupName: '' };
    if (rc >= MgmtErr.EPERUSER) return { name: `MGMT_ERR_EPERUSER+${rc - MgmtErr.EPERUSER}`, message: 'application-defined error', groupName: '' };
    return { name: `MGMT_ERR_${rc}`, message: 'unknown error code', groupName: '' };
  }
  const table = GROUP_TABLES.get(group);
  const entry = table?.codes[rc];
  if (table && entry) return { name: table.prefix + entry[0], message: entry[1], groupName: table.groupName };
  return {
    name: `GROUP_${group}_ERR_${rc}`,
    message: group >= 64 ? 'application group error' : 'unknown error code',
    groupName: table?.groupName ?? `group ${group}`,
  };
}

/**
 * The legacy `rc` a v1 request receives for a group error (Zephyr's per-group translate
 * functions). Groups without a translator answer EUNKNOWN.
 */
export function translateToV1(group: number, rc: number): number {
  const entry = GROUP_TABLES.get(group)?.codes[rc];
  return entry ? entry[2] : MgmtErr.EUNKNOWN;
}

/** Short names of the groups, as used in messages and the CLI. */
export function groupNameOf(group: number): string {
  return GROUP_TABLES.get(group)?.groupName ?? (group === 10 ? 'enum' : `group ${group}`);
}
