/**
 * The layout check: every struct size and offset in ffi/layout.ts and every constant in
 * ffi/constants.ts, as ffi/ evaluates them for x86_64 and for aarch64, against what glibc's
 * real headers say on each, printed by tests/layout/probe.c built on the fly (natively, and
 * with aarch64-linux-gnu-gcc, run under qemu-aarch64). A missing compiler or qemu fails the
 * test with what to install; nothing is skipped.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Arch,
  differences,
  EXCLUDED,
  ffiFor,
  ffiRewrittenFor,
  probeItems,
  runProbe,
  TARGETS,
} from "./layout/probe.ts";

for (const arch of Object.keys(TARGETS) as Arch[]) {
  Deno.test(`ffi/ layouts and constants for ${arch} match glibc's headers on ${arch}`, async () => {
    const items = probeItems(await ffiFor(arch));
    const printed = await runProbe(arch, items);
    const wrong = differences(items, printed);
    assert.deepEqual(wrong, [], `ffi/ is wrong for ${arch}:\n  ${wrong.join("\n  ")}`);
    // The probe checks a few hundred values; far fewer means the enumeration broke.
    assert.ok(items.length > 200, `only ${items.length} values were probed`);
  });
}

Deno.test("the aarch64 probe tells aarch64 from x86_64: x86_64's values fail it", async () => {
  const items = probeItems(await ffiFor("x86_64"));
  const wrong = differences(items, await runProbe("aarch64", items));
  // struct semid_ds has no reserved words after its times on aarch64 (the generic header).
  assert.ok(wrong.some((line) => line.startsWith("semid_ds.sem_ctime:")), wrong.join("\n"));
});

Deno.test("ffi/ evaluated for another architecture by rewriting Deno.build.arch is faithful", async () => {
  const native = Deno.build.arch as Arch;
  assert.ok(native in TARGETS, `no target for ${native}`);
  const real = await ffiFor(native);
  const rewritten = await ffiRewrittenFor(native);
  assert.deepEqual({ ...rewritten.layout }, { ...real.layout });
  assert.deepEqual({ ...rewritten.constants }, { ...real.constants });
  // And the rewrite does change what depends on the architecture.
  const other = await ffiRewrittenFor(native === "x86_64" ? "aarch64" : "x86_64");
  assert.notDeepEqual({ ...other.constants }, { ...real.constants });
});

Deno.test("every export of ffi/constants.ts that the probe leaves out says why", async () => {
  const { constants } = await ffiFor(Deno.build.arch as Arch);
  const probed = new Set(probeItems({ layout: {}, constants }).map((item) => item.name));
  for (const [name, reason] of Object.entries(EXCLUDED)) {
    assert.ok(name in constants, `EXCLUDED lists ${name}, which ffi/constants.ts does not export`);
    assert.ok(reason.length > 10, `EXCLUDED gives no reason for ${name}`);
  }
  for (const name of Object.keys(constants)) {
    const covered = probed.has(name) || [...probed].some((item) => item.startsWith(`${name}.`));
    assert.ok(covered || name in EXCLUDED, `${name} is neither probed nor excluded`);
  }
});
