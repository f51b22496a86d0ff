#!/usr/bin/env node
// The gossipsub benchmark's measuring side (bench/pubsub_bench.py runs it): one publisher and
// N-1 subscribers on one topic, the same topology, message format, phases and arithmetic for
// both implementations.
//
//   node --import ../../tests/interop/polyfill.mjs pubsub_bench.mjs ours --sockets A,B,... --pids P,Q,...
//       drives running `agentnetwork p2pd -pubsub` nodes through their control sockets (CONNECT,
//       PUBSUB SUBSCRIBE / PUBLISH / LIST_PEERS); node 0 publishes.
//   node --import ../../tests/interop/polyfill.mjs pubsub_bench.mjs js --nodes 30 --procs 2
//       starts N js-libp2p nodes with @libp2p/gossipsub 17 (TCP, Noise, yamux), spread over
//       --procs worker processes, and drives them over IPC; node 0 publishes.
// Common options: --topic T --size BYTES (1024) --degree D (each node dials D earlier nodes;
//   6) --seed S --warmup N --latency-count N --latency-rate R (messages/s) --rates R1,R2,...
//   --step-seconds S --drain-seconds S
//
// Phases: warm-up (every message must reach every subscriber), latency (a steady low rate: the
// time from publish to each delivery, and to the last subscriber of each message; bytes the
// nodes wrote per delivery), then a rate ramp (each step --step-seconds at a publish rate,
// then up to --drain-seconds for stragglers; the sustained rate is the highest step that lost
// nothing and that the publisher kept up with). Each message carries its sequence number and
// the publish time (CLOCK_MONOTONIC, shared by every process on the machine).
// Bytes sent: the kernel's count of what the node processes' TCP connections sent (ss -ti
// bytes_sent, summed over the sockets those PIDs hold): Noise-encrypted muxer frames, whatever
// the language's write calls; the control sockets (Unix) are not TCP, so not counted.
// Output: one JSON line on stdout; progress on stderr. Loopback and Unix sockets only.
import { execFileSync, fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)
const MESH_WAIT_MS = 60_000
// Heartbeats (1 s) that graft the meshes once every node knows its neighbours' subscriptions.
const MESH_SETTLE_MS = 3000
const PUBLISH_WINDOW = 64
const TICK_MS = 5

function log (text) { process.stderr.write(`[pubsub_bench.mjs] ${text}\n`) }
function sleep (ms) { return new Promise(resolve => setTimeout(resolve, ms)) }
const nowNs = () => process.hrtime.bigint()

function parseOptions (argv) {
  const o = {
    impl: argv[0], sockets: [], pids: [], nodes: 30, procs: 2, topic: 'bench-topic', size: 1024, degree: 6,
    seed: 1, warmup: 20, latencyCount: 200, latencyRate: 100, rates: [500, 1000, 2000, 4000, 8000],
    stepSeconds: 3, drainSeconds: 3
  }
  const names = {
    '--sockets': v => { o.sockets = v.split(',') },
    '--pids': v => { o.pids = v.split(',').map(Number) },
    '--nodes': v => { o.nodes = Number(v) },
    '--procs': v => { o.procs = Number(v) },
    '--topic': v => { o.topic = v },
    '--size': v => { o.size = Number(v) },
    '--degree': v => { o.degree = Number(v) },
    '--seed': v => { o.seed = Number(v) },
    '--warmup': v => { o.warmup = Number(v) },
    '--latency-count': v => { o.latencyCount = Number(v) },
    '--latency-rate': v => { o.latencyRate = Number(v) },
    '--rates': v => { o.rates = v.split(',').map(Number) },
    '--step-seconds': v => { o.stepSeconds = Number(v) },
    '--drain-seconds': v => { o.drainSeconds = Number(v) }
  }
  for (let i = 1; i < argv.length; i += 2) {
    const set = names[argv[i]]
    if (set == null || argv[i + 1] == null) throw new Error(`bad argument ${argv[i]}`)
    set(argv[i + 1])
  }
  if (o.impl === 'ours') o.nodes = o.sockets.length
  if (o.size < 16) throw new Error('--size must be at least 16 (sequence number and time)')
  return o
}

// ---- messages and what the subscribers saw -------------------------------------------------

function makeMessage (seq, size) {
  const data = Buffer.alloc(size, 0x61)
  data.writeBigUInt64BE(BigInt(seq), 0)
  data.writeBigUInt64BE(nowNs(), 8)
  return data
}

