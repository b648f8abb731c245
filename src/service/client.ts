/**
 * The client side of a service: {@linkcode Client}. Internal: the public entry is
 * src/service/mod.ts.
 *
 * @module
 */

import { Channel, channelPeers } from "../channel/channel.ts";
import { validateCodec } from "../channel/options.ts";
import { RECEIVES } from "../channel/registry.ts";
import { encodeChecked } from "../channel/slab.ts";
import { type Codec, codecs } from "../codec.ts";
import { closedError } from "../errors.ts";
import type { FdLike } from "../fd.ts";
import { ConstructorToken, describe, optionsObject } from "../_validate.ts";
import {
  type CheckedWait,
  deadlineAfter,
  MAX_WAIT_MS,
  readWaitOptions,
  type WaitOptions,
} from "../_wait.ts";
import {
  BYE,
  CANCEL,
  CREDIT,
  creditPayload,
  decodePayload,
  END,
  ERROR,
  FrameWriter,
  HELLO,
  PART,
  readResponseFrame,
  REQUEST,
  REQUEST_HEADER,
  requestFrame,
  STREAM_WINDOW,
  VALUE,
  WELCOME,
} from "./frame.ts";
import { decodeRemoteError } from "./remote_error.ts";
import { letPendingWorkRun } from "./hops.ts";
import { removeName, responseName } from "./names.ts";

const token = new ConstructorToken("Client", "Client.connect()");
const encoder = new TextEncoder();

/** Why the answer loop's wait ended when no request was left to wait for. */
const STOPPED = new Deno.errors.Interrupted("the answer loop stopped: no request is pending");

/** How often a client waiting for the server's welcome looks whether the server is alive, in ms. */
const HELLO_SLICE_MS = 250;

/** Options of {@linkcode Client.connect}. */
export interface ClientOptions<Req, Res> extends WaitOptions {
  /**
   * How requests and answers become bytes: the server's codec (a codec of another name is
   * refused at connect). Default bytes.
   */
  codec?: Codec<Req | Res> | Codec<unknown>;
  /** The size of this client's response ring in bytes (a power of two). Default 1 MiB. */
  capacity?: number;
}

/** A request waiting for its answer. */
interface Pending<Res> {
  /** A single answer: `request()`. Otherwise a stream: `stream()`. */
  readonly single: boolean;
  readonly resolve: (value: Res) => void;
  readonly reject: (error: unknown) => void;
  /** Parts of a stream not yet taken. */
  readonly parts: Res[];
  /** Wakes a stream's reader. */
  wake: (() => void) | null;
  /** A stream's END arrived. */
  ended: boolean;
  /** Why a stream failed. */
  error: unknown;
}

const ignore = () => {};

/** A pending request's record: a single answer's (with its promise's callbacks) or a stream's. */
function pendingEntry<Res>(
  single: boolean,
  resolve: (value: Res) => void = ignore,
  reject: (error: unknown) => void = ignore,
): Pending<Res> {
  return { single, resolve, reject, parts: [], wake: null, ended: false, error: undefined };
}

/**
 * A client of a {@linkcode Server}: it sends requests and matches their answers, which may come
 * back in any order, by id. Many requests may be outstanding at once.
 *
 * - `await client.request(value, { timeout, signal })` for a single answer.
 * - `for await (const part of client.stream(value, { timeout, signal }))` for a streamed one.
 * - A handler's error rejects with {@linkcode RemoteError}; a timeout with
 *   `Deno.errors.TimedOut`, an abort with the signal's reason: only that request fails, the
 *   server is told to stop working on it, and a late answer is discarded.
 * - When the server closes, or its process dies, pending requests reject with
 *   `Deno.errors.BrokenPipe` (within a second of a death), and so does every later request.
 * - Closing the client rejects its pending requests with `BadResource`. A client dropped
 *   without `close()` is closed by the garbage collector (its channels are).
 *
 * @example
 * ```ts
 * import { Client, codecs, Server } from "@posix/ipc/service";
 *
 * const name = `/greeter-${Deno.pid}`;
 * using _server = Server.create((who: string) => `hello, ${who}`, { name, codec: codecs.text });
 * using client = await Client.connect<string, string>(name, { codec: codecs.text });
 * const answers = await Promise.all(["ann", "bob"].map((who) => client.request(who)));
 * console.log(answers); // [ "hello, ann", "hello, bob" ]
 * ```
 */
