// /daan messaging (the Go AgentNetwork's messenger: /daan/message/1.0.0, /daan/request/1.0.0)
// and /daan discovery on the DHT, with node:test, between js-libp2p peers (daan_peer.mjs) and,
// when AGENTNETWORK_BIN is set, our daemon.
//
// Environment:
//   AGENTNETWORK_BIN  our daemon. Set: the interop cases, a js peer against a daemon started with
//                     `agentnetwork start -data DIR -listen /ip4/127.0.0.1/tcp/0`, both ways —
//                     js sends and requests to us (our inbox, "no handler registered", an agent
//                     serving requests through gRPC ServeRequests), we send and request to js
//                     (`agentnetwork send`, `request`), bad frames from js reset and logged, and
//                     discovery both ways (js kad-dht finds our node under /daan/1.0.0; our
//                     `discover` finds a js provider). Unset: two daan_peer.mjs peers against each
//                     other, which checks the js side those cases rely on.
//   INTEROP_DHT_WAIT  optional: seconds a DHT lookup may keep retrying (default 30).
//   INTEROP_KEEP_DATA=1  keep the daemon's data dir (logs) after the run, for debugging.
//   INTEROP_DAEMON_LOG_LEVEL  optional: the daemon's AGENTNETWORK_LOG_LEVEL (debug, trace).
//
// Run: bash run.sh   (or: node --import ./polyfill.mjs --test run_interop_daan.mjs)
import './polyfill.mjs'

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { MAX_FRAME_SIZE, MESSAGE_PROTOCOL, NETWORK_NAMESPACE, NO_HANDLER_TEXT, REQUEST_PROTOCOL, encodeFrame } from './daan.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const DAAN_PEER_JS = join(HERE, 'daan_peer.mjs')
const AGENT_PROTO = join(HERE, '..', '..', 'proto', 'agentnetwork', 'v1', 'agent.proto')
const DAEMON = process.env.AGENTNETWORK_BIN
const DHT_WAIT_S = Number(process.env.INTEROP_DHT_WAIT ?? 30)
const PEER_READY_MS = 40_000
const EVENT_WAIT_MS = 20_000
const STOP_GRACE_MS = 5000
const CLI_TIMEOUT_MS = 60_000
// Well under Go's 30 s request timeout: the answer when no agent serves must come at once.
const AT_ONCE_MS = 5000
// How long a new ServeRequests stream may take to be registered at the node.
const SERVE_REGISTER_S = 10

// Every child process, killed if the run ends before its own stop (a crash, a signal).
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

// Retries fn until it returns without throwing or the time is up (then rethrows the last error).
async function retry (what, seconds, fn, intervalMs = 1000) {
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

// One daan_peer.mjs process: commands in, JSON lines out.
class DaanPeer {
  static async start (...args) {
    const peer = new DaanPeer(args)
    try {
      peer.ready = await peer.next((e) => e.event === 'ready' || e.event === 'error', PEER_READY_MS)
      assert.equal(peer.ready.event, 'ready', `daan_peer did not start: ${JSON.stringify(peer.ready)}`)
    } catch (err) {
      await peer.stop()
      throw err
    }
    return peer
  }

  constructor (args) {
    // Its log on stderr is kept for the diagnostics of a failed case.
    this.child = track(spawn(process.execPath, [DAAN_PEER_JS, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PEER_QUIET: DAEMON ? '0' : '1' } }))
    this.events = []
    this.waiters = []
    this.lastId = 0
    this.stderr = ''
    this.child.stderr.on('data', (d) => { this.stderr += d })
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      // `raw`: the line as printed, for numbers JSON.parse would round (request_id).
      this.events.push(Object.defineProperty(JSON.parse(line), 'raw', { value: line }))
      for (const w of [...this.waiters]) w()
    })
    this.child.on('exit', () => { for (const w of [...this.waiters]) w() })
  }

  get peer () { return this.ready.peer }
  get addr () { return this.ready.addrs[0] }

  // The first unclaimed event matching `pred` (removed from the backlog).
  next (pred, timeoutMs = EVENT_WAIT_MS) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.events.findIndex(pred)
        if (i >= 0) {
          const [e] = this.events.splice(i, 1)
          done()
          resolve(e)
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done()
          reject(new Error(`daan_peer exited (${this.child.exitCode ?? this.child.signalCode}); stderr: ${tail(this.stderr, 2000)}`))
        }
      }
      const timer = setTimeout(() => { done(); reject(new Error(`no matching event within ${timeoutMs} ms; stderr: ${tail(this.stderr, 2000)}`)) }, timeoutMs)
      const done = () => { clearTimeout(timer); this.waiters = this.waiters.filter(w => w !== check) }
      this.waiters.push(check)
      check()
    })
  }

  async cmd (cmd, fields = {}) {
    const id = ++this.lastId
    this.child.stdin.write(JSON.stringify({ id, cmd, ...fields }) + '\n')
    return this.next((e) => e.event === 'result' && e.id === id, ((fields.timeout ?? 30) + 5) * 1000)
  }

  // A command written as it is (for numbers JSON.stringify would round); `id` must be unique.
  async cmdLine (id, line, timeoutS = 30) {
    this.child.stdin.write(line + '\n')
    return this.next((e) => e.event === 'result' && e.id === id, (timeoutS + 5) * 1000)
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

const b64 = (text) => Buffer.from(text).toString('base64')
const frameHex = (frame) => encodeFrame(frame).toString('hex')
const rawFrameHex = (json) => {
  const body = Buffer.from(json)
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.byteLength)
  return Buffer.concat([head, body]).toString('hex')
}

