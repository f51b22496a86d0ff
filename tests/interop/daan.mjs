// DAAN messaging on js-libp2p: the wire of the Go AgentNetwork messenger
// (internal/network/messenger.go), shared by daan_peer.mjs (interop tests) and
// bench/js/daan_bench.mjs (the js<->js baseline).
//
// Protocols /daan/message/1.0.0 (one-way) and /daan/request/1.0.0 (request/response), one message
// per stream. A frame is a 4-byte big-endian length, then a JSON object as Go's json.Marshal writes
//   struct { Type uint8 `json:"type"`; RequestID uint64 `json:"request_id,omitempty"`;
//            Payload []byte `json:"payload"` }
// e.g. {"type":1,"payload":"aGk="} or {"type":2,"request_id":7,"payload":null}. Types: 1 one-way,
// 2 request, 3 response, 4 error (payload = the error text).
//
// Stream choreography, as the Go node and ours do it:
//   one-way   sender writes the frame and closes its write side; the receiver reads one frame,
//             handles it and closes (the sender takes that EOF as "stored"; a reset = refused).
//   request   requester writes the frame and keeps the stream open (as Go does: it closes only
//             after reading the answer); the responder reads one frame, writes one type 3 or 4
//             frame with the same request_id and closes.
// Bytes after the one frame on a stream are ignored, as Go ignores them.
//
// Decoding accepts what Go's json.Unmarshal accepts into that struct: keys in any order,
// unknown keys ignored, keys matched case-insensitively (Unicode simple folding, so "ſ" matches
// "s" and the Kelvin sign "k"), a later duplicate key wins, request_id as an exact uint64,
// payload as standard base64 with padding (CR and LF ignored), null, or an array of byte
// values. It refuses what Go refuses (wrong JSON types, fractions or exponents for integers,
// out of range integers, bad base64) and, beyond Go, a type outside 1..4 or not the one the
// protocol carries.
import './polyfill.mjs'

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

// For scripts outside tests/interop, which cannot resolve the package themselves.
export { multiaddr }

export const MESSAGE_PROTOCOL = '/daan/message/1.0.0'
export const REQUEST_PROTOCOL = '/daan/request/1.0.0'
export const DHT_PROTOCOL = '/ipfs/kad/1.0.0'
// Go's namespace: every DAAN node advertises it on the DHT.
export const NETWORK_NAMESPACE = '/daan/1.0.0'
export const CAPABILITY_NAMESPACE_PREFIX = '/daan/capability/'

export const FRAME_LENGTH_BYTES = 4
// The Go node's MaxMessageSize: the largest JSON body it reads or writes.
export const MAX_FRAME_SIZE = 16 * 1024 * 1024
// Go's timeouts: the whole of a one-way send, and a request until its answer.
export const MESSAGE_TIMEOUT_MS = 10_000
export const REQUEST_TIMEOUT_MS = 30_000
// How long an inbound stream may take to deliver its one frame before we reset it (Go sets no
// deadline here; a peer that opens streams and sends nothing must not hold them for ever).
export const INBOUND_READ_TIMEOUT_MS = 30_000
// Streams of each daan protocol open at once per connection, each way. js-libp2p's default (32
// inbound) would refuse a sender keeping more messages in flight than that.
export const STREAMS_PER_CONNECTION = 1024
// What the Go node answers a request when nothing serves requests.
export const NO_HANDLER_TEXT = 'no handler registered'

export const FrameType = Object.freeze({ MESSAGE: 1, REQUEST: 2, RESPONSE: 3, ERROR: 4 })
const MAX_UINT8 = 255n
const MAX_UINT64 = (1n << 64n) - 1n
const RAW_CODEC = 0x55

// A frame that breaks the wire format: the stream carrying it is reset.
export class FrameError extends Error {
  constructor (message) { super(message); this.name = 'FrameError' }
}

// The peer reset a one-way message's stream instead of closing it: it did not store it.
export class RefusedError extends Error {
  constructor (message) { super(message); this.name = 'RefusedError' }
}

export class TimeoutError extends Error {
  constructor (message) { super(message); this.name = 'TimeoutError' }
}

// ---------------------------------------------------------------------------------------------
// Frame codec

