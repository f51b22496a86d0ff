// Gossipsub between js-libp2p peers (@libp2p/gossipsub, pubsub_peer.mjs) and, when
// AGENTNETWORK_BIN is set, our daemon, with node:test.
//
// Environment:
//   AGENTNETWORK_BIN  our daemon. Set: two js peers that know only our node (started with
//                     `agentnetwork start -data DIR -listen /ip4/127.0.0.1/tcp/0`, pubsub on by
//                     default, subscribed through the PubSub gRPC API) hear each other through
//                     it; our publications reach the js subscribers, in the Go AgentNetwork's
//                     broadcast envelope by default and raw on request; js publications reach our
//                     subscribers, an envelope decoded and anything else flagged as malformed.
//                     Unset: the same relay case with a third js peer in our place, which checks
//                     the js side those cases rely on.
//   INTEROP_KEEP_DATA=1  keep the daemon's data dir (logs) after the run, for debugging.
//   INTEROP_DAEMON_LOG_LEVEL  optional: the daemon's AGENTNETWORK_LOG_LEVEL (debug, trace).
//
// Run: bash run.sh   (or: node --import ./polyfill.mjs --test run_interop_pubsub.mjs)
import './polyfill.mjs'

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'

const HERE = dirname(fileURLToPath(import.meta.url))
const PUBSUB_PEER_JS = join(HERE, 'pubsub_peer.mjs')
const PUBSUB_PROTO = join(HERE, '..', '..', 'proto', 'agentnetwork', 'v1', 'pubsub.proto')
const DAEMON = process.env.AGENTNETWORK_BIN
const TOPIC = 'agentnetwork-interop'
const PEER_READY_MS = 40_000
const EVENT_WAIT_MS = 20_000
const STOP_GRACE_MS = 5000
const CLI_TIMEOUT_MS = 60_000
// Meshes form at the first heartbeats (1 s apart in go, js and ours) once subscriptions are
// exchanged; this bounds a broken mesh, it is not a measure.
const MESH_WAIT_S = 30
// What Go's time.Time marshals: RFC 3339 with up to 9 fraction digits (trailing zeros trimmed).
const GO_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/

const children = new Set()
const daemonPids = new Set()
process.on('exit', () => {
  for (const child of children) {
    try { child.kill('SIGKILL') } catch {}
  }
  for (const pid of daemonPids) {
    try { process.kill(pid, 'SIGKILL') } catch {}
  }
})
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1))

function track (child) {
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

function sleep (ms) { return new Promise(resolve => setTimeout(resolve, ms)) }
function tail (text, n = 4000) { return text.length > n ? '…' + text.slice(-n) : text }

async function retry (what, seconds, fn, intervalMs = 500) {
  const deadline = Date.now() + seconds * 1000
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      if (Date.now() + intervalMs > deadline) {
        const e = new Error(`${what} (retried for ${seconds} s): ${err?.stack ?? err}`)
        e.stack = e.message
        throw e
      }
    }
    await sleep(intervalMs)
  }
}

// Events pushed by a source, claimed one by one by predicate.
class EventQueue {
  constructor (describeFailure = () => '') {
    this.events = []
    this.waiters = []
    this.ended = null
    this.describeFailure = describeFailure
  }

  push (event) {
    this.events.push(event)
    for (const w of [...this.waiters]) w()
  }

  end (why) {
    this.ended = why
    for (const w of [...this.waiters]) w()
  }

  next (pred, timeoutMs = EVENT_WAIT_MS) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.events.findIndex(pred)
        if (i >= 0) {
          const [e] = this.events.splice(i, 1)
          done()
          resolve(e)
        } else if (this.ended != null) {
          done()
          reject(new Error(`ended (${this.ended}) without a matching event; ${this.describeFailure()}`))
        }
      }
      const timer = setTimeout(() => { done(); reject(new Error(`no matching event within ${timeoutMs} ms; ${this.describeFailure()}`)) }, timeoutMs)
      const done = () => { clearTimeout(timer); this.waiters = this.waiters.filter(w => w !== check) }
      this.waiters.push(check)
      check()
    })
  }
}