describe('daan js<->js', { timeout: 180_000, skip: DAEMON ? 'AGENTNETWORK_BIN is set: the daemon cases run instead' : false }, () => {
  let a
  let b
  before(async () => {
    [a, b] = await Promise.all([DaanPeer.start(), DaanPeer.start('--mode', 'reverse')])
    const dial = await a.cmd('dial', { addr: b.addr })
    assert.ok(dial.ok, dial.error)
  })
  after(async () => { await Promise.all([a?.stop(), b?.stop()]) })

  test('one-way message: stored, printed with its sender', async () => {
    const sent = await a.cmd('send', { peer: b.peer, text: 'héllo wörld' })
    assert.ok(sent.ok, sent.error)
    assert.equal(sent.stored, true)
    const got = await b.next((e) => e.event === 'message')
    assert.equal(got.from, a.peer)
    assert.equal(got.text, 'héllo wörld')
    assert.equal(got.payload_b64, b64('héllo wörld'))
  })

  test('empty message the other way, and wait_messages', async () => {
    const sent = await b.cmd('send', { addr: a.addr, payload_b64: '' })
    assert.ok(sent.ok, sent.error)
    const waited = await a.cmd('wait_messages', { count: 1, timeout: 10 })
    assert.ok(waited.ok, waited.error)
    assert.equal(waited.messages.at(-1).size, 0)
    assert.equal(waited.messages.at(-1).from, b.peer)
  })

  test('request answered by reverse and echo, request_id kept exact', async () => {
    const reversed = await a.cmd('request', { peer: b.peer, text: 'héllo 🌍' })
    assert.ok(reversed.ok, reversed.error)
    assert.equal(reversed.answer, 'response')
    assert.equal(reversed.text, '🌍 olléh')
    // Written by hand: JSON.stringify would round 2^64-1.
    b.child.stdin.write(`{"id":"max","cmd":"request","peer":"${a.peer}","payload_b64":"AAE=","request_id":18446744073709551615}\n`)
    const echoed = await b.next((e) => e.event === 'result' && e.id === 'max')
    assert.ok(echoed.ok, echoed.error)
    assert.equal(echoed.payload_b64, 'AAE=')
    const served = await a.next((e) => e.event === 'request')
    assert.equal(served.answer, 'response')
  })

  test('no handler: type 4 "no handler registered"; reset and hang modes', async () => {
    try {
      assert.ok((await b.cmd('set_mode', { mode: 'none' })).ok)
      const none = await a.cmd('request', { peer: b.peer, text: 'anyone?' })
      assert.ok(none.ok, none.error)
      assert.equal(none.answer, 'error')
      assert.equal(none.text, 'no handler registered')

      assert.ok((await b.cmd('set_mode', { mode: 'reset' })).ok)
      const reset = await a.cmd('request', { peer: b.peer, text: 'x', timeout: 5 })
      assert.equal(reset.ok, false)
      assert.notEqual(reset.timeout, true, reset.error)

      assert.ok((await b.cmd('set_mode', { mode: 'hang' })).ok)
      const hang = await a.cmd('request', { peer: b.peer, text: 'x', timeout: 1 })
      assert.equal(hang.ok, false)
      assert.equal(hang.timeout, true)
    } finally {
      await b.cmd('set_mode', { mode: 'reverse' })
    }
  })

  test('a refused message fails as refused; an unacknowledged one times out', async () => {
    try {
      assert.ok((await b.cmd('set_mode', { message_mode: 'refuse' })).ok)
      const refused = await a.cmd('send', { peer: b.peer, text: 'no room' })
      assert.equal(refused.ok, false)
      assert.equal(refused.refused, true, refused.error)
      assert.equal((await b.cmd('stats')).refused, 1)

      assert.ok((await b.cmd('set_mode', { message_mode: 'hang' })).ok)
      const hang = await a.cmd('send', { peer: b.peer, text: 'hello?', timeout: 1 })
      assert.equal(hang.ok, false)
      assert.equal(hang.timeout, true)
    } finally {
      await b.cmd('set_mode', { message_mode: 'store' })
    }
  })

  test('a large request (12 MB payload: about 16 MB of JSON) round trips', async () => {
    assert.ok((await b.cmd('set_mode', { mode: 'echo' })).ok)
    const payload = Buffer.alloc(12_000_000, 'y').toString('base64')
    const r = await a.cmd('request', { peer: b.peer, payload_b64: payload, timeout: 60 })
    assert.ok(r.ok, r.error)
    assert.equal(r.size, 12_000_000)
    await b.cmd('set_mode', { mode: 'reverse' })
  })

  test('bad frames are reset and reported; raw well-formed frames work', async () => {
    const bad = [
      ['over the cap', '01000001'],
      ['truncated', rawFrameHex('{"type":1,"payload":"aGk="}').slice(0, 16)],
      ['not JSON', rawFrameHex('abc')],
      ['unknown type', rawFrameHex('{"type":5}')],
      ['type as a string', rawFrameHex('{"type":"1"}')],
      ['bad base64', rawFrameHex('{"type":1,"payload":"aGk"}')],
      ['a request on the message protocol', frameHex({ type: 2, requestId: 1n, payload: Buffer.from('x') })]
    ]
    for (const [what, hex] of bad) {
      const r = await a.cmd('raw', { peer: b.peer, protocol: MESSAGE_PROTOCOL, hex, timeout: 5 })
      assert.ok(r.ok, r.error)
      assert.equal(r.outcome, 'reset', what)
      const e = await b.next((x) => x.event === 'bad_frame')
      assert.equal(e.from, a.peer)
    }
    // Go's encoding, keys in another order and case, unknown keys: accepted.
    const ok = await a.cmd('raw', { peer: b.peer, protocol: MESSAGE_PROTOCOL, hex: rawFrameHex(' {"x":[1,{"y":"}"}],"PAYLOAD":"aGk=","Type":1} '), timeout: 5 })
    assert.equal(ok.outcome, 'closed')
    assert.equal((await b.next((x) => x.event === 'message' && x.text === 'hi')).from, a.peer)

    const req = await a.cmd('raw', { peer: b.peer, protocol: REQUEST_PROTOCOL, hex: rawFrameHex('{"type":2,"request_id":5,"payload":"YWJj"}'), timeout: 5 })
    assert.equal(req.outcome, 'closed')
    // Reversed, byte for byte as Go's json.Marshal writes the answer.
    assert.equal(req.reply_hex, rawFrameHex('{"type":3,"request_id":5,"payload":"Y2Jh"}'))
  })

  test('a namespace advertised by one peer is found by the other', async () => {
    const ns = '/daan/capability/reverse'
    const adv = await b.cmd('advertise', { namespace: ns })
    assert.ok(adv.ok, adv.error)
    assert.deepEqual(adv.peers, [a.peer])
    const cid = await a.cmd('cid', { namespace: '/daan/1.0.0' })
    // go-libp2p routing discovery's key for Go's namespace (CIDv1 raw, sha2-256).
    assert.equal(cid.cid, 'bafkreictyxe3ud4s53jrxsndypzfxrwzbr5dwuav4nr56lvzhl43hw7bmq')
    const found = await a.cmd('find', { namespace: ns })
    assert.ok(found.ok, found.error)
    assert.equal(found.cid, adv.cid)
    assert.deepEqual(found.providers.map(p => p.id), [b.peer])
    assert.ok(found.providers[0].addrs.length > 0)
    const nobody = await a.cmd('find', { namespace: '/daan/capability/nobody', timeout: 10 })
    assert.ok(nobody.ok, nobody.error)
    assert.deepEqual(nobody.providers, [])
  })
})

