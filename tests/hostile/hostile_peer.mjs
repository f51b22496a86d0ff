#!/usr/bin/env node
// js-libp2p peers for the hostile-peer suite (test_hostile.py) and the soak benchmark
// (bench/soak_bench.py): one honest peer that measures, and the attackers. Every mode is bounded
// in count and time, talks to loopback addresses only, and prints JSON lines on stdout
// (diagnostics go to stderr). TARGET is the node's /ip4/127.0.0.1/tcp/PORT/p2p/ID.
//
//   honest TARGET [--interval-ms 200] [--ping-timeout-ms 5000] [--fresh-every-ms N]
//                 [--fresh-timeout-ms 10000] [--dht-every-ms N] [--max-seconds 3600]
//     A long-lived honest peer: pings TARGET every interval on its connection (redialling when
//     it is gone), one line per ping {"kind":"ping","t":MS,"ok":true,"rtt_ms":R} or
//     {"kind":"ping","ok":false,"error":...}. --fresh-every-ms: also a second identity dials a
//     NEW connection (TCP, Noise, yamux), pings on it and hangs up, {"kind":"fresh","ok",..,
//     "ms"}. --dht-every-ms: a kad-dht client lookup (getClosestPeers of a random key) through
//     TARGET, {"kind":"dht","ok",..,"ms"}. First line {"ready":true,...}; stdin EOF (or
//     --max-seconds) stops it with {"kind":"done"}.
//
//   sybils TARGET --count N [--concurrency 8] [--maximal] [--seconds-max 240]
//     N fresh identities (serving identify only, not asking the node's), each: dial, answer the
//     node's identify (js-libp2p's own answer, or with
//     --maximal the largest the node accepts: 10 messages of just under 8 KiB each, packed with
//     distinct random 5-byte protocol names, the public key in the first), then hang up and stop.
//     One line at the end: {"count","ok","failed","seconds","identify_bytes","errors":[...]}.
//
//   oversized TARGET --count N [--concurrency 4]
//     N identities whose identify is over the limits, in rotation: one 64 KiB message ("big"),
//     10 messages of ~800 addresses each ("addrs", ~8,000 addresses), 40 messages of 8 KiB
//     ("many"), a 4 KiB agent version with addresses and protocols ("mixed"), and an ordinary
//     answer followed by 5 identify pushes of 10 maximal messages ("push"). Summary as sybils,
//     with per-variant counts.
//
//   streams TARGET --streams N [--hold 1000] [--seconds-max 120]
//     One peer, one connection, N streams opened as fast as the node takes them, rotating over
//     ping (held idle), kad (held idle), identify (read to the end) and an unknown protocol
//     (refused by negotiation); at most --hold open at once (the oldest is reset to make room).
//     When the node closes the connection, the peer dials again and goes on. Summary
//     {"opened","ok","refused","failed","connections","peak_open","seconds","errors"}, then it
//     holds its streams until stdin EOF.
//
//   dht TARGET [--peers 4] [--providers N] [--records N] [--queries N] [--streams 8]
//     DHT record flood: --peers identities, each on --streams kad streams, pipelines
//     ADD_PROVIDER (itself as provider of a fresh random key, 16 addresses), PUT_VALUE of fresh
//     valid /pk records, and FIND_NODE / GET_PROVIDERS / GET_VALUE queries (N of each kind in
//     all), then a PING on every stream to know the node has read everything.
//     Summary {"providers","records","records_acked","queries","answers","seconds","errors"}.
//
//   Every mode takes --source ADDR: the local address its TCP connections come from (a
//   127.0.0.x alias), so that attackers and the honest peer are different hosts to the node.
//
//   idle TARGET --count N [--concurrency 8]
//     N identities that dial and stay connected (idle: identify both ways, then nothing) until
//     stdin EOF. Lines {"connected":C,"failed":F,...} once all are up, {"kind":"done"} at the end.
import './polyfill.mjs'