// One pubsub_peer.mjs process: commands in, JSON lines out.
class PubsubPeer {
  static async start (name) {
    const peer = new PubsubPeer(name)
    try {
      peer.ready = await peer.queue.next((e) => e.event === 'ready' || e.event === 'error', PEER_READY_MS)
      assert.equal(peer.ready.event, 'ready', `pubsub_peer did not start: ${JSON.stringify(peer.ready)}`)
    } catch (err) {
      await peer.stop()
      throw err
    }
    return peer
  }

  constructor (name) {
    this.name = name
    this.child = track(spawn(process.execPath, [PUBSUB_PEER_JS], { stdio: ['pipe', 'pipe', 'pipe'] }))
    this.stderr = ''
    this.lastId = 0
    this.queue = new EventQueue(() => `${this.name} stderr: ${tail(this.stderr, 2000)}`)
    this.child.stderr.on('data', (d) => { this.stderr += d })
    createInterface({ input: this.child.stdout }).on('line', (line) => this.queue.push(JSON.parse(line)))
    this.child.on('exit', (code, signal) => this.queue.end(`exit ${code ?? signal}`))
  }

  get peer () { return this.ready.peer }
  get addr () { return this.ready.addrs[0] }

  async cmd (cmd, fields = {}) {
    const id = ++this.lastId
    this.child.stdin.write(JSON.stringify({ id, cmd, ...fields }) + '\n')
    const result = await this.queue.next((e) => e.event === 'result' && e.id === id, 40_000)
    assert.ok(result.ok, `${this.name} ${cmd}: ${result.error}`)
    return result
  }

  message (pred = () => true) { return this.queue.next((e) => e.event === 'message' && pred(e)) }

  // Meshed with every peer in `peers` for the topic, as this peer sees it.
  async waitMesh (topic, peers) {
    await retry(`${this.name}: mesh of ${topic} holds ${peers.join(', ')}`, MESH_WAIT_S, async () => {
      const { mesh } = await this.cmd('peers', { topic })
      for (const p of peers) assert.ok(mesh.includes(p), `mesh ${JSON.stringify(mesh)}`)
    })
  }

  async stop () {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise(resolve => this.child.once('exit', resolve))
    this.child.stdin.end()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS)
    await exited
    clearTimeout(timer)
  }
}

describe('pubsub js<->js', { timeout: 120_000, skip: DAEMON ? 'AGENTNETWORK_BIN is set: the daemon cases run instead' : false }, () => {
  let a, relay, b
  before(async () => {
    [a, relay, b] = await Promise.all([PubsubPeer.start('a'), PubsubPeer.start('relay'), PubsubPeer.start('b')])
    for (const p of [a, relay, b]) await p.cmd('subscribe', { topic: TOPIC })
    await a.cmd('dial', { addr: relay.addr })
    await b.cmd('dial', { addr: relay.addr })
    await relay.waitMesh(TOPIC, [a.peer, b.peer])
    await a.waitMesh(TOPIC, [relay.peer])
    await b.waitMesh(TOPIC, [relay.peer])
  })
  after(async () => { await Promise.all([a?.stop(), relay?.stop(), b?.stop()]) })

  test('two peers that know only a third hear each other through it', async () => {
    await a.cmd('publish', { topic: TOPIC, text: 'from a' })
    const got = await b.message((m) => m.text === 'from a')
    assert.equal(got.from, a.peer)
    assert.equal(got.signed, true)
    assert.equal((await relay.message((m) => m.text === 'from a')).from, a.peer)
    await b.cmd('publish', { topic: TOPIC, text: 'from b' })
    assert.equal((await a.message((m) => m.text === 'from b')).from, b.peer)
  })
})

// ---------------------------------------------------------------------------------------------
// Our daemon

