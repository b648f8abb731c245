/**
 * The members the property groups cover, from each group's `covers` list (which the group's
 * run checks against its properties). Importing the groups builds no property.
 *
 * @module
 */

import type { PropertyGroup } from "./harness.ts";

/** The group files of tests/property, one per module. */
export const GROUP_FILES: readonly string[] = [
  "core",
  "signal",
  "shm",
  "mmap",
  "pipe",
  "spawn",
  "semaphore",
  "mqueue",
  "sysv",
  "sync",
  "channel",
  "map",
  "service",
  "topic",
  "select",
  "unix",
  "cli",
  "ownership",
];

/** Every member some property covers. */
export const COVERED: ReadonlySet<string> = new Set(
  (await Promise.all(
    GROUP_FILES.map(async (name) => {
      try {
        const module: { group: PropertyGroup } = await import(`./${name}.ts`);
        return module.group.covers;
      } catch (error) {
        if (error instanceof TypeError && /Module not found/.test(error.message)) return [];
        throw error;
      }
    }),
  )).flat(),
);