// ---------------------------------------------------------------- our daemon

// The daemon's environment: English, no inherited agentnetwork or locale settings.
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

// Runs `agentnetwork ARGS`: {code, stdout, stderr, ms, text}; killed after timeoutMs.
async function cli (args, timeoutMs = CLI_TIMEOUT_MS) {
  const started = Date.now()
  const child = track(spawn(DAEMON, args, { stdio: ['ignore', 'pipe', 'pipe'], env: daemonEnv() }))
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', d => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', d => { stderr += d })
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
  const code = await new Promise((resolve) => {
    child.once('error', (err) => { stderr += `spawn: ${err.message}`; resolve(-1) })
    child.once('close', (c, sig) => resolve(c ?? sig))
  })
  clearTimeout(timer)
  const ms = Date.now() - started
  const text = `agentnetwork ${args.join(' ')} -> exit ${code}${timedOut ? ` (killed after ${timeoutMs} ms)` : ''} in ${ms} ms\nstdout: ${tail(stdout, 2000)}\nstderr: ${tail(stderr, 2000)}`
  return { code, stdout, stderr, ms, text }
}

function pidAlive (pid) {
  try { process.kill(pid, 0); return true } catch (err) { return err.code === 'EPERM' }
}

let grpcLib = null
async function grpc () {
  if (grpcLib == null) {
    const g = (await import('@grpc/grpc-js')).default
    const loader = (await import('@grpc/proto-loader')).default
    const def = loader.loadSync(AGENT_PROTO, { keepCase: true, longs: String, enums: String, defaults: true })
    grpcLib = { g, Agent: g.loadPackageDefinition(def).agentnetwork.v1.Agent }
  }
  return grpcLib
}