// Deliveries of one phase (sequence numbers lo..hi-1), per subscriber.
class Recorder {
  constructor (subscribers) {
    this.subscribers = subscribers
    this.begin(0, 0, false)
  }

  begin (lo, hi, latency) {
    this.lo = lo
    this.hi = hi
    this.latency = latency
    this.seen = Array.from({ length: this.subscribers }, () => new Uint8Array(Math.max(hi - lo, 0)))
    this.received = new Array(this.subscribers).fill(0)
    this.duplicates = 0
    this.latenciesMs = []
    this.lastMs = new Float64Array(Math.max(hi - lo, 0))  // per message: its latest delivery
  }

  record (subscriber, data) {
    if (data.length < 16) return
    const at = nowNs()
    const seq = Number(data.readBigUInt64BE(0))
    if (seq < this.lo || seq >= this.hi) return
    const slot = seq - this.lo
    const seen = this.seen[subscriber]
    if (seen[slot]) {
      ++this.duplicates
      return
    }
    seen[slot] = 1
    ++this.received[subscriber]
    if (this.latency) {
      const ms = Number(at - data.readBigUInt64BE(8)) / 1e6
      this.latenciesMs.push(ms)
      if (ms > this.lastMs[slot]) this.lastMs[slot] = ms
    }
  }

  complete (expected) { return this.received.every(n => n >= expected) }

  summary () {
    return {
      received: this.received,
      duplicates: this.duplicates,
      latencies_ms: this.latency ? this.latenciesMs : [],
      last_ms: this.latency ? Array.from(this.lastMs) : []
    }
  }
}

function percentile (values, p) {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}

// Mulberry32: the same topology for both implementations.
function random (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// Node i dials min(i, degree) distinct earlier nodes.
function topology (nodes, degree, seed) {
  const next = random(seed)
  const edges = []
  for (let i = 1; i < nodes; i++) {
    const chosen = new Set()
    while (chosen.size < Math.min(i, degree)) chosen.add(Math.floor(next() * i))
    for (const j of chosen) edges.push([i, j])
  }
  return edges
}

// Publishes `count` messages from `first` at `rate` per second, at most PUBLISH_WINDOW
// unanswered. Returns { sent, failed, seconds }.
async function pacedPublish (publish, first, count, rate, size) {
  const started = nowNs()
  let sent = 0
  let failed = 0
  let inFlight = 0
  let wake = null
  const settle = () => { --inFlight; if (wake) { const w = wake; wake = null; w() } }
  while (sent < count) {
    const due = Math.min(count, Math.floor(Number(nowNs() - started) / 1e9 * rate) + 1)
    while (sent < due && inFlight < PUBLISH_WINDOW) {
      ++inFlight
      const data = makeMessage(first + sent, size)
      ++sent
      publish(data).catch(() => { ++failed }).finally(settle)
    }
    if (inFlight >= PUBLISH_WINDOW) await new Promise(resolve => { wake = resolve })
    else if (sent < count) await sleep(TICK_MS)
  }
  while (inFlight > 0) await new Promise(resolve => { wake = resolve })
  return { sent, failed, seconds: Number(nowNs() - started) / 1e9 }
}

function rssKib (pid) {
  return Number(/VmRSS:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1])
}

// Bytes sent so far on each established TCP connection of these processes, by connection.
function tcpBytesSent (pids) {
  const wanted = new Set(pids)
  const out = execFileSync('ss', ['-tinpH', 'state', 'established'], { encoding: 'utf8', maxBuffer: 64 << 20 })
  const sockets = new Map()
  let key = null
  for (const line of out.split('\n')) {
    if (line.length === 0) continue
    if (!/^\s/.test(line)) {
      const owned = [...line.matchAll(/pid=(\d+)/g)].some(m => wanted.has(Number(m[1])))
      const [, , local, remote] = line.trim().split(/\s+/)
      key = owned ? `${local}>${remote}` : null
    } else if (key != null) {
      const sent = /bytes_sent:(\d+)/.exec(line)
      sockets.set(key, sent != null ? Number(sent[1]) : 0)
    }
  }
  return sockets
}

