// Attacks by exhaustion: a full /dev/shm (a 2 MiB tmpfs in a private mount namespace) when the
// new services make their segments. Each must fail with a typed ENOSPC, never SIGBUS, and
// leave no name behind; once there is room again they work.
import assert from "node:assert/strict";
import { canMountTmpfs, fixture, ipcTest, runInSmallShm } from "./helpers.ts";

ipcTest(
  "a full /dev/shm: SharedMap.create, Server.create and Client.connect fail with ENOSPC, leave " +
    "no name, and work once there is room",
  async () => {
    if (!canMountTmpfs()) {
      console.log("  skipped: needs root and unshare to mount a /dev/shm of its own");
      return;
    }
    const output = await runInSmallShm(fixture("attack_full_shm.ts"), "2M", {
      flags: ["--allow-all"],
    });
    assert.equal(output.code, 0, `exit ${output.code} (135: SIGBUS)\n${output.stderr}`);
    assert.deepEqual(output.stdout.trim().split("\n"), [
      "SharedMap.create full: IpcError ENOSPC",
      "Server.create full: IpcError ENOSPC",
      "Client.connect full: IpcError ENOSPC",
      "left: filler,svc",
      "after: 2",
      "after: map 1",
      "end: 0",
    ]);
  },
);
