import assert from "node:assert/strict";
import { isSystemError, Mapping, OwnedFd, SharedMemory } from "../mod.ts";
import { fixture, ipcTest, runDeno, thrown, uniqueName } from "./helpers.ts";

const sealing = fixture("shm_seals.ts");

ipcTest("a peer cannot shrink a shrink-sealed segment while its owner reads it", async () => {
  const output = await runDeno(sealing, ["owner", "sealed"], { flags: ["-A"], timeout: 60_000 });
  assert.equal(output.code, 0, `exit ${output.code} (135: SIGBUS)\n${output.stderr}`);
  const lines = output.stdout.trim().split("\n");
  assert.deepEqual(lines, [
    "requireSeals accepted shrink",
    "shrink PermissionDenied",
    "peer exited 0",
    "read all true size 65536 seals shrink",
  ]);
});

ipcTest("without the seal the same peer shrinks it, and the owner dies of SIGBUS", async () => {
  // The control: what the seal prevents, run where it can only kill a child.
  const output = await runDeno(sealing, ["owner", "unsealed"], { flags: ["-A"], timeout: 60_000 });
  assert.equal(output.signal, "SIGBUS", `exit ${output.code}\n${output.stdout}\n${output.stderr}`);
});

ipcTest("SharedMemory.anonymous({ seal }) adds the seals; seals lists them", () => {
  using memory = SharedMemory.anonymous({ size: 4096, seal: ["grow", "shrink"] });
  assert.deepEqual(memory.seals, ["shrink", "grow"]);
  assert.equal(memory.readOnly, false);
  memory.bytes[0] = 1; // still writable
  memory.seal(["seal"]);
  assert.deepEqual(memory.seals, ["shrink", "grow", "seal"]);
  memory.seal([]); // nothing to add: no call, so allowed even now
});

ipcTest("resize() of a sealed segment is a PermissionDenied that names the seal", () => {
  using memory = SharedMemory.anonymous({ size: 8192, seal: ["shrink"] });
  const error = thrown(() => memory.resize(4096));
  assert.ok(error instanceof Deno.errors.PermissionDenied && isSystemError(error));
  assert.equal(error.code, "EPERM");
  assert.equal(error.syscall, "ftruncate");
  assert.match(error.message, /sealed \(shrink\): no process may shrink it/);
  assert.equal(memory.size, 8192);
  memory.resize(12288); // growing is not sealed
  assert.equal(memory.bytes.length, 12288);

  using fixed = SharedMemory.anonymous({ size: 4096, seal: ["grow"] });
  assert.throws(() => fixed.resize(8192), /sealed \(grow\): no process may grow it/);
});

ipcTest("seal(['write']) maps the handle read-only and freezes the bytes", () => {
  using memory = SharedMemory.anonymous({ size: 4096, seal: [] });
  const before = memory.bytes;
  before[0] = 42;
  memory.seal(["write", "shrink"]);
  assert.equal(before.length, 0, "views taken before are detached");
  assert.equal(memory.readOnly, true);
  assert.equal(memory.bytes[0], 42);
  memory.bytes[0] = 7; // copy-on-write: stays in this handle's private page
  using reader = SharedMemory.fromFd(new OwnedFd(memory.fd).dup());
  assert.equal(reader.readOnly, true, "a write-sealed segment maps read-only by default");
  assert.equal(reader.bytes[0], 42);
  using copy = new OwnedFd(memory.fd).dup();
  const refused = thrown(() => SharedMemory.fromFd(copy, { readOnly: false }));
  assert.ok(refused instanceof Deno.errors.PermissionDenied);
  assert.match(refused.message, /sealed against writes/);
  assert.throws(() => memory.resize(8192), Deno.errors.PermissionDenied);
});