import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { performance } from 'node:perf_hooks'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { identify, identifyPush } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const IDENTIFY = '/ipfs/id/1.0.0'
const IDENTIFY_PUSH = '/ipfs/id/push/1.0.0'
const PING = '/ipfs/ping/1.0.0'
const KAD = '/ipfs/kad/1.0.0'
// The node's limits (src/p2p/identify/identify.h): 8 KiB per message, 10 messages per stream.
const IDENTIFY_MAX_MESSAGE = 8 * 1024
const IDENTIFY_MAX_MESSAGES = 10

function log (...args) {
  if (process.env.PEER_QUIET !== '1') process.stderr.write(`[hostile ${process.pid} ${new Date().toISOString().slice(11, 23)}] ${args.join(' ')}\n`)
}

function emit (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }

function describeError (err, depth = 0) {
  if (err == null || typeof err !== 'object') return String(err)
  let text = err.message || err.name || String(err)
  if (err.name && err.name !== 'Error' && !text.startsWith(err.name)) text = `${err.name}: ${text}`
  if (depth < 3 && Array.isArray(err.errors) && err.errors.length > 0) text += ` [${err.errors.map(e => describeError(e, depth + 1)).join('; ')}]`
  if (depth < 3 && err.cause != null) text += ` (cause: ${describeError(err.cause, depth + 1)})`
  return text
}

function timeoutSignal (ms) {
  const signal = AbortSignal.timeout(ms)
  setMaxListeners(Infinity, signal)
  return signal
}

const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

// Distinct error messages, counted, at most `max` kinds kept.
class ErrorTally {
  constructor (max = 8) { this.max = max; this.counts = new Map() }
  add (err) {
    const text = describeError(err).slice(0, 300)
    if (this.counts.has(text) || this.counts.size < this.max) this.counts.set(text, (this.counts.get(text) ?? 0) + 1)
  }

  toJSON () { return [...this.counts].map(([error, count]) => ({ error, count })) }
}

// ---- protobuf, by hand: the few messages the attacks shape byte by byte ----

function varint (n) {
  const out = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return Uint8Array.from(out)
}

function concat (parts) {
  const total = parts.reduce((n, p) => n + p.byteLength, 0)
  const out = new Uint8Array(total)
  let off = 0
  for (const p of parts) { out.set(p, off); off += p.byteLength }
  return out
}

const utf8 = (s) => new TextEncoder().encode(s)
// A length-delimited field (wire type 2).
const bytesField = (no, bytes) => concat([varint((no << 3) | 2), varint(bytes.byteLength), bytes])
const varintField = (no, n) => concat([varint(no << 3), varint(n)])
const delimited = (message) => concat([varint(message.byteLength), message])

// Identify (identify spec): 1 publicKey, 2 listenAddrs, 3 protocols, 4 observedAddr,
// 5 protocolVersion, 6 agentVersion, 8 signedPeerRecord.
const ID_PUBLIC_KEY = 1
const ID_LISTEN_ADDRS = 2
const ID_PROTOCOLS = 3
const ID_PROTOCOL_VERSION = 5
const ID_AGENT_VERSION = 6

// Distinct 5-byte protocol names: "/" and 4 random base-36 characters.
const BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz'
function protocolNames (count) {
  const names = new Set()
  while (names.size < count) {
    const bytes = randomBytes(4 * (count - names.size))
    for (let i = 0; i < bytes.length && names.size < count; i += 4) {
      names.add('/' + BASE36[bytes[i] % 36] + BASE36[bytes[i + 1] % 36] + BASE36[bytes[i + 2] % 36] + BASE36[bytes[i + 3] % 36])
    }
  }
  return [...names]
}

// /ip4/10.x.y.z/tcp/PORT: 8 bytes (04 + 4 bytes + 06 + 2 bytes), distinct per index.
function ip4TcpAddr (i) {
  return Uint8Array.of(0x04, 10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff, 0x06, 0x0f, 0xa1)
}

