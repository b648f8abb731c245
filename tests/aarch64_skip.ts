/**
 * Preloaded by `deno task test:aarch64` (tests/aarch64.ts) into `deno test`: registers each
 * test that {@linkcode SKIPS} names as ignored, so that `deno test` lists it as "ignored" in
 * its report, and runs everything else. (`deno test --filter` cannot exclude: its regular
 * expressions have no lookahead.)
 *
 * @module
 */

import { SKIPS } from "./aarch64.ts";

const skipped = new Set(SKIPS.map((skip) => skip.test));
const test = Deno.test;

function testUnlessSkipped(this: unknown, ...args: unknown[]): void {
  const [first] = args;
  const name = typeof first === "string" ? first : (first as { name?: string } | undefined)?.name; // a definition, or a named function
  const register = name !== undefined && skipped.has(name) ? test.ignore : test;
  (register as (...args: unknown[]) => void).apply(this, args);
}

// Deno.test is typed read-only but is a writable property.
(Deno as { test: typeof Deno.test }).test = Object.assign(testUnlessSkipped, test);
