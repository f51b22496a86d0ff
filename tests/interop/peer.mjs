#!/usr/bin/env node
// js-libp2p interop peer. Our C++ tool `an-p2p` implements the very same CLI and JSON output, so
// the runner (run_interop.mjs) can put either implementation in either role.
//
//   peer listen [--listen /ip4/127.0.0.1/tcp/0] [--key FILE]
//     One JSON line on stdout once listening: {"peer_id":"12D3KooW...","addrs":["/ip4/.../p2p/ID"]}
//     Serves identify, identify push, ping and /echo/1.0.0 until SIGTERM/SIGINT or stdin EOF.
//
//   peer dial MULTIADDR [--identify] [--ping N] [--echo BYTES] [--streams N --stream-bytes B]
//             [--timeout SEC] [--key FILE]
//     One JSON line on stdout and exit 0, or {"error":"..."} and exit 1.
//
// Default js-libp2p stack: TCP + noise + yamux, identify (+ push), ping. Diagnostics go to stderr.
//
// Benchmark additions (bench/p2p_bench.py), the same as an-p2p's:
//   listen --max-connections N   lifts js-libp2p's inbound limits for load tests: at most N
//                                connections, N new ones per second per host (default 5), 64
//                                handshakes in flight (default 10, our host's limit is 64).
//   dial --send BYTES            one stream on /bench/sink/1.0.0: write BYTES, close, wait for
//                                the remote's close; "send": {bytes, seconds}.
//   dial --connect-latency N     before the main connection: N fresh connections in sequence,
//                                each timed from the dial to the first echoed byte of its first
//                                stream; "connect_latency_ms": [...].
// Listeners also serve /bench/sink/1.0.0 (read to EOF, then close).
import './polyfill.mjs'

import { createHash, randomFillSync } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { setMaxListeners } from 'node:events'
import { dirname } from 'node:path'
import { performance } from 'node:perf_hooks'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf, publicKeyFromProtobuf } from '@libp2p/crypto/keys'
import { identify, identifyPush } from '@libp2p/identify'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

export const ECHO_PROTOCOL = '/echo/1.0.0'
export const SINK_PROTOCOL = '/bench/sink/1.0.0'
const PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_LENGTH = 32
// js registrar defaults are 32 inbound / 64 outbound streams per protocol per connection; the
// 100-concurrent-streams case needs more.
const ECHO_MAX_STREAMS = 1024
// A paused js stream buffers what the remote already had window for (yamux windows grow up to
// 16 MiB); the default 4 MiB read-buffer cap would reset the stream, so allow more on echo streams.
const ECHO_READ_BUFFER = 64 * 1024 * 1024
const WRITE_CHUNK = 256 * 1024

const USAGE = `usage:
  peer listen [--listen MULTIADDR] [--key FILE] [--max-connections N]
  peer dial MULTIADDR/p2p/ID [--identify] [--ping N] [--echo BYTES] [--streams N --stream-bytes B] [--timeout SEC] [--key FILE]
            [--send BYTES] [--connect-latency N]
  either mode: [--security noise|tls] (the one security protocol offered; default noise)`

class UsageError extends Error {}

function log (...args) {
  if (process.env.PEER_QUIET !== '1') process.stderr.write(`[peer.mjs ${process.pid}] ${args.join(' ')}\n`)
}

