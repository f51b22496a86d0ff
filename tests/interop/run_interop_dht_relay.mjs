// Kademlia DHT and circuit relay v2 interop between js-libp2p (dht_peer.mjs: @libp2p/kad-dht,
// @libp2p/circuit-relay-v2) and our daemon, with node:test.
//
// Environment:
//   AGENTNETWORK_BIN  our daemon. Unset: dht_peer.mjs plays "ours" too (js<->js), which checks
//                     the cases and the js side; set: our nodes are daemons started with
//                     `agentnetwork start -data DIR -listen /ip4/127.0.0.1/tcp/0 -role ...`.
//   INTEROP_DHT_WAIT  optional: seconds a DHT lookup may keep retrying while the network settles
//                     (default 30).
//   INTEROP_KEEP_DATA=1  keep the daemons' data dirs (logs) after the run, for debugging.
//   INTEROP_DAEMON_LOG_LEVEL  optional: passed to the daemons as AGENTNETWORK_LOG_LEVEL (debug, trace).
//
// Cases (each starts its own nodes on 127.0.0.1, data dirs under os.tmpdir(), and stops them):
//   (1) a js node bootstrapped off our bootstrap-role node finds our normal node through the
//       DHT (FIND_NODE answered by our node; getClosestPeers) and connects to it;
//   (2) our normal node, connected to our bootstrap node only, finds a js DHT server through the
//       DHT (`agentnetwork find`) and connects to it;
//   (2b) our node bootstrapped off a js DHT server: finds a second js node (our FIND_NODE to
//       js), reads a record js put (our GET_VALUE to js), and its PutValue lands on a js server;
//   (3) /pk/ records: put by js, read by our node (control API GetValue over gRPC), and put by
//       our node (PutValue), read by a js node;
//   (4) a js node reserves a slot on our relay-role node; another js node reaches it through
//       /p2p/OURS/p2p-circuit/p2p/JS (ping + echo over the relayed connection);
//   (4b) our normal node connects to that js node through our relay (`agentnetwork connect
//       /p2p/OURS/p2p-circuit/p2p/JS`), and the js node identifies our node over it;
//   (5) our node reserves on a js relay (-static-relay); its relayed address shows in
//       `status -json`; a js node dials our node through that address and pings it;
//   (5b) as (5), then the js node identifies our node over the relayed connection.
// A case is skipped (with the reason) only when the daemon plainly lacks the feature: it does
// not announce the protocol in identify, rejects the option, or answers UNIMPLEMENTED.
//
// Run: bash run.sh   (or: node --import ./polyfill.mjs --test run_interop_dht_relay.mjs)
import './polyfill.mjs'

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'

const HERE = dirname(fileURLToPath(import.meta.url))
const DHT_PEER_JS = join(HERE, 'dht_peer.mjs')
const POLYFILL = join(HERE, 'polyfill.mjs')
const PROTO = join(HERE, '..', '..', 'proto', 'agentnetwork', 'v1', 'node.proto')

const DAEMON = process.env.AGENTNETWORK_BIN
const OURS_NAME = DAEMON ? 'ours' : 'ours(js stand-in)'
const DHT_WAIT_S = Number(process.env.INTEROP_DHT_WAIT ?? 30)
const CASE_TIMEOUT_MS = 150_000
const PEER_READY_MS = 40_000
const LISTEN_ADDR = '/ip4/127.0.0.1/tcp/0'

const KAD = '/ipfs/kad/1.0.0'
const HOP = '/libp2p/circuit/relay/0.2.0/hop'

// ---------------------------------------------------------------- process bookkeeping

const children = new Set()
// Daemons detach from us: their PIDs and data dirs, for a last-resort cleanup.
const daemons = new Map()
process.on('exit', () => {
  for (const child of children) {
    try { child.kill('SIGKILL') } catch {}
  }
  for (const [pid, data] of daemons) {
    try { if (pid > 0) process.kill(pid, 'SIGKILL') } catch {}
    try { rmSync(data, { recursive: true, force: true }) } catch {}
  }
})
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1))