// Fields of one kind packed into messages of at most `limit` bytes; `head` goes in the first.
function packMessages (fields, limit, head = new Uint8Array(0), maxMessages = Infinity) {
  const messages = []
  let current = [head]
  let size = head.byteLength
  for (const f of fields) {
    if (size + f.byteLength > limit) {
      messages.push(concat(current))
      if (messages.length >= maxMessages) return messages
      current = []
      size = 0
    }
    current.push(f)
    size += f.byteLength
  }
  if (size > 0 && messages.length < maxMessages) messages.push(concat(current))
  return messages
}

function identityHead (node) {
  return bytesField(ID_PUBLIC_KEY, publicKeyToProtobuf(node.peerId.publicKey ?? node.privateKey?.publicKey))
}

// The largest answer the node accepts: 10 messages, each under 8 KiB with its own content
// (a message must fit its length prefix in the limit too), packed with protocol names.
function maximalIdentify (node) {
  const head = identityHead(node)
  const perMessage = Math.floor((IDENTIFY_MAX_MESSAGE - 8) / 7)
  const names = protocolNames(perMessage * IDENTIFY_MAX_MESSAGES)
  const fields = names.map(n => bytesField(ID_PROTOCOLS, utf8(n)))
  return packMessages(fields, IDENTIFY_MAX_MESSAGE - 8, head, IDENTIFY_MAX_MESSAGES).map(delimited)
}

function oversizedIdentify (node, variant) {
  const head = identityHead(node)
  const protocols = (n) => protocolNames(n).map(p => bytesField(ID_PROTOCOLS, utf8(p)))
  const addrs = (n) => Array.from({ length: n }, (_, i) => bytesField(ID_LISTEN_ADDRS, ip4TcpAddr(i)))
  switch (variant) {
    case 'big': // one message of 64 KiB: over the 8 KiB limit
      return [delimited(concat([head, ...protocols(9300)]))]
    case 'addrs': // ~8,000 addresses in 10 messages
      return packMessages(addrs(8100), IDENTIFY_MAX_MESSAGE - 8, head, IDENTIFY_MAX_MESSAGES).map(delimited)
    case 'many': // 40 maximal messages: more than the 10 the node merges
      return packMessages(protocols(46000), IDENTIFY_MAX_MESSAGE - 8, head, 40).map(delimited)
    case 'mixed': { // long version strings, addresses and protocols
      const first = concat([head, bytesField(ID_AGENT_VERSION, utf8('x'.repeat(4000))),
        bytesField(ID_PROTOCOL_VERSION, utf8('y'.repeat(2000)))])
      const rest = []
      for (let i = 0; i < 5000; i++) rest.push(i % 2 === 0 ? bytesField(ID_LISTEN_ADDRS, ip4TcpAddr(i)) : bytesField(ID_PROTOCOLS, utf8(protocolNames(1)[0])))
      return packMessages(rest, IDENTIFY_MAX_MESSAGE - 8, first, IDENTIFY_MAX_MESSAGES).map(delimited)
    }
    default:
      throw new Error(`unknown variant ${variant}`)
  }
}

// Writes the messages on the stream (honouring backpressure) and closes our side.
async function writeAll (stream, messages, signal) {
  for (const m of messages) {
    if (!stream.send(m)) await stream.onDrain({ signal })
  }
  await stream.close({ signal })
}

// ---- nodes ----

function targetOf (text) {
  const ma = multiaddr(text)
  if (ma.getComponents().find(c => c.name === 'p2p') == null) throw new Error('TARGET needs /p2p/<peer id>')
  return ma
}

// The local address of every dial (--source), or the system's choice.
let dialSource = null