// JSON body exactly as Go's json.Marshal writes the struct (field order, omitempty, null for an
// empty payload, standard base64 with padding).
export function encodeFrameBody ({ type, requestId = 0n, payload }) {
  const id = BigInt(requestId)
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new RangeError(`frame type ${type} is not a uint8`)
  if (id < 0n || id > MAX_UINT64) throw new RangeError(`request id ${id} is not a uint64`)
  const payloadJson = payload != null && payload.byteLength > 0
    ? `"${Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64')}"`
    : 'null'
  return Buffer.from(`{"type":${type}${id !== 0n ? `,"request_id":${id}` : ''},"payload":${payloadJson}}`)
}

// Length prefix and body in one buffer, so that a frame goes out in one write.
export function encodeFrame (frame) {
  const body = encodeFrameBody(frame)
  if (body.byteLength > MAX_FRAME_SIZE) throw new RangeError(`frame body of ${body.byteLength} bytes is over the ${MAX_FRAME_SIZE}-byte cap`)
  const out = Buffer.allocUnsafe(FRAME_LENGTH_BYTES + body.byteLength)
  out.writeUInt32BE(body.byteLength, 0)
  body.copy(out, FRAME_LENGTH_BYTES)
  return out
}

// Go compares struct keys with bytes.EqualFold; the only non-ASCII runes that fold onto the
// ASCII letters of our field names are U+017F (long s) and U+212A (Kelvin sign).
function foldKey (key) {
  return key.replace(/\u017f/g, 's').replace(/\u212a/g, 'k').replace(/[A-Z]/g, c => c.toLowerCase())
}

const JSON_SPACE = new Set([' ', '\t', '\n', '\r'])
function skipSpace (text, i) {
  while (i < text.length && JSON_SPACE.has(text[i])) i++
  return i
}

// End (exclusive) of the JSON value starting at text[i]; the text is known to be valid JSON.
function endOfValue (text, i) {
  const c = text[i]
  if (c === '"') {
    for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++
    return i + 1
  }
  if (c === '{' || c === '[') {
    let depth = 0
    for (; i < text.length; i++) {
      const d = text[i]
      if (d === '"') { i = endOfValue(text, i) - 1; continue }
      if (d === '{' || d === '[') depth++
      else if ((d === '}' || d === ']') && --depth === 0) return i + 1
    }
    return i
  }
  while (i < text.length && !JSON_SPACE.has(text[i]) && text[i] !== ',' && text[i] !== '}' && text[i] !== ']') i++
  return i
}

// [key, raw value text] of the top-level object's members, in order (the raw text keeps
// integers exact and tells 1 from 1.0, as Go does).
export function topLevelMembers (text) {
  const members = []
  let i = skipSpace(text, skipSpace(text, 0) + 1)
  if (text[i] === '}') return members
  for (;;) {
    const keyEnd = endOfValue(text, i)
    const key = JSON.parse(text.slice(i, keyEnd))
    i = skipSpace(text, skipSpace(text, keyEnd) + 1)
    const valueEnd = endOfValue(text, i)
    members.push([key, text.slice(i, valueEnd)])
    i = skipSpace(text, valueEnd)
    if (text[i] !== ',') return members
    i = skipSpace(text, i + 1)
  }
}

// Raw text of a JSON array's elements (the array is known to be valid JSON).
function arrayElements (raw) {
  const elements = []
  let i = skipSpace(raw, 1)
  if (raw[i] === ']') return elements
  for (;;) {
    const end = endOfValue(raw, i)
    elements.push(raw.slice(i, end))
    i = skipSpace(raw, end)
    if (raw[i] !== ',') return elements
    i = skipSpace(raw, i + 1)
  }
}

function jsonKind (raw) {
  const c = raw[0]
  if (c === '"') return 'string'
  if (c === '{') return 'object'
  if (c === '[') return 'array'
  if (raw === 'null') return 'null'
  if (raw === 'true' || raw === 'false') return 'bool'
  return 'number'
}

// An unsigned integer as Go's strconv.ParseUint reads a JSON number literal into a uintN field.
function unsignedField (name, raw, max) {
  const kind = jsonKind(raw)
  if (kind === 'null') return null
  if (kind !== 'number') throw new FrameError(`"${name}" is a JSON ${kind}, not a number`)
  if (!/^(0|[1-9][0-9]*)$/.test(raw)) throw new FrameError(`"${name}" ${raw} is not an unsigned integer`)
  const value = BigInt(raw)
  if (value > max) throw new FrameError(`"${name}" ${raw} is out of range`)
  return value
}