function track (child) {
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

function exited (child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise(resolve => child.once('exit', resolve))
}

function sleep (ms) { return new Promise(resolve => setTimeout(resolve, ms)) }

function withTimeout (promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000}s: ${what}`)), ms) })
  ]).finally(() => clearTimeout(timer))
}

async function stopChild (child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return
  try { child.stdin?.end() } catch {}
  try { child.kill('SIGTERM') } catch {}
  try {
    await withTimeout(exited(child), graceMs, 'exit after SIGTERM')
  } catch {
    try { child.kill('SIGKILL') } catch {}
    await withTimeout(exited(child), 5000, 'exit after SIGKILL').catch(() => {})
  }
}

function tail (text, n = 4000) { return text.length > n ? '…' + text.slice(-n) : text }

// A case that finds the daemon lacking a feature throws this; `runCase` turns it into a skip.
class MissingFeature extends Error {}

// Collects diagnostics of every node in a case; failures carry them.
function runCase (fn) {
  return async (t) => {
    const nodes = []
    const ctx = { t, nodes, add: (n) => { nodes.push(n); return n } }
    try {
      await fn(ctx)
      // Passed: still show what our daemons logged as warnings or errors.
      for (const n of nodes) {
        if (typeof n.log !== 'function') continue
        const bad = n.log().split('\n').filter(l => /\b(warn|warning|error|fatal)\b/i.test(l))
        for (const l of bad.slice(0, 8)) t.diagnostic(`${n.label} log: ${l}`)
        if (bad.length > 8) t.diagnostic(`${n.label} log: … ${bad.length - 8} more warning/error lines`)
      }
    } catch (err) {
      if (err instanceof MissingFeature) {
        t.skip(err.message)
        return
      }
      // A new error: the reporter prints an error's stack, fixed when it was made.
      const diag = nodes.map(n => `\n--- ${n.label} ---\n${tail(n.diag())}`).join('')
      const e = new Error(`${err?.stack ?? err}${diag}`)
      e.stack = e.message
      throw e
    }
  }
}

// Retries fn until it returns without throwing or the time is up (then rethrows the last error).
async function retry (what, seconds, fn, intervalMs = 1000) {
  const deadline = Date.now() + seconds * 1000
  let last
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (err) {
      if (err instanceof MissingFeature) throw err
      last = err
    }
    if (Date.now() + intervalMs > deadline) break
    await sleep(intervalMs)
  }
  const e = new Error(`${what} (retried for ${seconds}s): ${last?.stack ?? last}`)
  e.stack = e.message
  throw e
}

function stripP2p (addr) { return addr.replace(/\/p2p\/[^/]+$/, '') }
function withP2p (addr, id) { return addr.endsWith('/p2p/' + id) ? addr : `${addr}/p2p/${id}` }
function loopbackTcp (addrs) { return addrs.find(a => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+(\/p2p\/[^/]+)?$/.test(a)) }

// ---------------------------------------------------------------- js peers (dht_peer.mjs)

let peerCounter = 0

class JsPeer {
  // Starts dht_peer.mjs with `args`; stopped by t.after.
  static async start (ctx, label, args = []) {
    const child = track(spawn(process.execPath, ['--import', POLYFILL, DHT_PEER_JS, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }))
    const peer = new JsPeer(child, `${label} (js dht_peer #${++peerCounter} ${args.join(' ')})`)
    ctx.t.after(() => peer.stop())
    ctx.add(peer)
    const ready = await withTimeout(peer.nextLine(), PEER_READY_MS, `${peer.label} to start`)
    if (!ready.ready) throw new Error(`${peer.label} failed to start: ${JSON.stringify(ready)}`)
    peer.peerId = ready.peer_id
    const addr = loopbackTcp(ready.addrs)
    peer.addr = addr ? withP2p(addr, peer.peerId) : null
    return peer
  }

  constructor (child, label) {
    this.child = child
    this.label = label
    this.stderrText = ''
    this.buffer = ''
    this.lines = []
    this.waiters = []
    this.pending = new Map()
    this.nextId = 1
    child.stderr.setEncoding('utf8').on('data', d => { this.stderrText += d })
    child.stdout.setEncoding('utf8').on('data', (d) => {
      this.buffer += d
      for (let nl; (nl = this.buffer.indexOf('\n')) >= 0;) {
        const line = this.buffer.slice(0, nl)
        this.buffer = this.buffer.slice(nl + 1)
        let msg
        try { msg = JSON.parse(line) } catch { msg = { error: `bad output line ${JSON.stringify(line)}` } }
        if (msg.id != null && this.pending.has(msg.id)) {
          this.pending.get(msg.id)(msg)
          this.pending.delete(msg.id)
        } else if (this.waiters.length > 0) {
          this.waiters.shift().resolve(msg)
        } else {
          this.lines.push(msg)
        }
      }
    })
    child.on('exit', (code, sig) => {
      const err = new Error(`${this.label} exited (${code ?? sig})`)
      for (const w of this.waiters) w.reject(err)
      this.waiters = []
      for (const [id, resolve] of this.pending) resolve({ id, ok: false, error: err.message })
      this.pending.clear()
    })
  }

  nextLine () {
    if (this.lines.length > 0) return Promise.resolve(this.lines.shift())
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.reject(new Error(`${this.label} exited (${this.child.exitCode ?? this.child.signalCode}); stderr: ${tail(this.stderrText)}`))
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }))
  }

  // Sends one command; resolves with the answer ({ok:true,...} or {ok:false,error}).
  async call (cmd, fields = {}, timeoutS = 30) {
    const id = this.nextId++
    const answer = new Promise(resolve => this.pending.set(id, resolve))
    this.child.stdin.write(JSON.stringify({ id, cmd, timeout: timeoutS, ...fields }) + '\n')
    return withTimeout(answer, (timeoutS + 10) * 1000, `${this.label}: ${cmd}`).finally(() => this.pending.delete(id))
  }

  // Like call, but throws unless ok.
  async rpc (cmd, fields = {}, timeoutS = 30) {
    const r = await this.call(cmd, fields, timeoutS)
    if (!r.ok) throw new Error(`${this.label}: ${cmd} ${JSON.stringify(fields)} failed: ${r.error}`)
    return r
  }

  diag () { return this.stderrText }
  stop () { return stopChild(this.child) }
}