function parseArgs (argv) {
  const mode = argv[0]
  if (mode !== 'listen' && mode !== 'dial') throw new UsageError(`unknown mode ${JSON.stringify(mode ?? '')}`)
  const opts = { mode, listen: '/ip4/127.0.0.1/tcp/0', timeout: 60 }
  const flags = new Set(['identify'])
  const valued = new Set(['listen', 'key', 'ping', 'echo', 'streams', 'stream-bytes', 'timeout',
    'send', 'connect-latency', 'max-connections', 'security'])
  const positional = []
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) { positional.push(a); continue }
    let name = a.slice(2)
    let value
    const eq = name.indexOf('=')
    if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq) }
    if (flags.has(name)) {
      if (value !== undefined) throw new UsageError(`--${name} takes no value`)
      opts[name] = true
    } else if (valued.has(name)) {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`)
        value = argv[++i]
      }
      opts[name] = value
    } else {
      throw new UsageError(`unknown flag --${name}`)
    }
  }
  const int = (name, min) => {
    if (opts[name] === undefined) return undefined
    const s = String(opts[name])
    if (!/^\d+$/.test(s) || Number(s) < min || !Number.isSafeInteger(Number(s))) throw new UsageError(`invalid --${name} ${JSON.stringify(s)}`)
    return Number(s)
  }
  opts.ping = int('ping', 1)
  opts.echo = int('echo', 0)
  opts.streams = int('streams', 1)
  opts['stream-bytes'] = int('stream-bytes', 0)
  opts.send = int('send', 1)
  opts['connect-latency'] = int('connect-latency', 1)
  opts['max-connections'] = int('max-connections', 1)
  opts.security = opts.security ?? 'noise'
  if (opts.security !== 'noise' && opts.security !== 'tls') throw new UsageError(`invalid --security ${JSON.stringify(opts.security)} (noise or tls)`)
  const t = Number(opts.timeout)
  if (!Number.isFinite(t) || t <= 0) throw new UsageError(`invalid --timeout ${JSON.stringify(opts.timeout)}`)
  opts.timeout = t
  if (mode === 'dial') {
    if (positional.length !== 1) throw new UsageError('dial needs exactly one MULTIADDR')
    opts.target = positional[0]
    if (opts.streams !== undefined && opts['stream-bytes'] === undefined) opts['stream-bytes'] = 64 * 1024
  } else if (positional.length !== 0) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`)
  }
  return opts
}

