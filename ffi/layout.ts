/**
 * Struct sizes and field offsets for Linux on x86_64 and aarch64 (glibc), both LP64.
 *
 * Each layout names where its figures come from. Where the two architectures differ, the
 * layout is chosen by `Deno.build.arch`.
 *
 * Internal: nothing outside `src/` imports this.
 *
 * @module
 */

/**
 * `struct statvfs` from glibc's bits/statvfs.h: eleven `unsigned long` fields (f_bsize,
 * f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail, f_fsid, f_flag,
 * f_namemax) followed by `int __f_spare[6]`. Identical on x86_64 and aarch64.
 */
export const statvfs = {
  size: 112,
  f_frsize: 8,
  f_blocks: 16,
  f_bavail: 32,
} as const;