export class Client<Req = Uint8Array, Res = Uint8Array> implements Disposable, AsyncDisposable {
  readonly #requests: Channel<Uint8Array>;
  readonly #responses: Channel<Uint8Array>;
  readonly #codec: Codec<Req | Res>;
  readonly #id: number;
  readonly #pending = new Map<number, Pending<Res>>();
  /** Builds the frames this client sends with `trySend`. */
  readonly #frames = new FrameWriter();
  #nextRequest = 1;
  /** Whether the loop that reads answers runs (while requests are pending). */
  #pumping = false;
  /** Tells the current loop from one that was stopped and has yet to notice. */
  #generation = 0;
  /** Ends the loop's wait under way, if any. */
  #waitStop: AbortController | null = null;
  /** Why the service can no longer answer (it closed or died), once it is known. */
  #broken: Error | null = null;
  #closed = false;
  /** The answer loops whose receive may still be pending (a stopped one ends within ms). */
  readonly #running = new Set<Promise<void>>();
  /** Settles once the answer loops that ran at close have ended. */
  #stopped: Promise<void> = Promise.resolve();

  private constructor(
    key: ConstructorToken,
    requests: Channel<Uint8Array>,
    responses: Channel<Uint8Array>,
    codec: Codec<Req | Res>,
    id: number,
  ) {
    token.check(key);
    this.#requests = requests;
    this.#responses = responses;
    this.#codec = codec;
    this.#id = id;
  }

  /**
   * Connects to a server: by its name, or by the descriptor of its request ring (a number, an
   * `OwnedFd` or a handle, as `Channel.fromFd` takes; a number or `OwnedFd` becomes the
   * client's). Waits for the server's welcome.
   *
   * @param service The server's name, or its descriptor (`inheritedFd(3)`).
   * @param options `codec` (the server's), `capacity`, and the handshake's `timeout` and `signal`.
   * @returns The client.
   * @throws {Deno.errors.NotFound} when no service has that name.
   * @throws {Deno.errors.BrokenPipe} when the server closed or died before it welcomed us.
   * @throws {TypeError} when the codec is not the server's (it compares their names).
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example By a descriptor
   * ```ts
   * import { Client, Server } from "@posix/ipc/service";
   *
   * using server = Server.create((bytes: Uint8Array) => bytes.reverse());
   * using client = await Client.connect(server); // in a child: inheritedFd(3)
   * console.log(await client.request(new Uint8Array([1, 2]))); // Uint8Array(2) [ 2, 1 ]
   * ```
   */
  static async connect<Req = Uint8Array, Res = Uint8Array>(
    service: string | FdLike,
    options?: ClientOptions<Req, Res>,
  ): Promise<Client<Req, Res>> {
    options = optionsObject(options, "client options");
    // Read once: a getter may answer differently the next time.
    const wait = readWaitOptions(options, "connect to the service");
    const codec = validateCodec<Req | Res>(
      options.codec ?? (codecs.bytes as unknown as Codec<Req | Res>),
    );
    wait.signal?.throwIfAborted();
    const requests = typeof service === "string"
      ? Channel.open(service, { role: "send" })
      : Channel.fromFd(service, { role: "send" });
    let responses: Channel<Uint8Array> | undefined;
    try {
      if (!requests.multi) {
        throw new Deno.errors.InvalidData(
          `Cannot connect to ${describe(service)}: it is a channel, not a service`,
        );
      }
      responses = Channel.create({
        name: responseName(),
        capacity: options.capacity,
        role: "receive",
      });
      const name = responses.name!;
      const deadline = deadlineAfter(wait.timeout);
      const hello = encoder.encode(`${name}\0${codec.name}`);
      await requests.send(requestFrame(HELLO, 0, 0, hello), wait);
      const id = await welcome(requests, responses, deadline, wait);
      removeName(name); // the server holds it open now (and may have removed it)
      return new Client<Req, Res>(token, requests, responses, codec, id);
    } catch (error) {
      responses?.close();
      requests.close();
      throw error;
    }
  }

  /** This client's id, as the server's handler sees it in `context.client`. */
  get id(): number {
    return this.#id;
  }