// What the connections sent between two samples; a connection closed in between takes its
// count with it, so the figure is then a lower bound (`closed` says how many).
function sentBetween (before, after) {
  let bytes = 0
  for (const [key, sent] of after) bytes += sent - (before.get(key) ?? 0)
  let closed = 0
  for (const key of before.keys()) if (!after.has(key)) ++closed
  return { bytes, closed }
}

// ---- protobuf, just what the p2pd control protocol needs -------------------------------------

function varint (n) {
  const out = []
  let v = BigInt(n)
  do {
    let byte = Number(v & 0x7fn)
    v >>= 7n
    if (v > 0n) byte |= 0x80
    out.push(byte)
  } while (v > 0n)
  return Buffer.from(out)
}
const fieldVarint = (field, value) => Buffer.concat([varint(field << 3), varint(value)])
const fieldBytes = (field, bytes) => Buffer.concat([varint((field << 3) | 2), varint(bytes.length), Buffer.from(bytes)])

function readVarint (buf, pos) {
  let value = 0
  let shift = 0
  for (;;) {
    if (pos >= buf.length) return null
    const byte = buf[pos++]
    value += (byte & 0x7f) * 2 ** shift
    shift += 7
    if ((byte & 0x80) === 0) return [value, pos]
  }
}

// field number -> [values] (numbers for varints, Buffers for length-delimited fields).
function parseMessage (buf) {
  const fields = {}
  let pos = 0
  while (pos < buf.length) {
    const [key, afterKey] = readVarint(buf, pos)
    const field = Math.floor(key / 8)
    const wire = key & 7
    let value
    if (wire === 0) {
      [value, pos] = readVarint(buf, afterKey)
    } else if (wire === 2) {
      const [length, start] = readVarint(buf, afterKey)
      value = buf.subarray(start, start + length)
      pos = start + length
    } else {
      throw new Error(`unexpected wire type ${wire}`)
    }
    (fields[field] ??= []).push(value)
  }
  return fields
}

const REQUEST = { IDENTIFY: 0, CONNECT: 1, PUBSUB: 8 }
const PS = { GET_TOPICS: 0, LIST_PEERS: 1, PUBLISH: 2, SUBSCRIBE: 3 }

function psRequest (type, topic, data) {
  const body = [fieldVarint(1, type), fieldBytes(2, Buffer.from(topic))]
  if (data != null) body.push(fieldBytes(3, data))
  return Buffer.concat([fieldVarint(1, REQUEST.PUBSUB), fieldBytes(8, Buffer.concat(body))])
}

// One control connection: requests answered in order; after SUBSCRIBE, a stream of PSMessages.
class Control {
  static open (path) {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path }, () => resolve(new Control(socket)))
      socket.once('error', reject)
    })
  }

  constructor (socket) {
    this.socket = socket
    this.buffer = Buffer.alloc(0)
    this.pending = []
    this.onStream = null  // (frame) => void once subscribed
    socket.on('data', chunk => this.receive(chunk))
    socket.on('error', () => {})
    socket.on('close', () => { for (const p of this.pending.splice(0)) p.reject(new Error('control connection closed')) })
  }

  receive (chunk) {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
    let pos = 0
    for (;;) {
      const prefix = readVarint(this.buffer, pos)
      if (prefix == null || prefix[1] + prefix[0] > this.buffer.length) break
      const frame = this.buffer.subarray(prefix[1], prefix[1] + prefix[0])
      pos = prefix[1] + prefix[0]
      const waiter = this.pending.shift()
      if (waiter != null) waiter.resolve(frame)
      else if (this.onStream != null) this.onStream(frame)
    }
    this.buffer = pos === this.buffer.length ? Buffer.alloc(0) : Buffer.from(this.buffer.subarray(pos))
  }

  async request (body) {
    const answer = new Promise((resolve, reject) => this.pending.push({ resolve, reject }))
    this.socket.write(Buffer.concat([varint(body.length), body]))
    const response = parseMessage(await answer)
    if ((response[1]?.[0] ?? 0) !== 0) {
      const error = response[2] ? parseMessage(response[2][0])[1]?.[0]?.toString() : 'error'
      throw new Error(error)
    }
    return response
  }

  close () { this.socket.destroy() }
}

// ---- ours: p2pd processes ---------------------------------------------------------------------

class OursCluster {
  constructor (o) { this.o = o }