// Key file: a libp2p PrivateKey protobuf (as go-libp2p and our node write it). Created (0600,
// Ed25519) when missing.
async function loadKey (file) {
  if (file === undefined) return generateKeyPair('Ed25519')
  if (existsSync(file)) return privateKeyFromProtobuf(new Uint8Array(readFileSync(file)))
  const key = await generateKeyPair('Ed25519')
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  writeFileSync(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  return key
}

function forEachBuf (data, fn) {
  if (data instanceof Uint8Array) fn(data)
  else for (const buf of data) fn(buf) // Uint8ArrayList
}

// Echo server: every byte back, with backpressure (pause reading while our send buffer is full,
// which makes yamux withhold window updates), until the remote closes its write side; then close.
function handleEcho (stream) {
  stream.maxReadBufferLength = ECHO_READ_BUFFER
  let closing = false
  const finish = () => {
    if (closing) return
    closing = true
    stream.close().catch(err => stream.abort(err))
  }
  stream.addEventListener('message', (evt) => {
    try {
      if (!stream.send(evt.data)) stream.pause()
    } catch (err) {
      stream.abort(err)
    }
  })
  stream.addEventListener('drain', () => { if (stream.readStatus === 'paused') stream.resume() })
  stream.addEventListener('end', finish)
  if (stream.readableEnded) finish()
}

// Sink: reads (and drops) everything until the remote closes its write side; then closes.
function handleSink (stream) {
  let closing = false
  const finish = () => {
    if (closing) return
    closing = true
    stream.close().catch(err => stream.abort(err))
  }
  stream.addEventListener('message', () => {})
  stream.addEventListener('end', finish)
  if (stream.readableEnded) finish()
}

async function makeNode (opts) {
  const privateKey = await loadKey(opts.key)
  const max = opts['max-connections']
  const node = await createLibp2p({
    privateKey,
    addresses: { listen: opts.mode === 'listen' ? [opts.listen] : [] },
    ...(max !== undefined
      ? { connectionManager: { maxConnections: max, inboundConnectionThreshold: max, maxIncomingPendingConnections: 64 } }
      : {}),
    transports: [tcp()],
    connectionEncrypters: [opts.security === 'tls' ? tls() : noise()],
    streamMuxers: [yamux()],
    services: {
      // The dialer runs identify explicitly (and reports the raw answer), so it does not also run
      // it on connection open: identify allows one outbound stream per connection at a time.
      identify: identify({ runOnConnectionOpen: opts.mode === 'listen' }),
      identifyPush: identifyPush(),
      ping: ping()
    }
  })
  await node.handle(ECHO_PROTOCOL, handleEcho, {
    maxInboundStreams: ECHO_MAX_STREAMS,
    maxOutboundStreams: ECHO_MAX_STREAMS
  })
  await node.handle(SINK_PROTOCOL, handleSink)
  await node.start()
  return node
}

function hex (hash) { return hash.digest('hex') }

// What the remote said in its identify message, as it said it.
async function runIdentify (node, connection, signal) {
  const svc = node.services.identify
  let msg
  if (typeof svc._identify === 'function') {
    msg = await svc._identify(connection, { signal })
  } else {
    const r = await svc.identify(connection, { signal })
    msg = {
      agentVersion: r.agentVersion,
      protocolVersion: r.protocolVersion,
      protocols: r.protocols,
      listenAddrs: r.listenAddrs.map(a => a.bytes),
      observedAddr: r.observedAddr?.bytes,
      publicKey: r.publicKey
    }
  }
  const addr = (bytes) => {
    try { return multiaddr(bytes).toString() } catch (err) { return `<invalid multiaddr ${Buffer.from(bytes).toString('hex')}: ${err.message}>` }
  }
  let publicKeyPeerId = null
  if (msg.publicKey != null && msg.publicKey.byteLength > 0) {
    try {
      publicKeyPeerId = peerIdFromPublicKey(publicKeyFromProtobuf(msg.publicKey)).toString()
    } catch (err) {
      publicKeyPeerId = `<invalid public key: ${err.message}>`
    }
  }
  return {
    agent_version: msg.agentVersion ?? null,
    protocol_version: msg.protocolVersion ?? null,
    protocols: msg.protocols ?? [],
    listen_addrs: (msg.listenAddrs ?? []).map(addr),
    observed_addr: msg.observedAddr != null && msg.observedAddr.byteLength > 0 ? addr(msg.observedAddr) : null,
    public_key_peer_id: publicKeyPeerId
  }
}

// N pings of 32 random bytes on ONE stream (as go-libp2p does; the js server echoes any number),
// timed with a sub-millisecond clock. Then close our write side.
async function runPing (connection, count, signal) {
  const stream = await connection.newStream(PING_PROTOCOL, { signal })
  try {
    let pending = null
    let received = []
    let receivedLen = 0
    stream.addEventListener('message', (evt) => {
      forEachBuf(evt.data, (b) => { received.push(Buffer.from(b)); receivedLen += b.byteLength })
      if (pending && receivedLen >= PING_LENGTH) pending.resolve()
    })
    stream.addEventListener('close', (evt) => {
      pending?.reject(evt.error ?? new Error('ping stream closed by the remote before the pong'))
    })
    const rtts = []
    for (let i = 0; i < count; i++) {
      const data = randomFillSync(Buffer.alloc(PING_LENGTH))
      pending = Promise.withResolvers()
      const onAbort = () => pending.reject(new Error('ping timed out'))
      signal.addEventListener('abort', onAbort, { once: true })
      const start = performance.now()
      stream.send(data)
      await pending.promise
      const rtt = performance.now() - start
      signal.removeEventListener('abort', onAbort)
      pending = null
      const all = Buffer.concat(received)
      if (!all.subarray(0, PING_LENGTH).equals(data)) throw new Error(`ping ${i + 1}: wrong pong`)
      received = [all.subarray(PING_LENGTH)]
      receivedLen -= PING_LENGTH
      rtts.push(Math.round(rtt * 1000) / 1000)
    }
    await stream.close({ signal })
    return rtts
  } catch (err) {
    stream.abort(err)
    throw err
  }
}

// One echo stream: write `bytes` random bytes (honouring backpressure) while reading back
// concurrently; close our write side; read until the remote closes its side.
async function runEcho (connection, bytes, signal) {
  const started = performance.now()
  const stream = await connection.newStream(ECHO_PROTOCOL, { signal, maxOutboundStreams: ECHO_MAX_STREAMS })
  stream.maxReadBufferLength = ECHO_READ_BUFFER
  const sent = createHash('sha256')
  const recv = createHash('sha256')
  let receivedBytes = 0
  const done = Promise.withResolvers()
  stream.addEventListener('message', (evt) => {
    forEachBuf(evt.data, (b) => { recv.update(b); receivedBytes += b.byteLength })
    if (receivedBytes > bytes) done.reject(new Error(`echo: received more bytes (${receivedBytes}) than sent (${bytes})`))
  })
  stream.addEventListener('end', () => done.resolve())
  stream.addEventListener('close', (evt) => {
    if (evt.error) done.reject(evt.error)
    else done.resolve()
  })
  const onAbort = () => done.reject(new Error(`echo timed out (${receivedBytes}/${bytes} bytes back)`))
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    const writer = (async () => {
      let off = 0
      while (off < bytes) {
        const n = Math.min(WRITE_CHUNK, bytes - off)
        const chunk = randomFillSync(Buffer.allocUnsafe(n))
        sent.update(chunk)
        off += n
        if (!stream.send(chunk)) await stream.onDrain({ signal })
      }
      await stream.close({ signal })
    })()
    // If the writer fails, fail fast (the reader would otherwise wait for the timeout).
    writer.catch(err => done.reject(err))
    await Promise.all([writer, done.promise])
    if (receivedBytes !== bytes) throw new Error(`echo: received ${receivedBytes} of ${bytes} bytes`)
    return {
      bytes,
      sha256_sent: hex(sent),
      sha256_received: hex(recv),
      seconds: Math.round((performance.now() - started) / 1000 * 1e6) / 1e6
    }
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

// One stream, one direction: `bytes` bytes (one random chunk, sent again and again) to the sink,
// honouring backpressure; our close; then the sink's close, which says it has read everything.
async function runSend (connection, bytes, signal) {
  const chunk = randomFillSync(Buffer.allocUnsafe(WRITE_CHUNK))
  const started = performance.now()
  const stream = await connection.newStream(SINK_PROTOCOL, { signal })
  const done = Promise.withResolvers()
  stream.addEventListener('message', () => {})
  stream.addEventListener('end', () => done.resolve())
  stream.addEventListener('close', (evt) => {
    if (evt.error) done.reject(evt.error)
    else done.resolve()
  })
  const onAbort = () => done.reject(new Error('send timed out'))
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    let off = 0
    while (off < bytes) {
      const n = Math.min(WRITE_CHUNK, bytes - off)
      off += n
      if (!stream.send(n === WRITE_CHUNK ? chunk : chunk.subarray(0, n))) await stream.onDrain({ signal })
    }
    await stream.close({ signal })
    await done.promise
    return { bytes, seconds: Math.round((performance.now() - started) / 1000 * 1e6) / 1e6 }
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

// N fresh connections in sequence (force: no reuse), each timed from the dial to the first byte
// echoed on its first stream, then closed.
async function runConnectLatency (node, target, count, signal) {
  const samples = []
  for (let i = 0; i < count; i++) {
    const started = performance.now()
    const connection = await node.dial(target, { signal, force: true })
    const stream = await connection.newStream(ECHO_PROTOCOL, { signal })
    const echoed = Promise.withResolvers()
    stream.addEventListener('message', () => echoed.resolve())
    stream.addEventListener('close', (evt) => echoed.reject(evt.error ?? new Error('echo stream closed before the echo')))
    const onAbort = () => echoed.reject(new Error('connect-latency timed out'))
    signal.addEventListener('abort', onAbort, { once: true })
    stream.send(Uint8Array.of(i & 0xff))
    try {
      await echoed.promise
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
    samples.push(Math.round((performance.now() - started) * 1000) / 1000)
    await stream.close({ signal }).catch(() => {})
    await connection.close({ signal })
  }
  return samples
}

async function runStreams (connection, count, bytes, signal) {
  const results = await Promise.allSettled(Array.from({ length: count }, () => runEcho(connection, bytes, signal)))
  let ok = 0
  const errors = []
  for (const r of results) {
    if (r.status === 'fulfilled' && r.value.sha256_sent === r.value.sha256_received && r.value.bytes === bytes) ok++
    else errors.push(r.status === 'rejected' ? (r.reason?.message ?? String(r.reason)) : 'hash mismatch')
  }
  if (errors.length > 0) log(`streams: ${errors.length} failed, first errors: ${[...new Set(errors)].slice(0, 3).join(' | ')}`)
  return { opened: count, ok, failed: count - ok }
}

// An error with its name, causes and (for AggregateError) inner errors, on one line.
function describeError (err, depth = 0) {
  if (err == null || typeof err !== 'object') return String(err)
  let text = err.message || err.name || String(err)
  if (err.name && err.name !== 'Error' && !text.startsWith(err.name)) text = `${err.name}: ${text}`
  if (depth < 4 && Array.isArray(err.errors) && err.errors.length > 0) text += ` [${err.errors.map(e => describeError(e, depth + 1)).join('; ')}]`
  if (depth < 4 && err.cause != null) text += ` (cause: ${describeError(err.cause, depth + 1)})`
  return text
}

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

async function stopQuietly (node) {
  if (node == null) return
  await Promise.race([node.stop().catch(() => {}), new Promise(resolve => setTimeout(resolve, 3000).unref())])
}

async function listenMain (opts) {
  const node = await makeNode(opts)
  node.addEventListener('connection:open', (evt) => log(`connection from ${evt.detail.remotePeer} at ${evt.detail.remoteAddr}`))
  emit({ peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })
  let stopping = false
  const shutdown = async (why) => {
    if (stopping) return
    stopping = true
    log(`stopping (${why})`)
    await stopQuietly(node)
    process.exit(0)
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.stdin.on('end', () => shutdown('stdin EOF'))
  process.stdin.on('error', () => {})
  process.stdin.resume()
}

async function dialMain (opts) {
  const signal = AbortSignal.timeout(opts.timeout * 1000)
  setMaxListeners(Infinity, signal)
  // Hard stop in case something ignores the signal.
  const hard = setTimeout(() => {
    emit({ error: `timed out after ${opts.timeout}s (hard)` })
    process.exit(1)
  }, opts.timeout * 1000 + 5000)
  hard.unref()
  let node
  try {
    const target = multiaddr(opts.target)
    if (target.getComponents().find(c => c.name === 'p2p') == null) throw new UsageError('the dial address must end in /p2p/<peer id>')
    node = await makeNode(opts)
    let latency
    if (opts['connect-latency'] !== undefined) latency = await runConnectLatency(node, target, opts['connect-latency'], signal)
    const connection = await node.dial(target, { signal })
    const out = { remote_peer: connection.remotePeer.toString() }
    if (latency !== undefined) out.connect_latency_ms = latency
    if (opts.identify) out.identify = await runIdentify(node, connection, signal)
    if (opts.ping !== undefined) out.ping_rtts_ms = await runPing(connection, opts.ping, signal)
    if (opts.echo !== undefined) out.echo = await runEcho(connection, opts.echo, signal)
    if (opts.streams !== undefined) out.streams = await runStreams(connection, opts.streams, opts['stream-bytes'], signal)
    if (opts.send !== undefined) out.send = await runSend(connection, opts.send, signal)
    emit(out)
    await stopQuietly(node)
    process.exit(0)
  } catch (err) {
    const message = signal.aborted ? `timed out after ${opts.timeout}s: ${describeError(err)}` : describeError(err)
    emit({ error: message })
    await stopQuietly(node)
    process.exit(1)
  }
}

async function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2))
  } catch (err) {
    emit({ error: err.message })
    process.stderr.write(USAGE + '\n')
    process.exit(1)
  }
  if (opts.mode === 'listen') await listenMain(opts)
  else await dialMain(opts)
}

main().catch((err) => {
  emit({ error: err?.stack ?? String(err) })
  process.exit(1)
})