// Canonical padded standard base64. Checked without a repeated regex group, which overflows
// V8's backtracking stack on payloads of megabytes.
export function isStdBase64 (text) {
  if (text.length % 4 !== 0) return false
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0
  return !/[^A-Za-z0-9+/]/.test(pad > 0 ? text.slice(0, -pad) : text)
}

function payloadField (raw) {
  const kind = jsonKind(raw)
  if (kind === 'null') return new Uint8Array(0)
  if (kind === 'string') {
    // Go's base64.StdEncoding skips CR and LF; everything else must be canonical base64.
    const text = JSON.parse(raw).replace(/[\r\n]/g, '')
    if (!isStdBase64(text)) throw new FrameError('"payload" is not standard base64')
    return new Uint8Array(Buffer.from(text, 'base64'))
  }
  if (kind === 'array') {
    // encoding/json also fills a []byte from an array of numbers.
    return new Uint8Array(arrayElements(raw).map(v => Number(unsignedField('payload[]', v, MAX_UINT8) ?? 0n)))
  }
  throw new FrameError(`"payload" is a JSON ${kind}, not a base64 string`)
}

// Decodes a frame body (without the length). Throws FrameError.
export function decodeFrameBody (body) {
  // ignoreBOM: keep a leading BOM so that it fails as it does in Go.
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(body)
  let doc
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new FrameError(`invalid JSON: ${err.message}`)
  }
  if (doc === null) throw new FrameError('frame type 0 is not 1..4 (the body is null)')
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new FrameError(`the body is a JSON ${Array.isArray(doc) ? 'array' : typeof doc}, not an object`)
  let type = 0n
  let requestId = 0n
  let payload = new Uint8Array(0)
  for (const [key, raw] of topLevelMembers(text)) {
    switch (foldKey(key)) {
      case 'type': type = unsignedField('type', raw, MAX_UINT8) ?? type; break
      case 'request_id': requestId = unsignedField('request_id', raw, MAX_UINT64) ?? requestId; break
      case 'payload': payload = payloadField(raw); break
      default: break // unknown keys are ignored, as in Go
    }
  }
  if (type < 1n || type > 4n) throw new FrameError(`frame type ${type} is not 1..4`)
  return { type: Number(type), requestId, payload }
}

// ---------------------------------------------------------------------------------------------
// Streams

function chunksOf (data) {
  return data instanceof Uint8Array ? [data] : [...data] // Uint8ArrayList
}

function abortError (signal, what) {
  return signal.reason instanceof TimeoutError ? signal.reason : new TimeoutError(`timed out ${what}`)
}

export class StreamResetError extends Error {
  constructor (message) { super(message); this.name = 'StreamResetError' }
}

// js-libp2p dispatches 'end' on a reset too (before 'close'), with the status already set.
function wasReset (stream) {
  return stream.status === 'reset' || stream.status === 'aborted'
}

// Reads one frame's body. Rejects with FrameError (over the cap, stream ended early), with an
// error for a reset, or TimeoutError when the signal fires. Bytes after the frame are dropped.
export function readFrame (stream, { signal, maxFrameSize = MAX_FRAME_SIZE } = {}) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let have = 0
    let need = -1 // body length, once the prefix is in
    let done = false
    const discard = () => {}
    const finish = (err, body) => {
      if (done) return
      done = true
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('end', onEnd)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      // Keep draining so that the stream can finish closing; what comes after the frame is not
      // ours to read (one message per stream).
      stream.addEventListener('message', discard)
      if (err) reject(err)
      else resolve(body)
    }
    const onMessage = (evt) => {
      for (const chunk of chunksOf(evt.data)) { chunks.push(chunk); have += chunk.byteLength }
      if (need < 0 && have >= FRAME_LENGTH_BYTES) {
        const head = Buffer.concat(chunks, have)
        need = head.readUInt32BE(0)
        if (need > maxFrameSize) { finish(new FrameError(`frame length ${need} is over the ${maxFrameSize}-byte cap`)); return }
        chunks.length = 0
        chunks.push(head)
      }
      if (need >= 0 && have >= FRAME_LENGTH_BYTES + need) {
        const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, have)
        finish(null, all.subarray(FRAME_LENGTH_BYTES, FRAME_LENGTH_BYTES + need))
      }
    }
    const onEnd = () => {
      if (wasReset(stream)) { finish(new StreamResetError(`the peer reset the stream after ${have} bytes`)); return }
      const want = need < 0 ? `a ${FRAME_LENGTH_BYTES}-byte length` : `${FRAME_LENGTH_BYTES + need}`
      finish(new FrameError(`stream ended after ${have} bytes of ${want}`))
    }
    const onClose = (evt) => finish(evt.error ?? new FrameError(`stream closed after ${have} bytes, before a whole frame`))
    const onAbort = () => finish(abortError(signal, 'reading a frame'))
    if (signal?.aborted) { onAbort(); return }
    signal?.addEventListener('abort', onAbort, { once: true })
    stream.addEventListener('message', onMessage)
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onClose)
    if (stream.readableEnded) onEnd()
    else if (stream.status !== 'open') onClose({})
  })
}