  async start () {
    this.controls = await Promise.all(this.o.sockets.map(path => Control.open(path)))
    this.nodes = []
    for (const control of this.controls) {
      const identify = parseMessage((await control.request(fieldVarint(1, REQUEST.IDENTIFY)))[4][0])
      this.nodes.push({ id: identify[1][0], addrs: identify[2] ?? [] })
    }
  }

  async connect (from, to) {
    const target = this.nodes[to]
    const connect = Buffer.concat([fieldBytes(1, target.id), ...target.addrs.map(a => fieldBytes(2, a))])
    await this.controls[from].request(Buffer.concat([fieldVarint(1, REQUEST.CONNECT), fieldBytes(2, connect)]))
  }

  async subscribe (onDelivery) {
    this.subscriptions = []
    for (let i = 0; i < this.nodes.length; i++) {
      const control = await Control.open(this.o.sockets[i])
      await control.request(psRequest(PS.SUBSCRIBE, this.o.topic))
      control.onStream = (frame) => {
        const data = parseMessage(frame)[2]?.[0]
        if (data != null) onDelivery(i, data)
      }
      this.subscriptions.push(control)
    }
  }

  async topicPeers () {
    const counts = []
    for (const control of this.controls) {
      const response = await control.request(psRequest(PS.LIST_PEERS, this.o.topic))
      counts.push(response[7] ? (parseMessage(response[7][0])[2] ?? []).length : 0)
    }
    return counts
  }

  async publishPhase (first, count, rate) {
    const control = this.controls[0]
    return pacedPublish(data => control.request(psRequest(PS.PUBLISH, this.o.topic, data)), first, count, rate, this.o.size)
  }

  pids () { return this.o.pids }
  nodesPerPid () { return 1 }
  async stop () { for (const c of [...this.controls, ...(this.subscriptions ?? [])]) c.close() }
}

// ---- js: worker processes hosting js-libp2p nodes ------------------------------------------

class JsCluster {
  constructor (o) { this.o = o }

  call (worker, message) {
    const id = ++this.lastId
    return new Promise((resolve, reject) => {
      this.waiters.set(id, { resolve, reject })
      worker.child.send({ ...message, id })
    })
  }

  async start () {
    this.lastId = 0
    this.waiters = new Map()
    this.workers = []
    this.nodes = []
    const per = Math.ceil(this.o.nodes / this.o.procs)
    for (let p = 0; p < this.o.procs; p++) {
      const first = p * per
      const count = Math.min(per, this.o.nodes - first)
      if (count <= 0) break
      const child = fork(SELF, ['worker'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv })
      const worker = { child, first, count }
      child.on('message', (m) => {
        if (m.op === 'delivery') return this.onDeliveries?.(m.deliveries)
        const waiter = this.waiters.get(m.id)
        if (waiter == null) return
        this.waiters.delete(m.id)
        if (m.error != null) waiter.reject(new Error(m.error))
        else waiter.resolve(m)
      })
      this.workers.push(worker)
    }
    for (const worker of this.workers) {
      const started = await this.call(worker, { op: 'start', count: worker.count, topic: this.o.topic })
      for (let k = 0; k < worker.count; k++) this.nodes.push({ worker, local: k, addr: started.addrs[k] })
    }
  }

  connect (from, to) {
    const node = this.nodes[from]
    return this.call(node.worker, { op: 'dial', local: node.local, addr: this.nodes[to].addr })
  }

  // Deliveries are recorded in the workers (phase by phase, see collect).
  async subscribe () {
    for (const worker of this.workers) await this.call(worker, { op: 'subscribe', first: worker.first, subscribers: this.o.nodes })
  }

  async topicPeers () {
    const counts = []
    for (const worker of this.workers) counts.push(...(await this.call(worker, { op: 'peers' })).counts)
    return counts
  }

  async begin (lo, hi, latency) {
    for (const worker of this.workers) await this.call(worker, { op: 'begin', lo, hi, latency })
  }

  async collect () {
    const parts = []
    for (const worker of this.workers) parts.push((await this.call(worker, { op: 'collect' })).summary)
    return parts
  }

  async publishPhase (first, count, rate) {
    const r = await this.call(this.workers[0], { op: 'publish', first, count, rate, size: this.o.size })
    return { sent: r.sent, failed: r.failed, seconds: r.seconds }
  }

  pids () { return this.workers.map(w => w.child.pid) }
  nodesPerPid () { return this.workers.map(w => w.count) }
  async stop () {
    for (const worker of this.workers) {
      try { await Promise.race([this.call(worker, { op: 'stop' }), sleep(5000)]) } catch {}
      worker.child.kill('SIGKILL')
    }
  }
}