async function makeNode ({ dht = false, streams = 1000, bare = false, sybil = false } = {}) {
  // js ping allows one outbound ping stream per connection by default, and a stream closed by
  // the previous ping may not be gone yet when the next starts: a client-side refusal that is
  // not the node's doing.
  const services = { identify: identify(), identifyPush: identifyPush(), ping: ping({ maxOutboundStreams: 16 }) }
  // A bare node (the stream flooder) serves nothing: a protocol it serves itself would have its
  // handler's outbound stream limit apply to the flood.
  if (bare) for (const name of Object.keys(services)) delete services[name]
  // A sybil only answers the node's identify: it does not ask the node's (an attacker saves the
  // work) and serves no ping or identify push, whose handler would also limit the pushes it
  // sends to one stream at a time.
  if (sybil) {
    services.identify = identify({ runOnConnectionOpen: false })
    delete services.identifyPush
    delete services.ping
  }
  if (dht) services.dht = kadDHT({ clientMode: true, peerInfoMapper: passthroughMapper, allowQueryWithZeroPeers: false })
  return createLibp2p({
    addresses: { listen: [] },
    transports: [tcp(dialSource != null ? { dialOpts: { localAddress: dialSource } } : {})],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxOutboundStreams: streams, maxInboundStreams: streams })],
    connectionGater: { denyDialMultiaddr: () => false },
    services
  })
}

// Replaces the identify handler: `writer(stream, connection)` answers; the returned promise
// settles once the node has asked and we have answered (or failed to).
async function answerIdentifyWith (node, writer) {
  const served = Promise.withResolvers()
  await node.unhandle(IDENTIFY)
  await node.handle(IDENTIFY, async (stream, connection) => {
    try {
      await writer(stream, connection)
      served.resolve()
    } catch (err) {
      stream.abort(err)
      served.reject(err)
    }
  }, { maxInboundStreams: 4 })
  return served.promise
}

async function stopQuietly (node) {
  if (node == null) return
  await Promise.race([node.stop().catch(() => {}), sleep(3000)])
}