export async function writeFrame (stream, bytes, signal) {
  if (!stream.send(bytes)) await stream.onDrain({ signal })
}

// Resolves when the remote closes its write side (EOF), rejects with RefusedError on a reset.
function remoteClosed (stream, signal) {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      stream.removeEventListener('end', onEnd)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
    }
    const refused = () => new RefusedError('refused: the peer reset the stream')
    const onEnd = () => { cleanup(); if (wasReset(stream)) reject(refused()); else resolve() }
    const onClose = (evt) => { cleanup(); if (evt.error || wasReset(stream)) reject(refused()); else resolve() }
    const onAbort = () => { cleanup(); reject(abortError(signal, 'waiting for the peer to close the stream')) }
    // The receiver has nothing to say on a one-way stream; drop anything it sends anyway.
    stream.addEventListener('message', () => {})
    if (stream.readableEnded || stream.status !== 'open') { onEnd(); return }
    if (signal?.aborted) { onAbort(); return }
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

function timeoutSignal (ms, outer) {
  const own = AbortSignal.timeout(ms)
  return outer != null ? AbortSignal.any([own, outer]) : own
}

// Sends one one-way message on a new stream and waits for the peer's close ("stored").
// Rejects with RefusedError when the peer resets the stream, TimeoutError after timeoutMs.
export async function sendMessage (connection, payload, { timeoutMs = MESSAGE_TIMEOUT_MS, signal } = {}) {
  const frame = encodeFrame({ type: FrameType.MESSAGE, payload })
  const deadline = timeoutSignal(timeoutMs, signal)
  const stream = await connection.newStream(MESSAGE_PROTOCOL, { signal: deadline, maxOutboundStreams: STREAMS_PER_CONNECTION })
  try {
    await writeFrame(stream, frame, deadline)
    await stream.close({ signal: deadline })
    await remoteClosed(stream, deadline)
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    if (deadline.aborted && !(err instanceof RefusedError)) throw new TimeoutError(`message not acknowledged within ${timeoutMs} ms`)
    throw err
  }
}

// Sends a request on a new stream and reads the answer: { type: 3 | 4, requestId, payload }.
// A type 4 answer is returned, not thrown. Throws FrameError on a malformed or mismatched answer
// (the stream is reset), TimeoutError after timeoutMs.
export async function sendRequest (connection, payload, requestId, { timeoutMs = REQUEST_TIMEOUT_MS, signal } = {}) {
  const frame = encodeFrame({ type: FrameType.REQUEST, requestId, payload })
  const deadline = timeoutSignal(timeoutMs, signal)
  const stream = await connection.newStream(REQUEST_PROTOCOL, { signal: deadline, maxOutboundStreams: STREAMS_PER_CONNECTION })
  try {
    await writeFrame(stream, frame, deadline)
    const answer = decodeFrameBody(await readFrame(stream, { signal: deadline }))
    if (answer.type !== FrameType.RESPONSE && answer.type !== FrameType.ERROR) throw new FrameError(`answer of type ${answer.type}, not 3 or 4`)
    if (answer.requestId !== BigInt(requestId)) throw new FrameError(`answer for request ${answer.requestId}, not ${requestId}`)
    // As Go: close only once the answer is in.
    stream.close().catch(err => stream.abort(err))
    return answer
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    if (deadline.aborted && !(err instanceof FrameError)) throw new TimeoutError(`no answer within ${timeoutMs} ms`)
    throw err
  }
}