async function workerMain () {
  // Resolves the packages from tests/interop/node_modules.
  const { createGossipsubNode, multiaddr } = await import('../../tests/interop/pubsub_node.mjs')
  let nodes = []
  let topic = ''
  let recorder = null
  let first = 0
  const reply = (m, fields) => process.send({ id: m.id, ...fields })
  process.on('message', async (m) => {
    try {
      switch (m.op) {
        case 'start':
          topic = m.topic
          for (let k = 0; k < m.count; k++) {
            nodes.push(await createGossipsubNode({ manyOnLoopback: true }))
          }
          return reply(m, { addrs: nodes.map(n => n.getMultiaddrs()[0].toString()) })
        case 'dial':
          await nodes[m.local].dial(multiaddr(m.addr))
          return reply(m, {})
        case 'subscribe':
          first = m.first
          recorder = new Recorder(m.subscribers)
          nodes.forEach((node, k) => {
            node.services.pubsub.addEventListener('message', (evt) => {
              if (evt.detail.topic === topic) recorder.record(first + k, Buffer.from(evt.detail.data))
            })
            node.services.pubsub.subscribe(topic)
          })
          return reply(m, {})
        case 'peers':
          return reply(m, { counts: nodes.map(n => n.services.pubsub.getSubscribers(topic).length) })
        case 'begin':
          recorder.begin(m.lo, m.hi, m.latency)
          return reply(m, {})
        case 'collect':
          return reply(m, { summary: recorder.summary() })
        case 'publish': {
          const pubsub = nodes[0].services.pubsub
          const r = await pacedPublish(data => pubsub.publish(topic, data), m.first, m.count, m.rate, m.size)
          return reply(m, r)
        }
        case 'stop':
          await Promise.all(nodes.map(n => n.stop().catch(() => {})))
          nodes = []
          return reply(m, {})
      }
    } catch (err) {
      reply(m, { error: err?.stack ?? String(err) })
    }
  })
}

// ---- the phases ----------------------------------------------------------------------------