// Runs `task(i)` for i in [0, count) with `concurrency` workers; stops starting new ones after
// `deadline` (performance.now() ms).
async function pool (count, concurrency, deadline, task) {
  let next = 0
  const worker = async () => {
    while (next < count && performance.now() < deadline) await task(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return next
}

// ---- modes ----

async function honestMain (target, opts) {
  const interval = Number(opts['interval-ms'] ?? 200)
  const pingTimeout = Number(opts['ping-timeout-ms'] ?? 5000)
  const freshEvery = opts['fresh-every-ms'] !== undefined ? Number(opts['fresh-every-ms']) : null
  const freshTimeout = Number(opts['fresh-timeout-ms'] ?? 10000)
  const dhtEvery = opts['dht-every-ms'] !== undefined ? Number(opts['dht-every-ms']) : null
  const maxSeconds = Number(opts['max-seconds'] ?? 3600)
  const node = await makeNode({ dht: dhtEvery != null })
  const fresh = freshEvery != null ? await makeNode() : null
  let stopping = false
  const stopped = Promise.withResolvers()
  const stop = async (why) => {
    if (stopping) return
    stopping = true
    log(`honest: stopping (${why})`)
    stopped.resolve()
  }
  process.stdin.on('end', () => stop('stdin EOF'))
  process.stdin.on('error', () => {})
  process.stdin.resume()
  setTimeout(() => stop('max seconds'), maxSeconds * 1000).unref()

  // The first connection is part of the setup: fail loudly if it does not come up.
  await node.dial(target, { signal: timeoutSignal(20000) })
  await node.services.ping.ping(target, { signal: timeoutSignal(pingTimeout) })
  emit({ ready: true, peer_id: node.peerId.toString(), fresh_peer_id: fresh?.peerId.toString() ?? null })

  const pinger = (async () => {
    while (!stopping) {
      const started = performance.now()
      const t = Date.now()
      try {
        const rtt = await node.services.ping.ping(target, { signal: timeoutSignal(pingTimeout) })
        emit({ kind: 'ping', t, ok: true, rtt_ms: Math.round((performance.now() - started) * 1000) / 1000, rtt_reported_ms: rtt })
      } catch (err) {
        emit({ kind: 'ping', t, ok: false, ms: Math.round(performance.now() - started), error: describeError(err).slice(0, 300) })
      }
      const wait = interval - (performance.now() - started)
      if (wait > 0 && !stopping) await Promise.race([sleep(wait), stopped.promise])
    }
  })()

  const freshDialer = fresh == null
    ? Promise.resolve()
    : (async () => {
        while (!stopping) {
          const started = performance.now()
          const t = Date.now()
          let connection
          try {
            const signal = timeoutSignal(freshTimeout)
            connection = await fresh.dial(target, { signal, force: true })
            await fresh.services.ping.ping(target, { signal })
            emit({ kind: 'fresh', t, ok: true, ms: Math.round(performance.now() - started) })
          } catch (err) {
            emit({ kind: 'fresh', t, ok: false, ms: Math.round(performance.now() - started), error: describeError(err).slice(0, 300) })
          }
          await fresh.hangUp(target).catch(() => {})
          if (connection != null) await connection.close().catch(() => {})
          const wait = freshEvery - (performance.now() - started)
          if (wait > 0 && !stopping) await Promise.race([sleep(wait), stopped.promise])
        }
      })()

  const lookups = dhtEvery == null
    ? Promise.resolve()
    : (async () => {
        while (!stopping) {
          const started = performance.now()
          const t = Date.now()
          try {
            let peers = 0
            for await (const ev of node.services.dht.getClosestPeers(randomBytes(32), { signal: timeoutSignal(10000) })) {
              if (ev.name === 'FINAL_PEER') peers++
            }
            emit({ kind: 'dht', t, ok: true, ms: Math.round(performance.now() - started), peers })
          } catch (err) {
            emit({ kind: 'dht', t, ok: false, ms: Math.round(performance.now() - started), error: describeError(err).slice(0, 300) })
          }
          const wait = dhtEvery - (performance.now() - started)
          if (wait > 0 && !stopping) await Promise.race([sleep(wait), stopped.promise])
        }
      })()

  await Promise.all([pinger, freshDialer, lookups])
  emit({ kind: 'done' })
  await Promise.all([stopQuietly(node), stopQuietly(fresh)])
  process.exit(0)
}

// One identity: dial, let the node identify us (with `answer`), hang up, stop.
async function oneIdentity (target, answer, timeoutMs) {
  const node = await makeNode({ sybil: true })
  try {
    const signal = timeoutSignal(timeoutMs)
    const served = answer(node, signal)
    served.catch(() => {})
    await node.dial(target, { signal })
    await Promise.race([served, new Promise((resolve, reject) => signal.addEventListener('abort', () => reject(new Error('the node did not ask for identify in time')), { once: true }))])
    await node.hangUp(target).catch(() => {})
  } finally {
    await stopQuietly(node)
  }
}

async function sybilsMain (target, opts) {
  const count = Number(opts.count)
  const concurrency = Number(opts.concurrency ?? 8)
  const maximal = opts.maximal === true
  const deadline = performance.now() + Number(opts['seconds-max'] ?? 240) * 1000
  const errors = new ErrorTally()
  let ok = 0
  let failed = 0
  let bytes = 0
  const started = performance.now()
  const attempted = await pool(count, concurrency, deadline, async () => {
    try {
      await oneIdentity(target, (node) => answerIdentifyWith(node, async (stream, connection) => {
        if (!maximal) return node.services.identify.handleProtocol(stream, connection)
        const messages = maximalIdentify(node)
        bytes = messages.reduce((n, m) => n + m.byteLength, 0)
        await writeAll(stream, messages, timeoutSignal(10000))
      }), 20000)
      ok++
    } catch (err) {
      failed++
      errors.add(err)
    }
  })
  emit({ count, attempted, ok, failed, seconds: (performance.now() - started) / 1000, identify_bytes: maximal ? bytes : null, errors })
}

const OVERSIZED_VARIANTS = ['big', 'addrs', 'many', 'mixed', 'push']

async function oversizedMain (target, opts) {
  const count = Number(opts.count)
  const concurrency = Number(opts.concurrency ?? 4)
  const deadline = performance.now() + Number(opts['seconds-max'] ?? 120) * 1000
  const errors = new ErrorTally()
  const variants = Object.fromEntries(OVERSIZED_VARIANTS.map(v => [v, 0]))
  let ok = 0
  let failed = 0
  const started = performance.now()
  const attempted = await pool(count, concurrency, deadline, async (i) => {
    const variant = OVERSIZED_VARIANTS[i % OVERSIZED_VARIANTS.length]
    try {
      await oneIdentity(target, (node, signal) => answerIdentifyWith(node, async (stream, connection) => {
        if (variant !== 'push') {
          // The node may stop reading (and reset) once we are over its limits: that is its
          // right, so a failed write is not our failure.
          await writeAll(stream, oversizedIdentify(node, variant), signal).catch(() => {})
          return
        }
        await node.services.identify.handleProtocol(stream, connection)
        for (let n = 0; n < 5; n++) {
          const push = await connection.newStream(IDENTIFY_PUSH, { signal, maxOutboundStreams: 8 })
          const messages = packMessages([
            ...protocolNames(600).map(p => bytesField(ID_PROTOCOLS, utf8(p))),
            ...Array.from({ length: 5000 }, (_, k) => bytesField(ID_LISTEN_ADDRS, ip4TcpAddr(k + n * 5000)))
          ], IDENTIFY_MAX_MESSAGE - 8, identityHead(node), IDENTIFY_MAX_MESSAGES).map(delimited)
          await writeAll(push, messages, signal).catch(() => {})
        }
      }), 20000)
      variants[variant]++
      ok++
    } catch (err) {
      failed++
      errors.add(err)
    }
  })
  emit({ count, attempted, ok, failed, variants, seconds: (performance.now() - started) / 1000, errors })
}

async function streamsMain (target, opts) {
  const total = Number(opts.streams)
  const hold = Number(opts.hold ?? 1000)
  const deadline = performance.now() + Number(opts['seconds-max'] ?? 120) * 1000
  const node = await makeNode({ streams: total + 16, bare: true })
  const errors = new ErrorTally()
  const open = []
  let opened = 0
  let ok = 0
  let refused = 0
  let failed = 0
  let peak = 0
  const started = performance.now()
  // When the node closes the connection (its defence against the flood), dial again and go on:
  // a persistent attacker would.
  let connection = null
  let dialling = null
  let connections = 0
  const current = async () => {
    if (connection != null && connection.status === 'open') return connection
    if (dialling == null) {
      dialling = node.dial(target, { signal: timeoutSignal(20000), force: true })
        .then(c => { connection = c; connections++; return c })
        .finally(() => { dialling = null })
    }
    return dialling
  }
  await current()
  const kinds = [PING, KAD, IDENTIFY, '/hostile/unknown/1.0.0']
  const one = async (i) => {
    const protocol = kinds[i % kinds.length]
    try {
      const stream = await (await current()).newStream(protocol, { signal: timeoutSignal(10000), maxOutboundStreams: total + 16 })
      if (protocol === IDENTIFY) {
        stream.addEventListener('message', () => {})
        await stream.close().catch(() => {})
      } else {
        // Held idle: the node keeps its side until it times the stream out or we reset it.
        stream.addEventListener('message', () => {})
        open.push(stream)
        while (open.length > hold) open.shift().abort(new Error('making room'))
        peak = Math.max(peak, open.length)
      }
      ok++
    } catch (err) {
      if (/protocol selection failed|not supported/i.test(describeError(err))) refused++
      else { failed++; errors.add(err) }
    }
  }
  // 64 negotiations in flight at a time.
  await pool(total, 64, deadline, async (i) => { opened++; await one(i) })
  const heldAtEnd = open.length
  emit({ kind: 'flooded', opened, ok, refused, failed, connections, peak_open: peak, held_at_end: heldAtEnd, seconds: (performance.now() - started) / 1000, errors })
  // Hold the streams until told to go (stdin EOF), so the node can be measured under them.
  await new Promise(resolve => { process.stdin.on('end', resolve); process.stdin.on('error', resolve); process.stdin.resume() })
  for (const s of open) s.abort(new Error('done'))
  await node.hangUp(target).catch(() => {})
  await stopQuietly(node)
  emit({ kind: 'done' })
}

// Kad message (go-libp2p-kad-dht pb/dht.proto): 1 type, 2 key, 3 record {1 key, 2 value},
// 8 closerPeers, 9 providerPeers {1 id, 2 addrs}.
const KAD_PUT_VALUE = 0
const KAD_GET_VALUE = 1
const KAD_ADD_PROVIDER = 2
const KAD_GET_PROVIDERS = 3
const KAD_FIND_NODE = 4
const KAD_PING = 5

const kadMessage = (type, key, extra = []) => concat([varintField(1, type), bytesField(2, key), ...extra])

// A fresh valid /pk record: key "/pk/" + identity multihash of the PublicKey protobuf, value
// the PublicKey protobuf (Ed25519).
function pkRecord () {
  const { publicKey } = generateKeyPairSync('ed25519')
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
  const proto = concat([Uint8Array.of(0x08, 0x01, 0x12, 0x20), raw])
  const multihash = concat([Uint8Array.of(0x00, proto.byteLength), proto])
  const key = concat([utf8('/pk/'), multihash])
  return { key, value: proto }
}

// Reads uvarint-length-prefixed frames from a stream; calls onFrame(bytes) for each.
function frameReader (stream, onFrame) {
  let buffer = new Uint8Array(0)
  stream.addEventListener('message', (evt) => {
    const chunk = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
    buffer = buffer.byteLength === 0 ? chunk : concat([buffer, chunk])
    for (;;) {
      let len = 0
      let shift = 0
      let i = 0
      for (; i < buffer.byteLength && i < 10; i++) {
        len += (buffer[i] & 0x7f) * 2 ** shift
        shift += 7
        if ((buffer[i] & 0x80) === 0) break
      }
      if (i >= buffer.byteLength || buffer.byteLength < i + 1 + len) return
      onFrame(buffer.subarray(i + 1, i + 1 + len))
      buffer = buffer.subarray(i + 1 + len)
    }
  })
}

async function dhtMain (target, opts) {
  const peers = Number(opts.peers ?? 4)
  const providers = Number(opts.providers ?? 0)
  const records = Number(opts.records ?? 0)
  const queries = Number(opts.queries ?? 0)
  const streamsPerPeer = Number(opts.streams ?? 8)
  const deadline = timeoutSignal(Number(opts['seconds-max'] ?? 180) * 1000)
  const errors = new ErrorTally()
  let acked = 0
  let answers = 0
  let pongs = 0
  let streamsReset = 0
  const started = performance.now()
  const share = (n, p) => Math.floor(n / peers) + (p < n % peers ? 1 : 0)
  await Promise.all(Array.from({ length: peers }, async (_, p) => {
    const node = await makeNode()
    try {
      const connection = await node.dial(target, { signal: deadline })
      const self = node.peerId.toMultihash().bytes
      const addrs = Array.from({ length: 16 }, (_, k) => bytesField(2, ip4TcpAddr(p * 16 + k)))
      const providerPeer = bytesField(9, concat([bytesField(1, self), ...addrs]))
      // Requests of this peer, dealt to its streams in turn, built lazily.
      const requests = []
      for (let i = 0; i < share(providers, p); i++) requests.push(() => kadMessage(KAD_ADD_PROVIDER, randomBytes(34), [providerPeer]))
      for (let i = 0; i < share(records, p); i++) {
        requests.push(() => {
          const r = pkRecord()
          return kadMessage(KAD_PUT_VALUE, r.key, [bytesField(3, concat([bytesField(1, r.key), bytesField(2, r.value)]))])
        })
      }
      for (let i = 0; i < share(queries, p); i++) {
        const type = [KAD_FIND_NODE, KAD_GET_PROVIDERS, KAD_GET_VALUE][i % 3]
        requests.push(() => kadMessage(type, type === KAD_GET_VALUE ? concat([utf8('/pk/'), randomBytes(34)]) : randomBytes(34)))
      }
      await Promise.all(Array.from({ length: streamsPerPeer }, async (_, s) => {
        try {
          await floodStream(connection, requests, s)
        } catch (err) {
          // The node may reset a stream (a request it refuses, e.g. a record when its store is
          // full, or a limit of its own): its right; what was sent before counts.
          if (/reset|closed/i.test(describeError(err))) streamsReset++
          else throw err
        }
      }))
      await node.hangUp(target).catch(() => {})
    } catch (err) {
      errors.add(err)
    } finally {
      await stopQuietly(node)
    }
  }))
  emit({ peers, providers, records, records_acked: acked, queries, answers, pongs, streams: peers * streamsPerPeer, streams_reset: streamsReset, seconds: (performance.now() - started) / 1000, errors })

  async function floodStream (connection, requests, s) {
    const stream = await connection.newStream(KAD, { signal: deadline, maxOutboundStreams: 64 })
    const done = Promise.withResolvers()
    done.promise.catch(() => {})
    frameReader(stream, (frame) => {
      const type = frame[0] === 0x08 ? frame[1] : 0 // field 1 first, as every encoder writes it
      if (type === KAD_PING) { pongs++; done.resolve() } else if (type === KAD_PUT_VALUE) acked++
      else answers++
    })
    stream.addEventListener('close', (evt) => done.reject(evt.error ?? new Error('kad stream closed before the final PING answer')))
    deadline.addEventListener('abort', () => done.reject(new Error('timed out')), { once: true })
    for (let i = s; i < requests.length; i += streamsPerPeer) {
      if (!stream.send(delimited(requests[i]()))) await stream.onDrain({ signal: deadline })
    }
    stream.send(delimited(kadMessage(KAD_PING, new Uint8Array(0))))
    await done.promise
    await stream.close({ signal: deadline }).catch(() => {})
  }
}

async function idleMain (target, opts) {
  const count = Number(opts.count)
  const concurrency = Number(opts.concurrency ?? 8)
  const nodes = []
  const errors = new ErrorTally()
  let connected = 0
  let failed = 0
  const started = performance.now()
  await pool(count, concurrency, performance.now() + 120000, async () => {
    let node
    try {
      node = await makeNode()
      await node.dial(target, { signal: timeoutSignal(20000) })
      nodes.push(node)
      connected++
    } catch (err) {
      failed++
      errors.add(err)
      await stopQuietly(node)
    }
  })
  emit({ kind: 'connected', connected, failed, seconds: (performance.now() - started) / 1000, errors })
  await new Promise(resolve => { process.stdin.on('end', resolve); process.stdin.on('error', resolve); process.stdin.resume() })
  let still = 0
  for (const n of nodes) if (n.getConnections().length > 0) still++
  await Promise.all(nodes.map(stopQuietly))
  emit({ kind: 'done', still_connected: still })
}

function parseArgs (argv) {
  const opts = { _: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) { opts._.push(a); continue }
    const name = a.slice(2)
    if (name === 'maximal') { opts.maximal = true; continue }
    if (i + 1 >= argv.length) throw new Error(`--${name} needs a value`)
    opts[name] = argv[++i]
  }
  return opts
}

async function main () {
  const [mode, ...rest] = process.argv.slice(2)
  const opts = parseArgs(rest)
  if (opts._.length !== 1) throw new Error(`usage: hostile_peer.mjs MODE TARGET [options] (see the head of the file)`)
  const target = targetOf(opts._[0])
  if (opts.source != null) dialSource = opts.source
  const modes = { honest: honestMain, sybils: sybilsMain, oversized: oversizedMain, streams: streamsMain, dht: dhtMain, idle: idleMain }
  if (modes[mode] == null) throw new Error(`unknown mode ${JSON.stringify(mode)}`)
  await modes[mode](target, opts)
}

main().then(() => process.exit(0), (err) => {
  emit({ error: describeError(err) })
  process.exit(1)
})
