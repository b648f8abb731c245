import assert from "node:assert/strict";
import { assertSupportedPlatform, LIBC_PATH_ENV, libcPath } from "../ffi/libc.ts";
import { fixture, ipcTest, runDeno, uniqueName } from "./helpers.ts";

Deno.test("platforms other than Linux x86_64/aarch64 get NotSupported naming the platform", () => {
  assertSupportedPlatform("linux", "x86_64");
  assertSupportedPlatform("linux", "aarch64");
  for (const [os, arch] of [["darwin", "aarch64"], ["windows", "x86_64"], ["linux", "riscv64"]]) {
    assert.throws(
      () => assertSupportedPlatform(os, arch),
      (error: unknown) =>
        error instanceof Deno.errors.NotSupported && error.message.includes(`${os} ${arch}`),
    );
  }
});

Deno.test("importing the library needs no permission: libc opens on first use", async () => {
  const output = await runDeno(fixture("import_only.ts"), [], { flags: [] });
  assert.equal(output.code, 0, output.stderr);
  assert.match(output.stdout, /SharedMemory/);
});

Deno.test("POSIX_IPC_LIBC overrides the path of libc; without it, libc.so.6", () => {
  const before = Deno.env.get(LIBC_PATH_ENV);
  try {
    Deno.env.set(LIBC_PATH_ENV, "/opt/glibc/lib/libc.so.6");
    assert.equal(libcPath(), "/opt/glibc/lib/libc.so.6");
    Deno.env.delete(LIBC_PATH_ENV);
    assert.equal(libcPath(), "libc.so.6");
  } finally {
    if (before === undefined) Deno.env.delete(LIBC_PATH_ENV);
    else Deno.env.set(LIBC_PATH_ENV, before);
  }
});

ipcTest("a libc that cannot be loaded is a clear NotSupported error", async () => {
  const output = await runDeno(fixture("shm_peer.ts"), ["open", uniqueName("nolibc")], {
    flags: ["--allow-ffi", "--allow-env"],
    env: { [LIBC_PATH_ENV]: "/nonexistent/libc.so.6" },
  });
  assert.notEqual(output.code, 0);
  assert.match(
    output.stderr,
    /NotSupported: @posix\/ipc cannot load libc from "\/nonexistent\/libc.so.6": .*glibc 2.34 or newer.*POSIX_IPC_LIBC/,
  );
});