  /** How many requests are waiting for their answers. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Whether the client was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends a request and waits (without blocking the event loop) for its single answer.
   *
   * @param value The request.
   * @param options `timeout` (ms) and `signal`: giving up fails this request only.
   * @returns The answer.
   * @throws {RemoteError} when the handler threw.
   * @throws {Deno.errors.BrokenPipe} when the server closed or died.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {Deno.errors.InvalidData} when the handler streamed its answer (use `stream()`).
   * @throws {RangeError} for a request larger than the request ring takes.
   * @example
   * ```ts
   * import { Client, codecs, Server } from "@posix/ipc/service";
   *
   * const name = `/slow-${Deno.pid}`;
   * using _server = Server.create(
   *   (ms: number, { signal }) => new Promise((done) => {
   *     const timer = setTimeout(() => done(ms), ms);
   *     signal.addEventListener("abort", () => clearTimeout(timer));
   *   }),
   *   { name, codec: codecs.json },
   * );
   * using client = await Client.connect<number, number>(name, { codec: codecs.json });
   * await client.request(5000, { timeout: 50 }).catch((error) => console.log(error.name)); // TimedOut
   * ```
   */
  request(value: Req, options: WaitOptions = {}): Promise<Res> {
    try {
      const { promise, resolve, reject } = Promise.withResolvers<Res>();
      const entry = pendingEntry<Res>(true, resolve, reject);
      this.#start(value, options, entry);
      return promise;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Sends a request and yields the parts of its streamed answer as they come. A handler that
   * returned a single value yields it alone. Breaking out of the loop tells the server to stop.
   * The server sends at most 32 parts ahead of what the loop has taken, so a slow reader holds
   * back a fast stream instead of letting its parts pile up here.
   *
   * @param value The request.
   * @param options `timeout` (ms, for the whole stream) and `signal`.
   * @returns The parts, in order.
   * @throws {RemoteError} when the handler, or its stream, threw.
   * @throws {Deno.errors.BrokenPipe} when the server closed or died.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { Client, codecs, Server } from "@posix/ipc/service";
   *
   * const name = `/lines-${Deno.pid}`;
   * using _server = Server.create(
   *   (text: string) => ReadableStream.from(text.split("\n")),
   *   { name, codec: codecs.text },
   * );
   * using client = await Client.connect<string, string>(name, { codec: codecs.text });
   * for await (const line of client.stream("a\nb")) console.log(line); // "a", then "b"
   * ```
   */
  stream(value: Req, options: WaitOptions = {}): AsyncIterableIterator<Res> {
    const entry = pendingEntry<Res>(false);
    const id = this.#start(value, options, entry);
    return this.#parts(id, entry);
  }

  async *#parts(id: number, entry: Pending<Res>): AsyncIterableIterator<Res> {
    let taken = 0;
    try {
      while (true) {
        if (entry.parts.length > 0) {
          yield entry.parts.shift()!;
          if (++taken === STREAM_WINDOW / 2 && !entry.ended) {
            this.#grant(id, taken);
            taken = 0;
          }
          continue;
        }
        if (entry.error !== undefined) throw entry.error;
        if (entry.ended) return;
        await new Promise<void>((wake) => entry.wake = wake);
      }
    } finally {
      if (this.#pending.get(id) === entry) this.#giveUp(id, entry); // the loop broke early
    }
  }

  /** Lets the server send `parts` more parts of stream `id` (best effort: see STREAM_WINDOW). */
  #grant(id: number, parts: number): void {
    const frame = requestFrame(CREDIT, this.#id, id, creditPayload(parts));
    try {
      if (this.#requests.trySend(frame)) return;
      this.#requests.send(frame).catch(() => {}); // the ring is full: as soon as it has room
    } catch {
      // closed, or the server gone: the stream fails by itself
    }
  }

  /** Validates, sends the request and registers it; returns its id. */
  #start(value: Req, options: WaitOptions, entry: Pending<Res>): number {
    const { timeout, signal } = readWaitOptions(options, "make a request"); // read once
    if (this.#closed) throw closedError("the client");
    signal?.throwIfAborted();
    if (this.#broken !== null) throw this.#broken;
    const payload = encodeChecked(this.#codec, value, "request with"); // a Uint8Array, its real length
    if (payload.length + REQUEST_HEADER > this.#requests.maxMessageSize) {
      throw new RangeError(
        `Cannot make a request of ${payload.length} bytes: the service's ring takes ` +
          `${this.#requests.maxMessageSize - REQUEST_HEADER}`,
      );
    }
    const id = this.#newId();
    const frame = this.#frames.request(REQUEST, this.#id, id, payload);
    this.#pending.set(id, entry);
    const settle = this.#whenGivenUp(id, entry, timeout, signal);
    if (!this.#requests.trySend(frame)) {
      // The ring is full: wait for room, as long as the request is wanted (with a frame of its
      // own: the writer's is the next request's).
      this.#requests.send(frame.slice(), { signal: settle }).catch((error) => {
        if (this.#pending.get(id) !== entry) return; // given up already
        this.#fail(
          id,
          entry,
          error instanceof Deno.errors.BrokenPipe ? this.#breaks(error) : error,
        );
      });
    }
    this.#runPump();
    return id;
  }

  /**
   * Arms the request's timeout and signal: giving up fails it alone and tells the server.
   * Returns a signal that aborts when it is given up, or `undefined` when it cannot be.
   */
  #whenGivenUp(
    id: number,
    entry: Pending<Res>,
    timeout: number,
    signal: AbortSignal | undefined,
  ): AbortSignal | undefined {
    if (timeout === Infinity && signal === undefined) return undefined;
    const controller = new AbortController();
    const giveUp = (reason: unknown) => {
      if (this.#pending.get(id) !== entry) return;
      controller.abort(reason);
      this.#giveUp(id, entry, reason);
    };
    const onAbort = () => giveUp(signal!.reason);
    const cancelTimer = timeout === Infinity ? undefined : after(
      timeout,
      () =>
        giveUp(new Deno.errors.TimedOut(`Cannot make a request: timed out after ${timeout} ms`)),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    const previous = entry.reject;
    const disarm = () => {
      cancelTimer?.();
      signal?.removeEventListener("abort", onAbort);
    };
    // Disarm on settling: wrap the entry's callbacks (single) or its end (stream).
    Object.assign(entry, {
      resolve: ((resolve) => (value: Res) => {
        disarm();
        resolve(value);
      })(entry.resolve),
      reject: (error: unknown) => {
        disarm();
        previous(error);
      },
    });
    return controller.signal;
  }

  /** Fails one request that is no longer wanted, and tells the server (best effort). */
  #giveUp(id: number, entry: Pending<Res>, reason?: unknown): void {
    this.#fail(id, entry, reason);
    try {
      this.#requests.trySend(this.#frames.request(CANCEL, this.#id, id));
    } catch {
      // closed or broken: the server is not working on it any more either
    }
  }

  #newId(): number {
    let id = this.#nextRequest;
    while (id === 0 || this.#pending.has(id)) id = (id + 1) >>> 0;
    this.#nextRequest = (id + 1) >>> 0;
    return id;
  }

  /** Settles a request with an error and forgets it. */
  #fail(id: number, entry: Pending<Res>, error: unknown): void {
    if (this.#pending.get(id) !== entry) return;
    this.#pending.delete(id);
    if (entry.single) {
      entry.reject(error);
    } else {
      entry.error = error ?? new Deno.errors.Interrupted("Cannot read the stream: it was ended");
      entry.reject(error);
      entry.wake?.();
    }
    this.#stopPumpIfIdle();
  }

  /** Starts the loop that reads answers, unless one runs. */
  #runPump(): void {
    if (this.#pumping || this.#pending.size === 0) return;
    this.#pumping = true;
    const run: Promise<void> = this.#readAnswers(++this.#generation).finally(() => {
      this.#running.delete(run);
    });
    this.#running.add(run);
  }

  /**
   * Stops the loop once no request is pending, so that an idle client keeps nothing running: a
   * wait under way ends at once; a loop between waits sees that it is no longer the current one.
   */
  #stopPumpIfIdle(): void {
    if (this.#pending.size !== 0 || !this.#pumping) return;
    this.#pumping = false;
    this.#waitStop?.abort(STOPPED); // a reason made once: abort() alone builds a DOMException
    this.#waitStop = null;
  }

  async #readAnswers(generation: number): Promise<void> {
    const responses = this.#responses;
    const current = () => this.#pumping && this.#generation === generation;
    // One controller for the loop's waits (not one per wait): stopping the loop aborts it.
    const stop = new AbortController();
    this.#waitStop = stop;
    try {
      while (current() && this.#pending.size > 0) {
        let bytes = responses.tryReceive();
        if (bytes === undefined) {
          await letPendingWorkRun(); // the callers just answered send their next requests first
          if (!current() || this.#pending.size === 0) return;
          bytes = responses.tryReceive();
          if (bytes === undefined) bytes = await responses.receive({ signal: stop.signal });
        }
        this.#deliver(bytes);
      }
    } catch (error) {
      if (error === STOPPED || this.#closed) return;
      this.#breakAll(error);
    } finally {
      if (this.#waitStop === stop) this.#waitStop = null;
      if (this.#generation === generation) this.#pumping = false;
    }
  }

  /** Hands one frame of the response ring to its request; anything else is discarded. */
  #deliver(bytes: Uint8Array): void {
    const frame = readResponseFrame(bytes);
    if (frame === undefined) return;
    const entry = this.#pending.get(frame.request);
    if (entry === undefined || frame.kind === WELCOME) return; // a late answer: discarded
    const id = frame.request;
    if (frame.kind === ERROR) return this.#fail(id, entry, decodeRemoteError(frame.payload));
    if (entry.single && frame.kind !== VALUE) {
      return this.#giveUp(
        id,
        entry,
        new Deno.errors.InvalidData(
          "Cannot take the answer: the handler streamed it; use client.stream()",
        ),
      );
    }
    let value: Res | undefined;
    if (frame.kind !== END) {
      try {
        value = decodePayload(this.#codec, frame.payload) as Res;
      } catch (error) {
        return this.#giveUp(
          id,
          entry,
          new Deno.errors.InvalidData(
            `Cannot decode the answer with the ${this.#codec.name} codec: ${
              error instanceof Error ? error.message : describe(error)
            }`,
          ),
        );
      }
    }
    if (frame.kind === PART) {
      entry.parts.push(value as Res);
    } else {
      if (frame.kind === VALUE) {
        if (entry.single) entry.resolve(value as Res);
        else entry.parts.push(value as Res);
      }
      this.#pending.delete(id);
      entry.ended = true;
      if (!entry.single) entry.resolve(undefined as Res);
      this.#stopPumpIfIdle();
    }
    entry.wake?.();
    entry.wake = null;
  }

  /** The service can answer no more: every pending request fails with `BrokenPipe`. */
  #breakAll(error: unknown): void {
    const broken = this.#breaks(error);
    for (const [id, entry] of [...this.#pending]) this.#fail(id, entry, broken);
  }

  /** Records and returns the BrokenPipe that every request fails with from now on. */
  #breaks(cause: unknown): Error {
    this.#broken ??= cause instanceof Deno.errors.UnexpectedEof
      ? new Deno.errors.BrokenPipe("Cannot make a request: the server closed", { cause })
      : cause instanceof Deno.errors.BrokenPipe
      ? new Deno.errors.BrokenPipe(
        "Cannot make a request: the server's process died without closing",
        { cause },
      )
      : (cause as Error);
    return this.#broken;
  }

  /**
   * Closes the client: pending requests reject with `BadResource`, the server is told, and the
   * client's rings close. Closing again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopped = Promise.all(this.#running).then(() => {});
    for (const [id, entry] of [...this.#pending]) {
      this.#fail(id, entry, closedError("the client"));
    }
    this.#waitStop?.abort(STOPPED);
    try {
      this.#requests.trySend(this.#frames.request(BYE, this.#id, 0));
    } catch {
      // the server finds out by itself (the response ring is closed)
    }
    this.#responses.close();
    this.#requests.close();
  }

  /** Same as {@linkcode Client.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Closes the client and waits until its rings are released (a pending receive ends within a
   * few milliseconds), for `await using`.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#stopped;
  }
}

/**
 * Calls `fn` after `ms` milliseconds, however many (setTimeout fires at once for more than
 * 2^31 - 1); returns what cancels it.
 */
function after(ms: number, fn: () => void): () => void {
  let timer: ReturnType<typeof setTimeout>;
  const deadline = performance.now() + ms;
  const arm = () => {
    const left = deadline - performance.now();
    timer = left > MAX_WAIT_MS ? setTimeout(arm, MAX_WAIT_MS) : setTimeout(fn, left);
  };
  arm();
  return () => clearTimeout(timer);
}

/**
 * Waits for the server's WELCOME on a new client's response ring, looking between slices
 * whether the server is still there (it has not opened our ring yet, so the ring alone would
 * not tell us it died). Returns the client's id.
 */
async function welcome(
  requests: Channel<Uint8Array>,
  responses: Channel<Uint8Array>,
  deadline: number,
  options: CheckedWait,
): Promise<number> {
  while (true) {
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new Deno.errors.TimedOut(
        `Cannot connect to the service: timed out after ${options.timeout} ms`,
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = await responses.receive({
        timeout: Math.min(HELLO_SLICE_MS, left),
        signal: options.signal,
      });
    } catch (error) {
      if (!(error instanceof Deno.errors.TimedOut)) throw error;
      const server = channelPeers(requests, RECEIVES);
      if (server === "died" || server === "ended") {
        throw new Deno.errors.BrokenPipe(
          `Cannot connect to the service: its server ${
            server === "died" ? "died without closing" : "closed"
          }`,
        );
      }
      continue;
    }
    const frame = readResponseFrame(bytes);
    if (frame?.kind === WELCOME) return frame.request;
    if (frame?.kind === ERROR && frame.request === 0) {
      throw new TypeError(decodeRemoteError(frame.payload).message); // refused: the codec
    }
  }
}