function daemonEnv () {
  const env = { ...process.env }
  if (process.env.INTEROP_DAEMON_LOG_LEVEL) env.AGENTNETWORK_LOG_LEVEL = process.env.INTEROP_DAEMON_LOG_LEVEL
  return env
}

async function cli (args, timeoutMs = CLI_TIMEOUT_MS) {
  const child = track(spawn(DAEMON, args, { stdio: ['ignore', 'pipe', 'pipe'], env: daemonEnv() }))
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', d => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', d => { stderr += d })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise((resolve) => {
    child.once('error', (err) => { stderr += `spawn: ${err.message}`; resolve(-1) })
    child.once('close', (c, sig) => resolve(c ?? sig))
  })
  clearTimeout(timer)
  return { code, stdout, stderr, text: `agentnetwork ${args.join(' ')} -> exit ${code}\nstdout: ${tail(stdout, 2000)}\nstderr: ${tail(stderr, 2000)}` }
}

function pidAlive (pid) {
  try { process.kill(pid, 0); return true } catch (err) { return err.code === 'EPERM' }
}

let grpcLib = null
async function grpc () {
  if (grpcLib == null) {
    const g = (await import('@grpc/grpc-js')).default
    const loader = (await import('@grpc/proto-loader')).default
    const def = loader.loadSync(PUBSUB_PROTO, { keepCase: true, longs: String, enums: String, defaults: true })
    grpcLib = { g, PubSub: g.loadPackageDefinition(def).agentnetwork.v1.PubSub }
  }
  return grpcLib
}

function unary (client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 20_000 }, (err, response) => err ? reject(err) : resolve(response))
  })
}

// Our node: `agentnetwork start` in a fresh data dir, driven by the PubSub API.
class Daemon {
  static async start () {
    const node = new Daemon(mkdtempSync(join(tmpdir(), 'an-interop-pubsub-')))
    try {
      const r = await cli(['start', '-data', node.data, '-listen', '/ip4/127.0.0.1/tcp/0'])
      node.startText = r.text
      assert.equal(r.code, 0, `daemon start failed\n${r.text}`)
      const s = await cli(['status', '-data', node.data, '-json'])
      const status = JSON.parse(s.stdout)
      node.pid = status.pid
      daemonPids.add(node.pid)
      node.peer = status.node_id
      const tcp = (status.listen_addrs ?? []).find(a => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/.test(a.replace(/\/p2p\/[^/]+$/, '')))
      assert.ok(tcp, `status lists a 127.0.0.1 TCP address: ${s.stdout}`)
      node.addr = `${tcp.replace(/\/p2p\/[^/]+$/, '')}/p2p/${node.peer}`
      const { g, PubSub } = await grpc()
      node.client = new PubSub(status.grpc, g.credentials.createInsecure())
    } catch (err) {
      await node.stop()
      throw err
    }
    return node
  }

  constructor (data) {
    this.data = data
    this.pid = 0
    this.client = null
    this.streams = []
  }

  publish (topic, data, raw) { return unary(this.client, 'Publish', { topic, data, raw }) }
  listPeers (topic) { return unary(this.client, 'ListPeers', { topic }) }
  listTopics () { return unary(this.client, 'ListTopics', {}) }

  // A Subscribe stream whose messages queue up; resolves once the node has joined the topic
  // (the response headers).
  subscribe (topic, raw) {
    const call = this.client.Subscribe({ topic, raw })
    this.streams.push(call)
    const queue = new EventQueue(() => 'our Subscribe stream')
    call.on('data', (m) => queue.push(m))
    call.on('error', (err) => queue.end(err.message))
    call.on('end', () => queue.end('end'))
    return new Promise((resolve, reject) => {
      call.once('metadata', () => resolve(queue))
      call.once('error', reject)
    })
  }

  async diag () {
    const log = await cli(['logs', '-data', this.data, '-n', '3000'], 20_000).catch(() => ({ stdout: '' }))
    return `${this.startText ?? ''}\nlog:\n${tail(log.stdout, 6000)}`
  }

