/**
 * Request/response between processes: a {@linkcode Server} answers requests from many
 * {@linkcode Client}s, in any processes, found by name or by a descriptor handed to a child.
 *
 * The handler returns a value (or a promise of one) for a single answer, or an async iterable
 * for a streamed one. Each client may have many requests outstanding; answers come back as
 * they are ready, in any order, matched by id. A handler's error reaches the client as a
 * {@linkcode RemoteError} (its name, message and code). A dead client's requests are dropped
 * by the server; a dead server's clients see `Deno.errors.BrokenPipe`.
 *
 * Built on `Channel` (@posix/ipc/channel): one multi-sender ring carries every client's
 * requests to the server, and each client has its own ring for its answers, which the server
 * opens when the client says hello. Both directions use the channels' peer-death detection.
 *
 * @example
 * ```ts
 * import { Client, codecs, Server } from "@posix/ipc/service";
 *
 * const name = `/adder-${Deno.pid}`;
 * using _server = Server.create(([a, b]: number[]) => a + b, { name, codec: codecs.json });
 * using client = await Client.connect<number[], number>(name, { codec: codecs.json });
 * console.log(await client.request([2, 3])); // 5
 * ```
 *
 * @module
 */

export { type Handler, type RequestContext, Server, type ServerOptions } from "./server.ts";
export { Client, type ClientOptions } from "./client.ts";
export { RemoteError } from "./remote_error.ts";
export { type Codec, codecs } from "../codec.ts";
export type { WaitOptions } from "../_wait.ts";