// ---------------------------------------------------------------- our nodes

// The daemon's environment: English, no inherited agentnetwork/locale settings.
function daemonEnv () {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'LANG' || k === 'LANGUAGE' || k === 'NOTIFY_SOCKET' || k.startsWith('LC_') || k.startsWith('AGENTNETWORK_')) continue
    env[k] = v
  }
  env.LANG = 'C'
  if (process.env.INTEROP_DAEMON_LOG_LEVEL) env.AGENTNETWORK_LOG_LEVEL = process.env.INTEROP_DAEMON_LOG_LEVEL
  return env
}

async function cli (args, timeoutMs = 30_000) {
  const child = track(spawn(DAEMON, args, { stdio: ['ignore', 'pipe', 'pipe'], env: daemonEnv() }))
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', d => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', d => { stderr += d })
  const spawnError = new Promise((_resolve, reject) => child.once('error', reject))
  try {
    await withTimeout(Promise.race([exited(child), spawnError]), timeoutMs, `agentnetwork ${args.join(' ')}`)
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  return { code: child.exitCode, stdout, stderr, text: `agentnetwork ${args.join(' ')} -> exit ${child.exitCode ?? child.signalCode}\nstdout: ${tail(stdout, 2000)}\nstderr: ${tail(stderr, 2000)}` }
}

function pidAlive (pid) {
  try { process.kill(pid, 0); return true } catch (err) { return err.code === 'EPERM' }
}

let grpcLib = null
async function grpc () {
  if (grpcLib == null) {
    const g = (await import('@grpc/grpc-js')).default
    const loader = (await import('@grpc/proto-loader')).default
    const def = loader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true })
    grpcLib = { g, Node: g.loadPackageDefinition(def).agentnetwork.v1.Node }
  }
  return grpcLib
}

// Our node as a daemon: `agentnetwork start` in a fresh data dir.
class DaemonNode {
  static async start (ctx, label, { role = 'normal', bootstrap = [], staticRelay } = {}) {
    const data = mkdtempSync(join(tmpdir(), 'an-interop-dht-'))
    const node = new DaemonNode(data, `${label} (daemon -role ${role}, ${data})`)
    ctx.t.after(() => node.stop())
    ctx.add(node)
    const args = ['start', '-data', data, '-listen', LISTEN_ADDR, '-role', role]
    if (bootstrap.length > 0) args.push('-bootstrap', bootstrap.join(','))
    if (staticRelay !== undefined) args.push('-static-relay', staticRelay)
    const r = await cli(args, 60_000)
    node.startText = r.text
    if (r.code === 2 && staticRelay !== undefined && /static-relay/.test(r.stdout + r.stderr)) {
      throw new MissingFeature(`the daemon rejects -static-relay: ${(r.stderr || r.stdout).trim().split('\n')[0]}`)
    }
    assert.equal(r.code, 0, `daemon start failed\n${r.text}`)
    const status = await node.status()
    node.pid = status.pid
    daemons.set(node.pid, data)
    node.peerId = status.node_id
    node.logFile = status.log_file ?? join(data, 'logs', 'node.log')
    node.grpcTarget = status.grpc
    const addr = loopbackTcp(status.listen_addrs ?? [])
    assert.ok(addr, `daemon listen_addrs ${JSON.stringify(status.listen_addrs)} has a 127.0.0.1 TCP address`)
    node.addr = withP2p(addr, node.peerId)
    return node
  }

  constructor (data, label) {
    this.data = data
    this.label = label
    this.pid = 0
    this.client = null
  }

  async status () {
    const r = await cli(['status', '-data', this.data, '-json'])
    try { return JSON.parse(r.stdout) } catch { throw new Error(`status -json did not print JSON\n${r.text}`) }
  }

  async listenAddrs () { return (await this.status()).listen_addrs ?? [] }

  async connectedPeers () {
    const s = await this.status()
    return (s.peers ?? []).map(p => typeof p === 'string' ? p : (p.peer_id ?? p.id ?? JSON.stringify(p)))
  }