ipcTest("fromFd() maps a write-sealed segment read-only, its pages backed or not", () => {
  // Backed pages take the short path (a writable mmap, refused with EPERM, then a read-only
  // one); a sparse segment reads the seals first, to know whether it may reserve its pages.
  using sparse = SharedMemory.anonymous({ size: 8192, seal: ["write"] });
  using backed = SharedMemory.anonymous({ size: 8192, seal: [] });
  backed.bytes.fill(3);
  backed.seal(["write"]);
  for (const memory of [sparse, backed]) {
    const copy = new OwnedFd(memory.fd).dup();
    using reader = SharedMemory.fromFd(copy);
    assert.equal(copy.closed, true, "the handle took the descriptor");
    assert.equal(reader.readOnly, true);
    assert.equal(reader.bytes[8191], memory === backed ? 3 : 0);
    reader.bytes[0] = 9; // copy-on-write: never reaches the segment
    assert.equal(memory.bytes[0], memory === backed ? 3 : 0);
    using asked = SharedMemory.fromFd(new OwnedFd(memory.fd).dup(), { readOnly: true });
    assert.equal(asked.readOnly, true);
  }
});

ipcTest("seal(['write']) fails with Busy while another mapping writes, and stays writable", () => {
  using memory = SharedMemory.anonymous({ size: 4096, seal: [] });
  using writer = Mapping.fromFd(memory.fd, { write: true });
  const error = thrown(() => memory.seal(["write"]));
  assert.ok(error instanceof Deno.errors.Busy && isSystemError(error));
  assert.match(error.message, /maps it shared and writable/);
  assert.equal(memory.readOnly, false);
  memory.bytes[0] = 5;
  assert.equal(writer.bytes[0], 5, "the handle maps the segment shared again");
  assert.deepEqual(memory.seals, []);
});

ipcTest("seal 'future-write': existing mappings write on, new ones are read-only", () => {
  using memory = SharedMemory.anonymous({ size: 4096, seal: [] });
  memory.seal(["future-write"]);
  assert.equal(memory.readOnly, false);
  memory.bytes[1] = 9;
  using reader = SharedMemory.fromFd(new OwnedFd(memory.fd).dup());
  assert.equal(reader.readOnly, true);
  assert.equal(reader.bytes[1], 9);
  memory.bytes[1] = 10;
  assert.equal(reader.bytes[1], 10, "the reader sees the creator's writes");
});

ipcTest("seals cannot be added to a named segment or one made without `seal`", () => {
  using named = SharedMemory.create(uniqueName("seal"), { size: 4096 });
  assert.deepEqual(named.seals, ["seal"]);
  const error = thrown(() => named.seal(["shrink"]));
  assert.ok(error instanceof Deno.errors.PermissionDenied && isSystemError(error));
  assert.match(error.message, /only anonymous segments .* can be sealed/);

  using plain = SharedMemory.anonymous({ size: 4096 });
  assert.deepEqual(plain.seals, ["seal"]);
  assert.throws(() => plain.seal(["shrink"]), /SharedMemory.anonymous\(\{ size, seal: \[\] \}\)/);
});

ipcTest("fromFd({ requireSeals }) refuses a segment that lacks one, before mapping it", () => {
  using memory = SharedMemory.anonymous({ size: 4096, seal: ["grow"] });
  const copy = new OwnedFd(memory.fd).dup();
  const error = thrown(() => SharedMemory.fromFd(copy, { requireSeals: ["shrink", "grow"] }));
  assert.ok(error instanceof Deno.errors.InvalidData);
  assert.match(error.message, /lacks the seals required \(shrink\); it has grow.*SIGBUS/);
  assert.equal(copy.closed, false, "a failed fromFd leaves the descriptor to the caller");
  using accepted = SharedMemory.fromFd(copy, { requireSeals: ["grow"] });
  assert.equal(accepted.size, 4096);
});

ipcTest("seal names are checked before any call: a TypeError names the bad one", () => {
  for (const bad of [["shrnk"], [1], "shrink", null, 5, [undefined], ["SHRINK"]]) {
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => SharedMemory.anonymous({ size: 64, seal: bad as any }),
      TypeError,
    );
  }
  using memory = SharedMemory.anonymous({ size: 64, seal: [] });
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => memory.seal(["shrink", "nope" as any]),
    /seal "nope" in seal: it must be one of "shrink", "grow", "write", "future-write", "seal"/,
  );
  assert.deepEqual(memory.seals, [], "nothing was added");
  memory.close();
  assert.throws(() => memory.seal(["shrink"]), Deno.errors.BadResource);
  assert.throws(() => memory.seals, Deno.errors.BadResource);
});