async function measure (o) {
  const cluster = o.impl === 'ours' ? new OursCluster(o) : new JsCluster(o)
  const subscribers = o.nodes
  // Ours: deliveries come to this process; js: each worker records its own nodes'.
  const local = new Recorder(subscribers)
  const begin = async (lo, hi, latency) => {
    local.begin(lo, hi, latency)
    if (cluster.begin) await cluster.begin(lo, hi, latency)
  }
  const collect = async () => {
    const parts = cluster.collect ? await cluster.collect() : [local.summary()]
    const merged = { received: new Array(subscribers).fill(0), duplicates: 0, latencies_ms: [], last_ms: [] }
    for (const part of parts) {
      part.received.forEach((n, i) => { merged.received[i] += n })
      merged.duplicates += part.duplicates
      merged.latencies_ms.push(...part.latencies_ms)
      part.last_ms.forEach((ms, i) => { merged.last_ms[i] = Math.max(merged.last_ms[i] ?? 0, ms) })
    }
    merged.received[0] = Infinity  // the publisher's own copy is not a delivery
    return merged
  }
  const deliveredAll = (merged, count) => merged.received.every(n => n >= count)
  const deliveries = (merged) => merged.received.slice(1).reduce((a, b) => a + b, 0)

  try {
    const t0 = Date.now()
    await cluster.start()
    log(`${o.impl}: ${o.nodes} nodes up in ${Date.now() - t0} ms`)
    const edges = topology(o.nodes, o.degree, o.seed)
    const degree = new Array(o.nodes).fill(0)
    for (const [i, j] of edges) {
      await cluster.connect(i, j)
      ++degree[i]
      ++degree[j]
    }
    await cluster.subscribe((subscriber, data) => local.record(subscriber, data))
    const meshDeadline = Date.now() + MESH_WAIT_MS
    for (;;) {
      const counts = await cluster.topicPeers()
      if (counts.every((n, i) => n >= degree[i])) break
      if (Date.now() > meshDeadline) throw new Error(`subscriptions not known within ${MESH_WAIT_MS} ms: ${counts} vs ${degree}`)
      await sleep(200)
    }
    await sleep(MESH_SETTLE_MS)
    log(`${o.impl}: ${edges.length} connections, subscriptions known; warming up`)

    let seq = 0
    const phase = async (count, rate, latency) => {
      const lo = seq
      seq += count
      await begin(lo, seq, latency)
      const pids = cluster.pids()
      const sentBefore = tcpBytesSent(pids)
      const published = await cluster.publishPhase(lo, count, rate)
      const drainUntil = Date.now() + o.drainSeconds * 1000
      let merged = await collect()
      while (!deliveredAll(merged, count - published.failed) && Date.now() < drainUntil) {
        await sleep(100)
        merged = await collect()
      }
      const { bytes: written, closed } = sentBetween(sentBefore, tcpBytesSent(pids))
      const expected = (subscribers - 1) * count
      return { published, merged, written, closed, lost: expected - deliveries(merged), expected }
    }

    const warm = await phase(o.warmup, 50, false)
    if (warm.lost > 0) log(`${o.impl}: warm-up lost ${warm.lost} of ${warm.expected} deliveries`)

    const lat = await phase(o.latencyCount, o.latencyRate, true)
    const latency = {
      messages: o.latencyCount,
      rate: o.latencyRate,
      deliveries: deliveries(lat.merged),
      lost: lat.lost,
      duplicates: lat.merged.duplicates,
      p50_ms: percentile(lat.merged.latencies_ms, 50),
      p99_ms: percentile(lat.merged.latencies_ms, 99),
      all_p50_ms: percentile(lat.merged.last_ms.filter(x => x > 0), 50),
      all_p99_ms: percentile(lat.merged.last_ms.filter(x => x > 0), 99),
      bytes_sent: lat.written,
      connections_closed: lat.closed,
      // Not comparable when connections closed (their bytes are gone) or nothing arrived.
      bytes_per_delivery: deliveries(lat.merged) > 0 && lat.closed === 0 ? lat.written / deliveries(lat.merged) : null
    }
    log(`${o.impl}: latency p50 ${latency.p50_ms?.toFixed(2)} ms p99 ${latency.p99_ms?.toFixed(2)} ms, ` +
        `${latency.bytes_per_delivery?.toFixed(0)} B sent per delivery, lost ${latency.lost}, ` +
        `${lat.closed} connections closed`)

    const steps = []
    let sustained = 0
    for (const rate of o.rates) {
      const count = Math.max(1, Math.round(rate * o.stepSeconds))
      const r = await phase(count, rate, false)
      const achieved = r.published.sent / r.published.seconds
      const step = { rate, sent: r.published.sent, failed: r.published.failed, achieved_rate: achieved, lost: r.lost, duplicates: r.merged.duplicates, connections_closed: r.closed, bytes_per_delivery: r.closed === 0 ? r.written / Math.max(1, deliveries(r.merged)) : null }
      steps.push(step)
      log(`${o.impl}: ${rate}/s: published ${achieved.toFixed(0)}/s, lost ${r.lost} of ${r.expected}, failed ${r.published.failed}`)
      const keptUp = achieved >= 0.9 * rate
      if (r.lost > 0 || r.published.failed > 0 || !keptUp) break
      sustained = rate
    }
    const rss = cluster.pids().map(rssKib)
    const perPid = cluster.nodesPerPid()
    const rssPerNode = rss.map((kib, i) => kib / (Array.isArray(perPid) ? perPid[i] : perPid))
    return {
      impl: o.impl,
      nodes: o.nodes,
      processes: rss.length,
      connections: edges.length,
      size: o.size,
      warmup_lost: warm.lost,
      latency,
      throughput: { steps, sustained_rate: sustained, step_seconds: o.stepSeconds },
      rss_kib: { per_node_median: percentile(rssPerNode, 50), per_node_max: Math.max(...rssPerNode), total: rss.reduce((a, b) => a + b, 0) }
    }
  } finally {
    await cluster.stop()
  }
}

if (process.argv[2] === 'worker') {
  workerMain()
} else {
  let o
  try {
    o = parseOptions(process.argv.slice(2))
    if (o.impl !== 'ours' && o.impl !== 'js') throw new Error('first argument: ours or js')
  } catch (err) {
    log(err.message)
    process.exit(2)
  }
  measure(o).then((result) => {
    process.stdout.write(JSON.stringify(result) + '\n')
    process.exit(0)
  }, (err) => {
    log(`failed: ${err?.stack ?? err}`)
    process.exit(1)
  })
}
