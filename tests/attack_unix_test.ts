// Attacks on UnixSocket and UnixListener: descriptors that change under a send that waits, a
// socket file replaced between bind and chmod.
import assert from "node:assert/strict";
import { isSystemError, SharedMemory } from "../mod.ts";
import { socketpair, UnixListener } from "../src/unix/mod.ts";
import { chmodBoundSocket } from "../src/unix/_socket_file.ts";
import { statLink } from "../src/_stat.ts";
import { ipcTest, TEST_PREFIX } from "./helpers.ts";

/** Sends until the socket's buffer is full; returns how many bytes went. */
function fill(socket: { sendSync(data: Uint8Array, options: { timeout: number }): number }) {
  const chunk = new Uint8Array(1 << 16);
  let total = 0;
  while (true) {
    try {
      total += socket.sendSync(chunk, { timeout: 0 });
    } catch (error) {
      if (error instanceof Deno.errors.TimedOut) return total;
      throw error;
    }
  }
}

ipcTest(
  "a descriptor closed while its send waits for room is BadResource, never the file that " +
    "took its number",
  async () => {
    using pair = socketpair();
    const queued = fill(pair[0]);
    const intended = SharedMemory.anonymous({ size: 8192 });
    const number = intended.fd;
    const sending = pair[0].send("x", { fds: [intended], timeout: 10_000 });
    intended.close();
    using bystander = SharedMemory.anonymous({ size: 12288 });
    assert.equal(bystander.fd, number, "the number is open again, for another segment");
    // Drain what filled the buffer, and what the send then sent.
    let drained = 0;
    const sizes: number[] = [];
    const outcome = sending.then(() => "sent", (error) => error);
    while (drained < queued) {
      using message = (await pair[1].receive({ maxBytes: 1 << 16, maxFds: 1, timeout: 10_000 }))!;
      drained += message.bytes.length;
      for (const fd of message.takeFds()) {
        using memory = SharedMemory.fromFd(fd);
        sizes.push(memory.size);
      }
    }
    const result = await outcome;
    for (let m; (m = pair[1].tryReceive({ maxFds: 1 })) !== undefined && m !== null;) {
      using message = m;
      for (const fd of message.takeFds()) {
        using memory = SharedMemory.fromFd(fd);
        sizes.push(memory.size);
      }
    }
    // Before: the peer got the bystander (12288 bytes), a file the caller never meant to send.
    assert.deepEqual(sizes, [], "no descriptor went to the peer");
    assert.ok(result instanceof Deno.errors.BadResource, String(result));
  },
);

ipcTest(
  "a listener's socket file replaced by a symlink before its mode is set: the symlink's " +
    "target keeps its mode, and the change fails with NotFound",
  () => {
    const dir = Deno.makeTempDirSync({ prefix: `${TEST_PREFIX}-` });
    const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
    try {
      const path = `${dir}/server.sock`;
      const victim = `${dir}/victim.txt`; // a file of the listener's user, that the attacker names
      Deno.writeTextFileSync(victim, "private", { mode: 0o600 });
      Deno.chmodSync(victim, 0o600);
      const operation = { action: "listen at", objectName: path };
      const listener = UnixListener.listen(path); // bound, and its mode set, as before the swap
      const bound = statLink(path, operation).identity;
      const before = fds();

      // Not replaced: the mode changes, through the held descriptor.
      chmodBoundSocket(path, bound, 0o640, operation);
      assert.equal(Deno.lstatSync(path).mode! & 0o777, 0o640);
      assert.equal(fds(), before, "the O_PATH descriptor is closed");

      // Another process swaps the socket file for a symlink to the victim, as it may between
      // bind and chmod (rename is atomic: the path never names nothing).
      Deno.symlinkSync(victim, `${path}.swap`);
      Deno.renameSync(`${path}.swap`, path);
      let error: unknown = undefined;
      try {
        chmodBoundSocket(path, bound, 0o666, operation);
      } catch (caught) {
        error = caught;
      }
      // Before: chmod(path) followed the symlink and made the victim's file 0o666.
      assert.equal(Deno.statSync(victim).mode! & 0o777, 0o600, "the target keeps its mode");
      assert.ok(error instanceof Deno.errors.NotFound, String(error));
      assert.ok(isSystemError(error) && error.code === "ENOENT" && error.syscall === "statx");
      assert.equal(error.objectName, path);
      assert.match(error.message, /replaced by a symbolic link before its mode was set/);
      assert.ok(Deno.lstatSync(path).isSymlink, "the symlink is left where it is");
      assert.equal(fds(), before, "the O_PATH descriptor is closed on failure too");

      // Another socket at the path: not the one bound, so its mode stays too.
      Deno.removeSync(path);
      const other = UnixListener.listen(path, { mode: 0o600, persist: true });
      other.close();
      assert.throws(
        () => chmodBoundSocket(path, bound, 0o666, operation),
        (e: Error) => e instanceof Deno.errors.NotFound && /another socket/.test(e.message),
      );
      assert.equal(Deno.lstatSync(path).mode! & 0o777, 0o600);
      Deno.removeSync(path);

      // Removed: NotFound, from open.
      assert.throws(() => chmodBoundSocket(path, bound, 0o666, operation), Deno.errors.NotFound);
      assert.equal(fds(), before);
      Deno.symlinkSync(victim, path);
      listener.close(); // removes its own file only: the symlink now at the path stays
      assert.ok(Deno.lstatSync(path).isSymlink);
      assert.equal(Deno.readTextFileSync(victim), "private");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);