// Our node: `agentnetwork start` in a fresh data dir, driven by the CLI and the Agent API.
class Daemon {
  static async start () {
    const node = new Daemon(mkdtempSync(join(tmpdir(), 'an-interop-daan-')))
    try {
      const r = await cli(['start', '-data', node.data, '-listen', '/ip4/127.0.0.1/tcp/0'])
      node.startText = r.text
      assert.equal(r.code, 0, `daemon start failed\n${r.text}`)
      const s = await cli(['status', '-data', node.data, '-json'])
      const status = JSON.parse(s.stdout)
      node.pid = status.pid
      daemonPids.add(node.pid)
      node.peer = status.node_id
      node.grpcTarget = status.grpc
      const tcp = (status.listen_addrs ?? []).find(a => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/.test(a.replace(/\/p2p\/[^/]+$/, '')))
      assert.ok(tcp, `status lists a 127.0.0.1 TCP address: ${s.stdout}`)
      node.addr = `${tcp.replace(/\/p2p\/[^/]+$/, '')}/p2p/${node.peer}`
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
  }

  // `agentnetwork COMMAND -data DIR ARGS...`
  run (command, ...args) { return cli([command, '-data', this.data, ...args]) }

  async inbox () {
    const r = await this.run('inbox', '-json', '-n', '1000')
    assert.equal(r.code, 0, r.text)
    return JSON.parse(r.stdout)
  }

  async log () { return (await this.run('logs', '-n', '5000')).stdout }

  async agent () {
    if (this.client == null) {
      const { g, Agent } = await grpc()
      assert.ok(this.grpcTarget, 'node.status has the API endpoint ("grpc")')
      this.client = new Agent(this.grpcTarget, g.credentials.createInsecure())
    }
    return this.client
  }

  async diag () { return `${this.startText ?? ''}\nlog:\n${tail(await this.log().catch(() => ''), 6000)}` }

  async stop () {
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

// What our messenger logs when a frame breaks the format: "daan: bad frame from PEER on PROTOCOL:
// REASON" (at most 20 such lines per 10 s).
const badFrameLine = (peer) => new RegExp(`daan: bad frame from ${peer} on /daan/(message|request)/1\\.0\\.0: `)

// Reverses by code point, as daan_peer's --mode reverse does.
const reverseText = (text) => [...text].reverse().join('')
const stripP2p = (addr) => addr.replace(/\/p2p\/[^/]+$/, '')

describe('daan js-libp2p <-> our daemon', { timeout: 150_000, skip: DAEMON ? false : 'AGENTNETWORK_BIN is unset (the js<->js cases run instead)' }, () => {
  let ours
  let js
  before(async () => {
    // Both start at once; whichever started is stopped by after() when the other failed.
    const [daemon, peer] = await Promise.allSettled([Daemon.start(), DaanPeer.start('--mode', 'reverse')])
    ours = daemon.value
    js = peer.value
    for (const r of [daemon, peer]) if (r.status === 'rejected') throw r.reason
    const dial = await js.cmd('dial', { addr: ours.addr, timeout: 10 })
    assert.ok(dial.ok, dial.error)
    assert.equal(dial.remote_peer, ours.peer)
  })
  after(async () => { await Promise.all([ours?.stop(), js?.stop()]) })

  // A case whose failure carries the daemon's log and the js peer's stderr.
  function withDiagnostics (fn) {
    return async (t) => {
      try {
        await fn(t)
      } catch (err) {
        const e = new Error(`${err?.stack ?? err}\n--- our daemon ---\n${ours ? await ours.diag() : '(not started)'}\n--- js peer stderr ---\n${tail(js?.stderr ?? '', 3000)}`)
        e.stack = e.message
        throw e
      }
    }
  }

  test('js -> us: messages land in our inbox with the js sender (text, binary, empty)', withDiagnostics(async () => {
    const text = 'héllo from js-libp2p 🌍'
    const binary = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x01, 0xc3])
    for (const fields of [{ text }, { payload_b64: binary.toString('base64') }, { payload_b64: '' }]) {
      const sent = await js.cmd('send', { addr: ours.addr, ...fields })
      assert.ok(sent.ok, `send ${JSON.stringify(fields)}: ${sent.error}`)
      assert.equal(sent.stored, true)
    }
    // The stream was closed by us only once each message was stored: no waiting here.
    const inbox = await ours.inbox()
    const fromJs = inbox.filter(m => m.from === js.peer)
    assert.equal(fromJs.length, 3, `three messages from ${js.peer}: ${JSON.stringify(inbox)}`)
    assert.deepEqual(fromJs.map(m => [m.payload, m.payload_encoding]), [
      [text, 'utf-8'],
      [binary.toString('base64'), 'base64'],
      ['', 'utf-8']
    ])
    for (const m of fromJs) assert.match(m.received_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  }))

  test('js -> us: a request with no agent serving is answered "no handler registered" at once', withDiagnostics(async () => {
    const r = await js.cmd('request', { addr: ours.addr, text: 'anyone there?', request_id: 77 })
    assert.ok(r.ok, r.error)
    assert.equal(r.answer, 'error')
    assert.equal(r.text, NO_HANDLER_TEXT)
    assert.equal(r.request_id, 77)
    assert.ok(r.ms < AT_ONCE_MS, `answered in ${r.ms} ms`)
  }))

  test('js -> us: a request served by an agent through gRPC ServeRequests', withDiagnostics(async (t) => {
    const client = await ours.agent()
    const call = client.ServeRequests()
    const seen = []
    call.on('data', (req) => {
      seen.push(req)
      const text = req.payload.toString('utf8')
      if (text === 'please fail') call.write({ request_id: req.request_id, payload: Buffer.from('the agent says no'), error: true })
      else call.write({ request_id: req.request_id, payload: Buffer.from(reverseText(text)), error: false })
    })
    const ended = new Promise(resolve => { call.on('error', resolve); call.on('end', resolve) })
    try {
      // The stream is registered at the node asynchronously: until then requests get the
      // no-handler answer. A request_id above 2^53, written as digits, must come back exact.
      let n = 0
      const answered = await retry('a request answered by the serving agent', SERVE_REGISTER_S, async () => {
        const id = `big${++n}`
        const r = await js.cmdLine(id, `{"id":"${id}","cmd":"request","addr":"${ours.addr}","text":"héllo agent 🌍","request_id":9007199254740993,"timeout":10}`, 10)
        assert.ok(r.ok, r.error)
        assert.equal(r.answer, 'response', `answer ${r.answer}: ${r.text}`)
        return r
      }, 200)
      assert.equal(answered.text, '🌍 tnega olléh')
      assert.match(answered.raw, /"request_id":9007199254740993[,}]/)
      assert.ok(seen.length >= 1)
      assert.equal(seen.at(-1).from, js.peer)
      assert.equal(seen.at(-1).payload.toString('utf8'), 'héllo agent 🌍')

      const failed = await js.cmd('request', { addr: ours.addr, text: 'please fail', request_id: 5 })
      assert.ok(failed.ok, failed.error)
      assert.equal(failed.answer, 'error')
      assert.equal(failed.text, 'the agent says no')
      assert.equal(failed.request_id, 5)
      t.diagnostic(`served round trip ${answered.ms.toFixed(1)} ms (${n} request(s) until the agent was registered)`)
    } finally {
      call.cancel()
      await Promise.race([ended, sleep(2000)])
    }
  }))

  test('us -> js: agentnetwork send (by multiaddr and by peer ID); a refusal exits 1', withDiagnostics(async () => {
    const byAddr = await ours.run('send', js.addr, 'hello js, from our node')
    assert.equal(byAddr.code, 0, byAddr.text)
    const got = await js.next(e => e.event === 'message')
    assert.equal(got.from, ours.peer)
    assert.equal(got.text, 'hello js, from our node')

    const byId = await ours.run('send', js.peer, 'again, by peer ID')
    assert.equal(byId.code, 0, byId.text)
    assert.equal((await js.next(e => e.event === 'message')).text, 'again, by peer ID')

    try {
      assert.ok((await js.cmd('set_mode', { message_mode: 'refuse' })).ok)
      const refused = await ours.run('send', js.addr, 'this one is refused')
      assert.equal(refused.code, 1, refused.text)
      assert.ok(refused.ms < 15_000, `refused in ${refused.ms} ms: the reset ends the send, not a timeout`)
      const seenRefused = await js.next(e => e.event === 'message')
      assert.equal(seenRefused.text, 'this one is refused')
      assert.equal((await js.cmd('stats')).refused, 1)
    } finally {
      await js.cmd('set_mode', { message_mode: 'store' })
    }
  }))

  test('us -> js: agentnetwork request prints the answer; an error answer exits 1 with its text', withDiagnostics(async () => {
    const r = await ours.run('request', js.addr, 'héllo 🌍', '-timeout', '10')
    assert.equal(r.code, 0, r.text)
    assert.equal(r.stdout, '🌍 olléh\n')
    const served = await js.next(e => e.event === 'request')
    assert.equal(served.from, ours.peer)
    assert.equal(served.text, 'héllo 🌍')
    assert.equal(served.answer, 'response')

    try {
      assert.ok((await js.cmd('set_mode', { mode: 'none' })).ok)
      const none = await ours.run('request', js.addr, 'anyone?', '-timeout', '10')
      assert.equal(none.code, 1, none.text)
      assert.match(none.stderr, /no handler registered/, none.text)
      assert.equal(none.stdout, '', none.text)
    } finally {
      await js.cmd('set_mode', { mode: 'reverse' })
    }
  }))

  test('bad frames from js: each stream reset, logged, and our node keeps serving', withDiagnostics(async (t) => {
    const bad = [
      ['a length over the 16 MiB cap', MESSAGE_PROTOCOL, (MAX_FRAME_SIZE + 1).toString(16).padStart(8, '0')],
      ['a truncated frame', MESSAGE_PROTOCOL, rawFrameHex('{"type":1,"payload":"aGk="}').slice(0, 20)],
      ['invalid JSON', MESSAGE_PROTOCOL, rawFrameHex('{"type":1,"payload":')],
      ['type 7', MESSAGE_PROTOCOL, rawFrameHex('{"type":7,"payload":"aGk="}')],
      ['invalid JSON on the request protocol', REQUEST_PROTOCOL, rawFrameHex('[1,2,3]')]
    ]
    for (const [what, protocol, hex] of bad) {
      const r = await js.cmd('raw', { addr: ours.addr, protocol, hex, timeout: 10 })
      assert.ok(r.ok, `${what}: ${r.error}`)
      assert.equal(r.outcome, 'reset', `${what}: our node resets the stream (got ${r.outcome}, reply ${r.reply_hex})`)
      assert.equal(r.reply_hex, '', `${what}: no answer`)
    }
    // Still serving, on the same connection: a message is stored, a request answered.
    const sent = await js.cmd('send', { addr: ours.addr, text: 'after the bad frames' })
    assert.ok(sent.ok, sent.error)
    assert.ok((await ours.inbox()).some(m => m.from === js.peer && m.payload === 'after the bad frames'))
    const asked = await js.cmd('request', { addr: ours.addr, text: 'still there?', timeout: 10 })
    assert.ok(asked.ok, asked.error)
    assert.equal(asked.answer, 'error')

    // And the log says so, one line each, naming the peer and the protocol.
    const pattern = badFrameLine(js.peer)
    const lines = await retry('the bad frames in our log', 5, async () => {
      const found = (await ours.log()).split('\n').filter(l => pattern.test(l))
      assert.equal(found.length, bad.length, `${bad.length} log lines match ${pattern}: ${JSON.stringify(found)}`)
      return found
    }, 500)
    for (const l of lines) t.diagnostic(`log: ${l}`)
  }))

  // Our node advertises /daan/1.0.0 by itself a moment after it starts: to the js peer when it is
  // connected by then (ADD_PROVIDER from us), and in its own provider store in any case. A js
  // peer that joins afterwards, connected to our node only, has nothing in its store: its lookup
  // starts with GET_PROVIDERS to our node.
  test('DHT: js kad-dht finds our node as a provider of /daan/1.0.0', withDiagnostics(async (t) => {
    const findUs = (peer) => retry(`js findProviders(${NETWORK_NAMESPACE}) to list our node`, DHT_WAIT_S, async () => {
      const r = await peer.cmd('find', { namespace: NETWORK_NAMESPACE, limit: 1, timeout: 5 })
      assert.ok(r.ok, r.error)
      const us = r.providers.find(p => p.id === ours.peer)
      assert.ok(us, `providers ${JSON.stringify(r.providers)} include ${ours.peer}`)
      assert.ok(us.addrs.map(stripP2p).includes(stripP2p(ours.addr)), `with our address ${stripP2p(ours.addr)}: ${JSON.stringify(us.addrs)}`)
      return us
    })
    const found = await findUs(js)
    t.diagnostic(`the js peer found our node at ${found.addrs.join(' ')}`)

    const late = await DaanPeer.start('--listen', 'none')
    try {
      const dial = await late.cmd('dial', { addr: ours.addr, timeout: 10 })
      assert.ok(dial.ok, dial.error)
      const again = await findUs(late)
      t.diagnostic(`a js peer that joined later found our node at ${again.addrs.join(' ')}`)
    } finally {
      await late.stop()
    }
  }))

  test('DHT: our discover finds a js provider of /daan/capability/js-test', withDiagnostics(async (t) => {
    const ns = '/daan/capability/js-test'
    const adv = await retry(`js provide(${ns}) taken by our node`, DHT_WAIT_S, async () => {
      const r = await js.cmd('advertise', { namespace: ns, timeout: 10 })
      assert.ok(r.ok, r.error)
      assert.ok(r.peers.includes(ours.peer), `ADD_PROVIDER taken by ${ours.peer}: ${JSON.stringify(r)}`)
      return r
    })
    t.diagnostic(`js advertised ${ns} (${adv.cid}) to ${adv.peers.join(',')}`)
    const jsTcp = stripP2p(js.addr)
    const peers = await retry(`agentnetwork discover ${ns} to list the js peer`, DHT_WAIT_S, async () => {
      const r = await ours.run('discover', ns, '-json')
      assert.equal(r.code, 0, r.text)
      const list = JSON.parse(r.stdout)
      const entry = list.find(p => p.peer_id === js.peer)
      assert.ok(entry, `discover lists ${js.peer}: ${r.stdout}`)
      assert.ok(entry.addresses.includes(jsTcp), `with its address ${jsTcp}: ${r.stdout}`)
      return list
    })
    t.diagnostic(`discover: ${JSON.stringify(peers)}`)
    const nobody = await ours.run('discover', '/daan/capability/nobody-has-this', '-json')
    assert.equal(nobody.code, 0, nobody.text)
    assert.deepEqual(JSON.parse(nobody.stdout), [])
  }))
})
