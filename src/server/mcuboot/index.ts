/** The device-side MCUboot model (every mode, durable slots) and img_mgmt's slot logic. */
export { McubootModel, type McubootModelOptions, type BootReport, type ImageBootReport, type ImageSlotState, type NextBootType, type SlotInfoEntry, type UploadTarget } from './model.ts';
export { ImgErr, readImgMgmtInfo, type ImgInfo } from './img-info.ts';
export { SlotFile, nodeHashFactory, createErasedFile, ERASED_BYTE } from './slot-file.ts';
export { readSwapJournal, type SwapJournal, type SwapProgress, type CopyProgress } from './swap.ts';
export { MCUBOOT_MODE_NAMES, MCUBOOT_MODE_NUMBER, isMcubootModeName, isSwapMode, isEquivalentSlotMode, type McubootModeName } from './modes.ts';