  // `agentnetwork find PEER`: {ok, addrs, text}
  async find (peerId, timeoutS = 30) {
    const r = await cli(['find', peerId, '-data', this.data], (timeoutS + 30) * 1000)
    const addrs = (r.stdout.match(/\/ip[46]\/[^\s"',\]]+/g) ?? [])
    return { ok: r.code === 0, addrs, text: r.text }
  }

  async connect (addr) {
    const r = await cli(['connect', addr, '-data', this.data], 60_000)
    return { ok: r.code === 0, code: r.code, text: r.text }
  }

  async rpcClient () {
    if (this.client == null) {
      const { g, Node } = await grpc()
      assert.ok(this.grpcTarget, 'status has the control API endpoint ("grpc")')
      this.client = new Node(this.grpcTarget, g.credentials.createInsecure())
    }
    return this.client
  }

  async grpcCall (method, request, timeoutS = 60) {
    const client = await this.rpcClient()
    const { g } = await grpc()
    return withTimeout(new Promise((resolve, reject) => {
      client[method](request, { deadline: Date.now() + timeoutS * 1000 }, (err, res) => {
        if (err == null) { resolve(res); return }
        if (err.code === g.status.UNIMPLEMENTED) { reject(new MissingFeature(`the daemon answers ${method} with UNIMPLEMENTED: ${err.details}`)); return }
        reject(new Error(`${method} failed: ${g.status[err.code] ?? err.code}: ${err.details}`))
      })
    }), (timeoutS + 10) * 1000, `${method} on ${this.label}`)
  }

  async putValue (key, value) { await this.grpcCall('PutValue', { key: Buffer.from(key), value: Buffer.from(value) }) }
  async getValue (key) { return new Uint8Array((await this.grpcCall('GetValue', { key: Buffer.from(key) })).value) }

  log () { try { return readFileSync(this.logFile ?? join(this.data, 'logs', 'node.log'), 'utf8') } catch { return '' } }
  diag () { return `${this.startText ?? ''}\nnode.log:\n${this.log()}` }

  async stop () {
    try { this.client?.close() } catch {}
    await cli(['stop', '-data', this.data, '-timeout', '5'], 20_000).catch(() => {})
    if (this.pid > 0 && pidAlive(this.pid)) {
      try { process.kill(this.pid, 'SIGKILL') } catch {}
      for (let i = 0; i < 50 && pidAlive(this.pid); i++) await sleep(100)
    }
    daemons.delete(this.pid)
    if (process.env.INTEROP_KEEP_DATA === '1') process.stderr.write(`kept ${this.label}\n`)
    else rmSync(this.data, { recursive: true, force: true })
  }
}

// Our node played by dht_peer.mjs (AGENTNETWORK_BIN unset): the same roles as the daemon's.
class JsStandIn {
  static async start (ctx, label, { role = 'normal', bootstrap = [], staticRelay } = {}) {
    const args = ['--dht', 'server']
    if (role === 'bootstrap' || role === 'relay') args.push('--relay-server')
    else args.push('--relay-client')
    if (staticRelay !== undefined) args.push('--reserve', staticRelay)
    const peer = await JsPeer.start(ctx, `${label} [stand-in for our -role ${role}]`, args)
    const node = new JsStandIn(peer)
    for (const b of bootstrap) await peer.rpc('dial', { addr: b })
    return node
  }

  constructor (peer) {
    this.peer = peer
    this.peerId = peer.peerId
    this.addr = peer.addr
    this.label = peer.label
  }

  async listenAddrs () { return (await this.peer.rpc('info')).addrs }
  async connectedPeers () { return (await this.peer.rpc('info')).connections.map(c => c.peer) }

  async find (peerId, timeoutS = 30) {
    const r = await this.peer.call('find', { peer: peerId }, timeoutS)
    return { ok: r.ok, addrs: r.addrs ?? [], text: JSON.stringify(r) }
  }

  async connect (addr) {
    const r = await this.peer.call('dial', { addr })
    return { ok: r.ok, text: JSON.stringify(r) }
  }

  async putValue (key, value) {
    const r = await this.peer.rpc('put', { key_hex: Buffer.from(key).toString('hex'), value_hex: Buffer.from(value).toString('hex') })
    if (r.acked.length === 0) throw new Error(`put acknowledged by nobody: ${JSON.stringify(r)}`)
  }

  async getValue (key) {
    const r = await this.peer.rpc('get', { key_hex: Buffer.from(key).toString('hex') })
    return new Uint8Array(Buffer.from(r.value_hex, 'hex'))
  }

  diag () { return this.peer.diag() }
}

const Ours = DAEMON ? DaemonNode : JsStandIn

// Waits until `node` (ours) has a connection to `peerId`.
async function waitConnected (node, peerId, seconds = 20) {
  await retry(`${node.label} connected to ${peerId}`, seconds, async () => {
    const peers = await node.connectedPeers()
    assert.ok(peers.includes(peerId), `connected peers ${JSON.stringify(peers)} include ${peerId}`)
  }, 250)
}

// The js peer connects to our node and checks, from identify, that it speaks `protocol`.
async function requireProtocol (js, ours, protocol, feature) {
  await js.rpc('dial', { addr: ours.addr })
  const p = await js.rpc('protocols', { peer: ours.peerId }, 15)
  if (!p.protocols.includes(protocol)) {
    throw new MissingFeature(`${ours.label} does not announce ${protocol} in identify (${feature} not available yet); protocols: ${p.protocols.join(', ')}; agent ${p.agent_version}`)
  }
  return p
}

// The js peer runs identify on its connection to `peerId` (ours) and checks the answer. js-libp2p
// runs identify on every new connection but drops failures silently; this surfaces them.
async function identifyOver (js, peerId) {
  const r = await retry(`js identify of ${peerId}`, 5, async () => js.rpc('identify', { peer: peerId }, 10), 500)
  if (DAEMON) assert.match(String(r.agent_version), /^agentnetwork\//, `identify agent version: ${JSON.stringify(r)}`)
  for (const p of ['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0']) assert.ok(r.protocols.includes(p), `identify protocols include ${p}: ${JSON.stringify(r)}`)
  return r
}

// A fresh /pk/ record: key '/pk/' + multihash of the peer ID, value the protobuf public key.
async function pkRecord () {
  const key = await generateKeyPair('Ed25519')
  const id = peerIdFromPrivateKey(key)
  const recKey = new Uint8Array([...Buffer.from('/pk/'), ...id.toMultihash().bytes])
  return { peerId: id.toString(), key: recKey, value: publicKeyToProtobuf(key.publicKey) }
}

// ---------------------------------------------------------------- cases

describe(`kad-dht: js-libp2p <-> ${OURS_NAME}`, () => {
  test('(1) js node bootstrapped off our bootstrap node finds our normal node via the DHT and connects', { timeout: CASE_TIMEOUT_MS }, runCase(async (ctx) => {
    const { t } = ctx
    const boot = await Ours.start(ctx, 'our bootstrap node', { role: 'bootstrap' })
    const normal = await Ours.start(ctx, 'our normal node', { role: 'normal', bootstrap: [boot.addr] })
    await waitConnected(normal, boot.peerId)
    const js = await JsPeer.start(ctx, 'js finder', ['--dht', 'server'])
    await requireProtocol(js, boot, KAD, 'the DHT')
    await js.rpc('wait_rt', { peer: boot.peerId }, 15)

    // findPeer over the network. (The js node's start-up self lookup may already have met our
    // normal node through our bootstrap node; that is DHT discovery too.) Our bootstrap node's
    // FIND_NODE answer must list our normal node with its address.
    const before = await js.rpc('info')
    t.diagnostic(`js connections before the lookup: ${before.connections.map(c => c.peer).join(',')}`)
    const normalTcp = stripP2p(normal.addr)
    const found = await retry('js dht.findPeer(our normal node)', DHT_WAIT_S, async () => {
      const r = await js.rpc('find', { peer: normal.peerId }, 15)
      const fromBoot = r.responses.filter(x => x.from === boot.peerId)
      assert.ok(fromBoot.length > 0, `our bootstrap node answered FIND_NODE: ${JSON.stringify(r)}`)
      const listed = fromBoot.flatMap(x => x.closer).filter(p => p.id === normal.peerId)
      assert.ok(listed.length > 0, `our bootstrap node's FIND_NODE answer lists our normal node: ${JSON.stringify(fromBoot)}`)
      assert.ok(listed.some(p => p.addrs.map(stripP2p).includes(normalTcp)), `with its address ${normalTcp}: ${JSON.stringify(listed)}`)
      return r
    })
    t.diagnostic(`findPeer: from=${found.from} addrs=${found.addrs.join(' ')} answers from ${found.responses.map(x => x.from).join(',')}`)
    assert.ok([boot.peerId, normal.peerId].includes(found.from), `the peer came from one of our nodes (${found.from})`)
    assert.ok(found.addrs.map(stripP2p).includes(normalTcp), `found addresses ${JSON.stringify(found.addrs)} include ${normalTcp}`)

    // Connect to our normal node at the address the DHT gave, and ping it.
    const dialAddr = withP2p(found.addrs.map(stripP2p).find(a => a === normalTcp), normal.peerId)
    const pinged = await js.rpc('ping', { addr: dialAddr })
    assert.equal(pinged.remote_peer, normal.peerId)
    assert.equal(pinged.limited, false)
    t.diagnostic(`js pinged our normal node at ${dialAddr}: ${pinged.rtt_ms} ms`)

    // getClosestPeers for our normal node's key returns it (our nodes answer FIND_NODE).
    const closest = await retry('js dht.getClosestPeers(our normal node)', DHT_WAIT_S, async () => {
      const r = await js.rpc('closest', { peer: normal.peerId }, 20)
      assert.ok(r.peers.some(p => p.id === normal.peerId), `closest peers ${JSON.stringify(r.peers.map(p => p.id))} include our normal node`)
      return r
    })
    assert.ok(closest.from.includes(boot.peerId), `our bootstrap node answered during getClosestPeers (answers from ${JSON.stringify(closest.from)})`)
    t.diagnostic(`getClosestPeers: ${closest.peers.map(p => p.id).join(',')} (answers from ${closest.from.join(',')})`)
  }))

  test('(2) our node connected only to our bootstrap node finds a js DHT server via the DHT', { timeout: CASE_TIMEOUT_MS }, runCase(async (ctx) => {
    const { t } = ctx
    const boot = await Ours.start(ctx, 'our bootstrap node', { role: 'bootstrap' })
    const finder = await Ours.start(ctx, 'our finder node', { role: 'normal', bootstrap: [boot.addr] })
    await waitConnected(finder, boot.peerId)
    const js = await JsPeer.start(ctx, 'js DHT server', ['--dht', 'server'])
    await requireProtocol(js, boot, KAD, 'the DHT')
    await js.rpc('wait_rt', { peer: boot.peerId }, 15)
    const jsTcp = stripP2p(js.addr)

    const pre = await finder.connectedPeers()
    t.diagnostic(`our finder's peers before the lookup: ${pre.join(',')}`)
    const found = await retry(`${finder.label}: find ${js.peerId}`, DHT_WAIT_S, async () => {
      const r = await finder.find(js.peerId)
      assert.ok(r.ok, `find failed\n${r.text}`)
      assert.ok(r.addrs.map(stripP2p).includes(jsTcp), `find printed the js node's address ${jsTcp}\n${r.text}`)
      return r
    }, 2000)
    t.diagnostic(`find: ${found.text.replace(/\n/g, ' | ')}`)

    // And connect to it at that address; the js node sees our finder.
    const c = await finder.connect(withP2p(jsTcp, js.peerId))
    assert.ok(c.ok, `connect to the found js node failed\n${c.text}`)
    await js.rpc('wait_conn', { peer: finder.peerId }, 15)
  }))

  test('(2b) our node bootstrapped off a js DHT server: FIND_NODE, GET_VALUE, PUT_VALUE to js servers', { timeout: CASE_TIMEOUT_MS }, runCase(async (ctx) => {
    const { t } = ctx
    const jsBoot = await JsPeer.start(ctx, 'js bootstrap DHT server', ['--dht', 'server'])
    const js2 = await JsPeer.start(ctx, 'js DHT server 2', ['--dht', 'server'])
    await js2.rpc('dial', { addr: jsBoot.addr })
    await jsBoot.rpc('wait_rt', { peer: js2.peerId }, 15)
    const ours = await Ours.start(ctx, 'our node', { role: 'normal', bootstrap: [jsBoot.addr] })
    await waitConnected(ours, jsBoot.peerId)
    const jsIds = [jsBoot.peerId, js2.peerId]

    // Our FIND_NODE to the js bootstrap node returns the other js node.
    const js2Tcp = stripP2p(js2.addr)
    const found = await retry(`${ours.label}: find ${js2.peerId}`, DHT_WAIT_S, async () => {
      const r = await ours.find(js2.peerId)
      assert.ok(r.ok, `find failed\n${r.text}`)
      assert.ok(r.addrs.map(stripP2p).includes(js2Tcp), `find printed the js node's address ${js2Tcp}\n${r.text}`)
      return r
    }, 2000)
    t.diagnostic(`find: ${found.text.replace(/\n/g, ' | ')}`)

    // A record js put is read by our node from the js servers (GET_VALUE to js).
    const recA = await pkRecord()
    const put = await js2.rpc('put', { key_hex: Buffer.from(recA.key).toString('hex'), value_hex: Buffer.from(recA.value).toString('hex') })
    assert.ok(put.acked.includes(jsBoot.peerId), `the js bootstrap node stored the record: ${JSON.stringify(put)}`)
    const got = await retry('our GetValue from js servers', DHT_WAIT_S, () => ours.getValue(recA.key))
    assert.deepEqual(Buffer.from(got), Buffer.from(recA.value), 'our node read the value js put')

    // A record our node puts is stored by the js servers (our PUT_VALUE accepted by js).
    const recB = await pkRecord()
    await ours.putValue(recB.key, recB.value)
    const stored = await retry('the js servers to hold our record', 10, async () => {
      const holders = []
      for (const js of [jsBoot, js2]) {
        const r = await js.call('get', { key_hex: Buffer.from(recB.key).toString('hex') }, 10)
        if (r.ok && r.values.some(v => v.from === js.peerId && v.value_hex === Buffer.from(recB.value).toString('hex'))) holders.push(js.peerId)
      }
      assert.ok(holders.length > 0, `a js DHT server holds the record our node put (in its own store); checked ${jsIds.join(',')}`)
      return holders
    }, 1000)
    t.diagnostic(`our put stored by js ${stored.join(',')}`)
  }))

  test('(3) /pk/ records: js put -> our get, our put -> js get', { timeout: CASE_TIMEOUT_MS }, runCase(async (ctx) => {
    const { t } = ctx
    const boot = await Ours.start(ctx, 'our bootstrap node', { role: 'bootstrap' })
    const ours = await Ours.start(ctx, 'our normal node', { role: 'normal', bootstrap: [boot.addr] })
    await waitConnected(ours, boot.peerId)
    const js = await JsPeer.start(ctx, 'js putter', ['--dht', 'server'])
    await requireProtocol(js, boot, KAD, 'the DHT')
    await js.rpc('wait_rt', { peer: boot.peerId }, 15)
    const oursIds = [boot.peerId, ours.peerId]

    // (a) js puts; our nodes must store it (their PUT_VALUE answers echo the record) and our normal
    // node reads it.
    const recA = await pkRecord()
    const put = await retry('js dht.put reaching our nodes', DHT_WAIT_S, async () => {
      const r = await js.rpc('put', { key_hex: Buffer.from(recA.key).toString('hex'), value_hex: Buffer.from(recA.value).toString('hex') })
      assert.ok(r.acked.some(p => oursIds.includes(p)), `one of our nodes acknowledged PUT_VALUE: ${JSON.stringify(r)}`)
      return r
    })
    t.diagnostic(`js put /pk/${recA.peerId}: acked by ${put.acked.join(',')}; errors ${JSON.stringify(put.errors)}`)
    const got = await retry('our GetValue of the js record', DHT_WAIT_S, () => ours.getValue(recA.key))
    assert.deepEqual(Buffer.from(got), Buffer.from(recA.value), 'our node read the value js put')

    // (b) our normal node puts; a js node that joins afterwards (connected to our bootstrap node
    // only) reads it, from one of our nodes.
    const recB = await pkRecord()
    await ours.putValue(recB.key, recB.value)
    const js2 = await JsPeer.start(ctx, 'js getter', ['--dht', 'server'])
    await js2.rpc('dial', { addr: boot.addr })
    await js2.rpc('wait_rt', { peer: boot.peerId }, 15)
    const read = await retry('js dht.get of our record', DHT_WAIT_S, async () => {
      const r = await js2.rpc('get', { key_hex: Buffer.from(recB.key).toString('hex') }, 20)
      assert.equal(r.value_hex, Buffer.from(recB.value).toString('hex'), 'js read the value our node put')
      assert.ok(r.values.some(v => oursIds.includes(v.from)), `one of our nodes served the record: ${JSON.stringify(r.values.map(v => v.from))}`)
      return r
    })
    t.diagnostic(`js get /pk/${recB.peerId}: values from ${read.values.map(v => v.from).join(',')}`)
  }))
})

describe(`circuit relay v2: js-libp2p <-> ${OURS_NAME}`, () => {
  test('(4) js reserves on our relay node; another js node reaches it through /p2p/OURS/p2p-circuit', { timeout: CASE_TIMEOUT_MS }, runCase(async (ctx) => {
    const { t } = ctx
    const relay = await Ours.start(ctx, 'our relay node', { role: 'relay' })
    const dialer = await JsPeer.start(ctx, 'js dialer', ['--relay-client', '--listen', 'none'])
    await requireProtocol(dialer, relay, HOP, 'the relay hop service')

    const target = await JsPeer.start(ctx, 'js reserving node', ['--reserve', relay.addr])
    const w = await target.rpc('wait_addr', { contains: '/p2p-circuit' }, 20)
    const relayed = w.addrs.filter(a => a.includes('/p2p-circuit'))
    t.diagnostic(`js relayed addresses: ${relayed.join(' ')}`)
    const expected = `${relay.addr}/p2p-circuit/p2p/${target.peerId}`
    assert.ok(relayed.includes(expected), `the reservation gives ${expected} (got ${JSON.stringify(relayed)})`)

    const pinged = await dialer.rpc('ping', { addr: expected })
    assert.equal(pinged.remote_peer, target.peerId, 'the relayed connection reaches the js node')
    assert.equal(pinged.limited, true, 'the connection is a relayed (limited) one')
    assert.ok(pinged.remote_addr.includes(`/p2p/${relay.peerId}/p2p-circuit`), `remote address ${pinged.remote_addr} is through our relay`)
    const echo = await dialer.rpc('echo', { addr: expected, bytes: 4096 })
    assert.ok(echo.ok && echo.bytes === 4096 && echo.limited, `4 KiB echo through our relay: ${JSON.stringify(echo)}`)
    // The target saw the dialer come in through the relay.
    const conns = await target.rpc('wait_conn', { peer: dialer.peerId }, 10)
    assert.ok(conns.connections.some(c => c.limited && c.addr.includes('/p2p-circuit')), `target's connection from the dialer is relayed: ${JSON.stringify(conns.connections)}`)
    t.diagnostic(`ping through our relay: ${pinged.rtt_ms} ms; remote_addr ${pinged.remote_addr}`)
  }))

  test('(4b) our normal node connects to a js node through our relay node (connect /p2p/OURS/p2p-circuit/p2p/JS)', { timeout: CASE_TIMEOUT_MS }, runCase(async (ctx) => {
    const { t } = ctx
    const relay = await Ours.start(ctx, 'our relay node', { role: 'relay' })
    const probe = await JsPeer.start(ctx, 'js probe', ['--listen', 'none'])
    await requireProtocol(probe, relay, HOP, 'the relay hop service')
    const target = await JsPeer.start(ctx, 'js reserving node', ['--reserve', relay.addr])
    const circuit = `${relay.addr}/p2p-circuit/p2p/${target.peerId}`
    await target.rpc('wait_addr', { contains: circuit }, 20)
    const ours = await Ours.start(ctx, 'our normal node', { role: 'normal' })
    const c = await ours.connect(circuit)
    // Exit 2 = the address was refused as an argument, before any network work.
    if (DAEMON && c.code === 2 && /circuit/i.test(c.text)) {
      throw new MissingFeature(`agentnetwork connect refuses circuit addresses: ${c.text.replace(/\n/g, ' | ')}`)
    }
    assert.ok(c.ok, `our node's connect through our relay failed\n${c.text}`)
    const conns = await target.rpc('wait_conn', { peer: ours.peerId }, 15)
    assert.ok(conns.connections.some(x => x.limited && x.addr.includes(`/p2p/${relay.peerId}/p2p-circuit`)), `the js node's connection from our node is relayed by our relay: ${JSON.stringify(conns.connections)}`)
    t.diagnostic(`connect: ${c.text.replace(/\n/g, ' | ')}`)
    // The js node identifies our node over that relayed connection.
    const id = await identifyOver(target, ours.peerId)
    t.diagnostic(`identify over the circuit: agent ${id.agent_version}; protocols ${id.protocols.join(',')}`)
  }))

  // Our node behind a js relay, its relayed address, and a js dialer connected through it.
  async function behindJsRelay (ctx) {
    const { t } = ctx
    const jsRelay = await JsPeer.start(ctx, 'js relay', ['--relay-server'])
    const ours = await Ours.start(ctx, 'our node behind the js relay', { role: 'normal', staticRelay: jsRelay.addr })
    const expected = `${jsRelay.addr}/p2p-circuit/p2p/${ours.peerId}`
    const addrs = await retry('our relayed address to appear in our listen addresses', 30, async () => {
      const a = await ours.listenAddrs()
      assert.ok(a.some(x => x.includes(`/p2p/${jsRelay.peerId}/p2p-circuit`)), `listen_addrs ${JSON.stringify(a)} contain a /p2p/${jsRelay.peerId}/p2p-circuit address`)
      return a
    }, 500)
    const relayed = addrs.filter(x => x.includes('/p2p-circuit'))
    t.diagnostic(`our relayed addresses: ${relayed.join(' ')}`)
    assert.ok(relayed.includes(expected), `our listen_addrs include ${expected} (got ${JSON.stringify(relayed)})`)

    const dialer = await JsPeer.start(ctx, 'js dialer', ['--relay-client', '--listen', 'none'])
    const pinged = await dialer.rpc('ping', { addr: expected })
    assert.equal(pinged.remote_peer, ours.peerId, 'the relayed connection reaches our node')
    assert.equal(pinged.limited, true, 'the connection is a relayed (limited) one')
    assert.ok(pinged.remote_addr.includes(`/p2p/${jsRelay.peerId}/p2p-circuit`), `remote address ${pinged.remote_addr} is through the js relay`)
    t.diagnostic(`ping through the js relay: ${pinged.rtt_ms} ms; remote_addr ${pinged.remote_addr}`)
    return { jsRelay, ours, dialer, expected }
  }

  test('(5) our node reserves on a js relay (-static-relay); a js node dials it through the relayed address', { timeout: CASE_TIMEOUT_MS }, runCase(async (ctx) => {
    await behindJsRelay(ctx)
  }))

  test('(5b) a js node identifies our node over the relayed connection', { timeout: CASE_TIMEOUT_MS }, runCase(async (ctx) => {
    const { ours, dialer } = await behindJsRelay(ctx)
    const id = await identifyOver(dialer, ours.peerId)
    ctx.t.diagnostic(`identify over the circuit: agent ${id.agent_version}; protocols ${id.protocols.join(',')}`)
  }))
})