  async stop () {
    for (const call of this.streams) call.cancel()
    try { this.client?.close() } catch {}
    if (this.pid > 0) {
      await cli(['stop', '-data', this.data, '-timeout', '5'], 20_000).catch(() => {})
      if (pidAlive(this.pid)) {
        try { process.kill(this.pid, 'SIGKILL') } catch {}
        for (let i = 0; i < 50 && pidAlive(this.pid); i++) await sleep(100)
      }
      daemonPids.delete(this.pid)
    }
    if (process.env.INTEROP_KEEP_DATA === '1') process.stderr.write(`kept the daemon's data dir ${this.data}\n`)
    else rmSync(this.data, { recursive: true, force: true })
  }
}

describe('pubsub js-libp2p <-> our daemon', { timeout: 180_000, skip: DAEMON ? false : 'AGENTNETWORK_BIN is unset (the js<->js cases run instead)' }, () => {
  let ours, a, b, rawStream, envelopeStream
  before(async () => {
    const started = await Promise.allSettled([Daemon.start(), PubsubPeer.start('js-a'), PubsubPeer.start('js-b')])
    ;[ours, a, b] = started.map(r => r.value)
    for (const r of started) if (r.status === 'rejected') throw r.reason
    // Our node relays the topic because it is subscribed to it, as a go node does.
    rawStream = await ours.subscribe(TOPIC, true)
    envelopeStream = await ours.subscribe(TOPIC, false)
    for (const js of [a, b]) {
      await js.cmd('subscribe', { topic: TOPIC })
      assert.equal((await js.cmd('dial', { addr: ours.addr })).remote_peer, ours.peer)
    }
    await retry('our mesh of the topic holds both js peers', MESH_WAIT_S, async () => {
      const peers = await ours.listPeers(TOPIC)
      for (const js of [a, b]) assert.ok(peers.mesh_peer_ids.includes(js.peer), JSON.stringify(peers))
    })
    await a.waitMesh(TOPIC, [ours.peer])
    await b.waitMesh(TOPIC, [ours.peer])
  })
  after(async () => { await Promise.all([ours?.stop(), a?.stop(), b?.stop()]) })

  // A case whose failure carries the daemon's log and the js peers' stderr.
  function withDiagnostics (fn) {
    return async (t) => {
      try {
        await fn(t)
      } catch (err) {
        const e = new Error(`${err?.stack ?? err}\n--- our daemon ---\n${ours ? await ours.diag() : '(not started)'}\n--- js-a stderr ---\n${tail(a?.stderr ?? '', 2000)}\n--- js-b stderr ---\n${tail(b?.stderr ?? '', 2000)}`)
        e.stack = e.message
        throw e
      }
    }
  }

  test('our node lists the topic and both js peers', withDiagnostics(async () => {
    const peers = await ours.listPeers(TOPIC)
    assert.deepEqual([...peers.peer_ids].sort(), [a.peer, b.peer].sort())
    const { topics } = await ours.listTopics()
    const info = topics.find(t => t.topic === TOPIC)
    assert.ok(info, JSON.stringify(topics))
    assert.equal(info.peers, 2)
    assert.equal(info.mesh_peers, 2)
    const js = await a.cmd('peers', { topic: TOPIC })
    assert.deepEqual(js.subscribers, [ours.peer])
  }))

  test('two js peers that know only our node hear each other through it', withDiagnostics(async () => {
    await a.cmd('publish', { topic: TOPIC, text: 'a to b through agentnetwork' })
    const atB = await b.message((m) => m.text === 'a to b through agentnetwork')
    assert.equal(atB.from, a.peer)
    assert.equal(atB.signed, true)
    await b.cmd('publish', { topic: TOPIC, text: 'b to a through agentnetwork' })
    const atA = await a.message((m) => m.text === 'b to a through agentnetwork')
    assert.equal(atA.from, b.peer)
    assert.equal(atA.seqno.length, 16)

    // Our raw subscriber saw both, signed by their authors, forwarded by them.
    const first = await rawStream.next((m) => Buffer.from(m.data).toString() === 'a to b through agentnetwork')
    assert.equal(first.from, a.peer)
    assert.equal(first.received_from, a.peer)
    assert.equal(first.topic, TOPIC)
    assert.equal(Buffer.from(first.seqno).length, 8)
    assert.equal(Buffer.from(first.seqno).toString('hex'), atB.seqno)
    const second = await rawStream.next((m) => Buffer.from(m.data).toString() === 'b to a through agentnetwork')
    assert.equal(second.from, b.peer)
  }))

  test('our publication reaches js subscribers in the Go broadcast envelope', withDiagnostics(async () => {
    const payload = Buffer.from('héllo from agentnetwork <&> 🌍')
    const published = await ours.publish(TOPIC, payload, false)
    assert.ok(published.topic_peers >= 2, JSON.stringify(published))
    for (const js of [a, b]) {
      const got = await js.message((m) => m.from === ours.peer && m.text?.includes('"payload"'))
      assert.equal(got.signed, true)
      const envelope = JSON.parse(got.text)
      // encoding/json writes the struct's fields in declaration order.
      assert.deepEqual(Object.keys(envelope), ['topic', 'sender', 'timestamp', 'payload'])
      assert.equal(envelope.topic, TOPIC)
      assert.equal(envelope.sender, ours.peer)
      assert.match(envelope.timestamp, GO_TIMESTAMP)
      assert.equal(Buffer.from(envelope.payload, 'base64').toString(), payload.toString())
      // Go escapes <, > and & in strings; none of those are in a base64 payload or a peer ID.
    }
    // Our own subscriber gets our publication too, unwrapped.
    const own = await envelopeStream.next((m) => m.from === ours.peer && Buffer.from(m.data).equals(payload))
    assert.equal(own.envelope_malformed, false)
    assert.equal(own.sender, ours.peer)
    assert.equal(own.received_from, ours.peer)
  }))

  test('our raw publication reaches js subscribers byte for byte', withDiagnostics(async () => {
    const payload = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x01, 0xc3, 0x7b])
    await ours.publish(TOPIC, payload, true)
    for (const js of [a, b]) {
      const got = await js.message((m) => m.from === ours.peer && Buffer.from(m.data_b64, 'base64').equals(payload))
      assert.equal(got.signed, true)
    }
  }))

  test('js publications reach our subscribers: an envelope decoded, other data flagged malformed', withDiagnostics(async () => {
    // What a Go AgentNetwork node publishes (broadcaster.go): json.Marshal of its envelope.
    const payload = Buffer.from('payload of a go-style broadcast')
    const timestamp = '2026-01-02T03:04:05.123456789Z'
    const goEnvelope = `{"topic":"${TOPIC}","sender":"${a.peer}","timestamp":"${timestamp}","payload":"${payload.toString('base64')}"}`
    await a.cmd('publish', { topic: TOPIC, text: goEnvelope })
    const decoded = await envelopeStream.next((m) => m.from === a.peer && Buffer.from(m.data).equals(payload))
    assert.equal(decoded.envelope_malformed, false)
    assert.equal(decoded.sender, a.peer)
    assert.equal(decoded.timestamp, timestamp)
    const raw = await rawStream.next((m) => m.from === a.peer && Buffer.from(m.data).toString() === goEnvelope)
    assert.equal(raw.envelope_malformed, false)
    // B hears it unchanged through us.
    assert.equal((await b.message((m) => m.text === goEnvelope)).from, a.peer)

    await b.cmd('publish', { topic: TOPIC, text: 'plain text, no envelope' })
    const flagged = await envelopeStream.next((m) => m.from === b.peer && Buffer.from(m.data).toString() === 'plain text, no envelope')
    assert.equal(flagged.envelope_malformed, true)
    assert.equal(flagged.sender, '')
  }))
})