// Serves both protocols on `node`.
//   onMessage(from, payload)            -> 'close' (stored) | 'reset' (refused) | 'hang'
//   onRequest(from, payload, requestId) -> { type: 3 | 4, payload } | 'reset' | 'hang'
//   onBadFrame(from, protocol, error)   a frame broke the format; its stream was reset
//   onStreamError(from, protocol, error) a reset, timeout or write failure on a served stream
// The callbacks may return promises.
export async function serveDaan (node, { onMessage, onRequest, onBadFrame = () => {}, onStreamError = () => {} }) {
  const handlerOptions = { maxInboundStreams: STREAMS_PER_CONNECTION, maxOutboundStreams: STREAMS_PER_CONNECTION }

  async function receiveOne (stream, connection, protocol, expectedType) {
    const from = connection.remotePeer.toString()
    const signal = AbortSignal.timeout(INBOUND_READ_TIMEOUT_MS)
    try {
      const frame = decodeFrameBody(await readFrame(stream, { signal }))
      if (frame.type !== expectedType) throw new FrameError(`frame type ${frame.type} on ${protocol}, which carries type ${expectedType}`)
      return { from, frame }
    } catch (err) {
      stream.abort(err)
      if (err instanceof FrameError) onBadFrame(from, protocol, err)
      else onStreamError(from, protocol, err)
      return null
    }
  }

  const closeOrReset = (stream) => stream.close().catch(err => stream.abort(err))

  await node.handle(MESSAGE_PROTOCOL, async (stream, connection) => {
    const got = await receiveOne(stream, connection, MESSAGE_PROTOCOL, FrameType.MESSAGE)
    if (got == null) return
    let action
    try {
      action = await onMessage(got.from, got.frame.payload)
    } catch (err) {
      onStreamError(got.from, MESSAGE_PROTOCOL, err)
      action = 'reset'
    }
    if (action === 'reset') stream.abort(new RefusedError('message refused'))
    else if (action !== 'hang') await closeOrReset(stream)
  }, handlerOptions)

  await node.handle(REQUEST_PROTOCOL, async (stream, connection) => {
    const got = await receiveOne(stream, connection, REQUEST_PROTOCOL, FrameType.REQUEST)
    if (got == null) return
    let answer
    try {
      answer = await onRequest(got.from, got.frame.payload, got.frame.requestId)
    } catch (err) {
      answer = { type: FrameType.ERROR, payload: Buffer.from(err.message ?? String(err)) }
    }
    if (answer === 'hang') return
    if (answer === 'reset') { stream.abort(new RefusedError('request refused')); return }
    try {
      const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS)
      await writeFrame(stream, encodeFrame({ type: answer.type, requestId: got.frame.requestId, payload: answer.payload }), signal)
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err)
      onStreamError(got.from, REQUEST_PROTOCOL, err)
    }
  }, handlerOptions)
}

// ---------------------------------------------------------------------------------------------
// Discovery: go-libp2p routing discovery's provider key for a namespace.

export async function namespaceCid (namespace) {
  return CID.createV1(RAW_CODEC, await sha256.digest(new TextEncoder().encode(namespace)))
}

// ---------------------------------------------------------------------------------------------
// Node

// A js-libp2p node as the interop peers build it: TCP, Noise, yamux, identify (+push), ping and,
// unless dht is 'off', kad-dht on /ipfs/kad/1.0.0 ('server' answers queries from the start, as
// loopback never looks public; 'client' only asks). The daan protocols are added by serveDaan.
// maxConnections also lifts js-libp2p's inbound limits (5 new connections per second per host,
// 10 handshakes in flight), which many nodes on one loopback address would hit.
export const MAX_INCOMING_PENDING_CONNECTIONS = 64
export async function createNode ({ privateKey, listen = ['/ip4/127.0.0.1/tcp/0'], dht = 'server', maxConnections } = {}) {
  const services = { identify: identify(), identifyPush: identifyPush(), ping: ping() }
  if (dht !== 'off') {
    services.dht = kadDHT({
      protocol: DHT_PROTOCOL,
      clientMode: dht === 'client',
      // The default mapper drops private (here: all) addresses.
      peerInfoMapper: passthroughMapper,
      allowQueryWithZeroPeers: false
    })
  }
  return createLibp2p({
    ...(privateKey != null ? { privateKey } : {}),
    ...(maxConnections != null
      ? { connectionManager: { maxConnections, inboundConnectionThreshold: maxConnections, maxIncomingPendingConnections: MAX_INCOMING_PENDING_CONNECTIONS } }
      : {}),
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Loopback test network: dial everything.
    connectionGater: { denyDialMultiaddr: () => false },
    services
  })
}
