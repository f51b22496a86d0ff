// Interop tests between js-libp2p (peer.mjs) and our C++ implementation, with node:test.
//
// Environment:
//   AN_P2P_TOOL       our C++ tool with peer.mjs's CLI (listen / dial). Unset: peer.mjs plays
//                     "ours" too (js<->js), which checks the runner and the js side.
//   AGENTNETWORK_BIN  our daemon; when set, the daemon cases run too (else they are skipped).
//   AN_EXPECTED_AGENT_VERSION  optional: exact agent version our tool must report
//                     (otherwise it must start with "agentnetwork/").
//   INTEROP_DIAL_TIMEOUT  optional: seconds each dialer may take (default 45; case timeout +15).
//
// Run: bash run.sh   (or: node --import ./polyfill.mjs --test --test-concurrency=1 run_interop.mjs)
import './polyfill.mjs'

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'

const HERE = dirname(fileURLToPath(import.meta.url))
const PEER_JS = join(HERE, 'peer.mjs')
const POLYFILL = join(HERE, 'polyfill.mjs')

// --timeout given to every dialer; we SIGKILL a dialer still running 8 s after it.
const DIAL_TIMEOUT_S = Number(process.env.INTEROP_DIAL_TIMEOUT ?? 45)
const CASE_TIMEOUT_MS = (DIAL_TIMEOUT_S + 15) * 1000 // node:test timeout of every case (60 s)
const LISTEN_READY_MS = 20_000
const ECHO_BYTES = 64 * 1024 * 1024
const STREAMS = 100
const STREAM_BYTES = 64 * 1024
const PING_COUNT = 5
const LISTEN_ADDR = '/ip4/127.0.0.1/tcp/0'

const REQUIRED_PROTOCOLS = ['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0', '/echo/1.0.0']

const JS = { name: 'js', cmd: process.execPath, args: ['--import', POLYFILL, PEER_JS], agent: /^js-libp2p\// }
const OURS_TOOL = process.env.AN_P2P_TOOL
const OURS = OURS_TOOL
  ? {
      name: 'ours',
      cmd: OURS_TOOL,
      args: [],
      agent: process.env.AN_EXPECTED_AGENT_VERSION
        ? new RegExp('^' + process.env.AN_EXPECTED_AGENT_VERSION.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$')
        : /^agentnetwork\//
    }
  : { ...JS, name: 'ours(js stand-in)' }
const DAEMON = process.env.AGENTNETWORK_BIN

// ---------------------------------------------------------------- process bookkeeping

const children = new Set()
process.on('exit', () => {
  for (const child of children) {
    try { child.kill('SIGKILL') } catch {}
  }
})

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

function tail (text, n = 3000) { return text.length > n ? '…' + text.slice(-n) : text }

// ---------------------------------------------------------------- peers

// Starts `impl listen`; resolves once it printed its JSON line. Always call .stop().
async function startListener (impl, extra = []) {
  const args = [...impl.args, 'listen', '--listen', LISTEN_ADDR, ...extra]
  const child = track(spawn(impl.cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] }))
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', d => { stderr += d })
  const listener = {
    child,
    impl,
    stderr: () => stderr,
    stop: () => stopChild(child)
  }
  try {
    listener.info = await withTimeout(new Promise((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (d) => {
        stdout += d
        const nl = stdout.indexOf('\n')
        if (nl >= 0) {
          try { resolve(JSON.parse(stdout.slice(0, nl))) } catch (err) { reject(new Error(`bad listen line ${JSON.stringify(stdout.slice(0, nl))}: ${err.message}`)) }
        }
      })
      child.once('exit', (code, sig) => reject(new Error(`${impl.name} listener exited (${code ?? sig}) before listening; stderr: ${tail(stderr)}`)))
      child.once('error', reject)
    }), LISTEN_READY_MS, `${impl.name} listener to print its address`)
  } catch (err) {
    await listener.stop()
    throw err
  }
  const info = listener.info
  assert.equal(typeof info.peer_id, 'string', `listener peer_id: ${JSON.stringify(info)}`)
  assert.ok(Array.isArray(info.addrs) && info.addrs.length > 0, `listener addrs: ${JSON.stringify(info)}`)
  // The address to dial: the first 127.0.0.1 TCP one, with /p2p/.
  let addr = info.addrs.find(a => a.startsWith('/ip4/127.0.0.1/tcp/')) ?? info.addrs[0]
  if (!addr.includes('/p2p/')) addr += '/p2p/' + info.peer_id
  listener.addr = addr
  return listener
}

// Runs `impl dial ADDR ...`; resolves with {code, json, stdout, stderr, seconds}.
async function runDial (impl, addr, actionArgs, timeoutS = DIAL_TIMEOUT_S) {
  const args = [...impl.args, 'dial', addr, ...actionArgs, '--timeout', String(timeoutS)]
  const started = performance.now()
  const child = track(spawn(impl.cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', d => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', d => { stderr += d })
  const spawnError = new Promise((_resolve, reject) => child.once('error', reject))
  let killed = false
  const killer = setTimeout(() => { killed = true; child.kill('SIGKILL') }, (timeoutS + 8) * 1000)
  try {
    await Promise.race([exited(child), spawnError])
  } finally {
    clearTimeout(killer)
  }
  const seconds = (performance.now() - started) / 1000
  const lines = stdout.split('\n').filter(l => l.trim() !== '')
  let json = null
  try { json = JSON.parse(lines[lines.length - 1] ?? '') } catch {}
  const result = { code: child.exitCode, signal: child.signalCode, json, stdout, stderr, seconds, killed, args }
  result.describe = () => `${impl.name} dial ${args.slice(impl.args.length + 1).join(' ')}\nexit ${result.code ?? result.signal}${killed ? ' (killed: hung)' : ''} after ${seconds.toFixed(2)}s\nstdout: ${tail(stdout)}\nstderr: ${tail(stderr)}`
  return result
}

function assertDialOk (r) {
  assert.ok(!r.killed, `dialer hung and was killed\n${r.describe()}`)
  assert.equal(r.code, 0, `dialer failed\n${r.describe()}`)
  assert.ok(r.json && typeof r.json === 'object' && !('error' in r.json), `dialer output is not a result\n${r.describe()}`)
  return r.json
}

function stripP2p (addr) { return addr.replace(/\/p2p\/[^/]+$/, '') }

function assertIdentify (out, listener, r) {
  const ctx = `\n${r.describe()}`
  assert.equal(out.remote_peer, listener.info.peer_id, 'remote_peer is the listener' + ctx)
  const id = out.identify
  assert.ok(id && typeof id === 'object', 'identify result present' + ctx)
  assert.match(String(id.agent_version), listener.impl.agent, 'listener agent version' + ctx)
  assert.equal(typeof id.protocol_version, 'string', 'protocol_version is a string' + ctx)
  assert.ok(Array.isArray(id.protocols), 'protocols is an array' + ctx)
  for (const p of REQUIRED_PROTOCOLS) assert.ok(id.protocols.includes(p), `protocols include ${p}` + ctx)
  assert.ok(Array.isArray(id.listen_addrs), 'listen_addrs is an array' + ctx)
  const dialled = stripP2p(listener.addr)
  assert.ok(id.listen_addrs.map(stripP2p).includes(dialled), `listen_addrs ${JSON.stringify(id.listen_addrs)} include the dialled ${dialled}` + ctx)
  assert.equal(id.public_key_peer_id, listener.info.peer_id, 'the identify public key is the peer ID' + ctx)
  assert.match(String(id.observed_addr), /^\/ip4\/127\.0\.0\.1\/tcp\/\d+(\/|$)/, 'observed_addr is 127.0.0.1' + ctx)
}

function assertPings (out, r) {
  const rtts = out.ping_rtts_ms
  assert.ok(Array.isArray(rtts) && rtts.length === PING_COUNT, `${PING_COUNT} RTTs\n${r.describe()}`)
  for (const rtt of rtts) assert.ok(typeof rtt === 'number' && rtt > 0 && Number.isFinite(rtt), `RTT ${rtt} > 0\n${r.describe()}`)
}

// ---------------------------------------------------------------- peer-to-peer cases

const PAIRS = [
  { listener: OURS, dialer: JS },
  { listener: JS, dialer: OURS }
]

for (const { listener: L, dialer: D } of PAIRS) {
  describe(`listener=${L.name} dialer=${D.name}`, () => {
    // One fresh listener per case, so a failed case cannot spoil the next one.
    async function withListener (t, fn) {
      const listener = await startListener(L)
      t.after(() => listener.stop())
      try {
        return await fn(listener)
      } catch (err) {
        err.message += `\n--- ${L.name} listener stderr ---\n${tail(listener.stderr())}`
        throw err
      }
    }

    test('connect + identify', { timeout: CASE_TIMEOUT_MS }, (t) => withListener(t, async (listener) => {
      const r = await runDial(D, listener.addr, ['--identify'])
      const out = assertDialOk(r)
      assertIdentify(out, listener, r)
      t.diagnostic(`agent_version=${out.identify.agent_version} protocols=${out.identify.protocols.join(',')}`)
    }))

    test(`ping ${PING_COUNT} times`, { timeout: CASE_TIMEOUT_MS }, (t) => withListener(t, async (listener) => {
      const r = await runDial(D, listener.addr, ['--ping', String(PING_COUNT)])
      const out = assertDialOk(r)
      assert.equal(out.remote_peer, listener.info.peer_id)
      assertPings(out, r)
      t.diagnostic(`rtts_ms=${out.ping_rtts_ms.join(',')}`)
    }))

    test('64 MiB echo on one stream', { timeout: CASE_TIMEOUT_MS }, (t) => withListener(t, async (listener) => {
      const r = await runDial(D, listener.addr, ['--echo', String(ECHO_BYTES)])
      const out = assertDialOk(r)
      const e = out.echo
      assert.ok(e && typeof e === 'object', `echo result\n${r.describe()}`)
      assert.equal(e.bytes, ECHO_BYTES, `echo bytes\n${r.describe()}`)
      assert.match(String(e.sha256_sent), /^[0-9a-f]{64}$/, `sha256_sent\n${r.describe()}`)
      assert.equal(e.sha256_received, e.sha256_sent, `echoed data intact\n${r.describe()}`)
      assert.ok(typeof e.seconds === 'number' && e.seconds > 0, `echo seconds\n${r.describe()}`)
      const mbps = ECHO_BYTES / e.seconds / 1e6
      const line = `${L.name}<-${D.name} 64 MiB echo: ${e.seconds.toFixed(3)} s = ${mbps.toFixed(1)} MB/s each way (${(mbps / 1.048576).toFixed(1)} MiB/s); process wall ${r.seconds.toFixed(2)} s`
      t.diagnostic(line)
    }))

    test(`${STREAMS} concurrent echo streams of ${STREAM_BYTES / 1024} KiB`, { timeout: CASE_TIMEOUT_MS }, (t) => withListener(t, async (listener) => {
      const r = await runDial(D, listener.addr, ['--streams', String(STREAMS), '--stream-bytes', String(STREAM_BYTES)])
      const out = assertDialOk(r)
      assert.deepEqual(out.streams, { opened: STREAMS, ok: STREAMS, failed: 0 }, `all streams ok\n${r.describe()}`)
      const line = `${L.name}<-${D.name} ${STREAMS}x${STREAM_BYTES / 1024} KiB streams: process wall ${r.seconds.toFixed(2)} s`
      t.diagnostic(line)
    }))
  })
}

// ---------------------------------------------------------------- daemon cases

const skipDaemon = DAEMON ? false : 'AGENTNETWORK_BIN not set'

// The daemon's environment: English, no inherited agentnetwork/locale settings (as tests/functional).
function daemonEnv () {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'LANG' || k === 'LANGUAGE' || k === 'NOTIFY_SOCKET' || k.startsWith('LC_') || k.startsWith('AGENTNETWORK_')) continue
    env[k] = v
  }
  env.LANG = 'C'
  return env
}

// Runs the daemon CLI to completion (bounded).
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
  return { code: child.exitCode, stdout, stderr, text: `agentnetwork ${args.join(' ')} -> exit ${child.exitCode ?? child.signalCode}\nstdout: ${tail(stdout)}\nstderr: ${tail(stderr)}` }
}

async function statusJson (data) {
  const r = await cli(['status', '-data', data, '-json'])
  try { return JSON.parse(r.stdout) } catch { throw new Error(`status -json did not print JSON\n${r.text}`) }
}

function pidAlive (pid) {
  try { process.kill(pid, 0); return true } catch (err) { return err.code === 'EPERM' }
}

// Starts a daemon in a fresh data dir; registers its stop (and the dir's removal) with t.after.
async function startDaemon (t, extra = []) {
  const data = mkdtempSync(join(tmpdir(), 'an-interop-'))
  const node = { data, pid: 0 }
  t.after(async () => {
    await cli(['stop', '-data', data, '-timeout', '5'], 20_000).catch(() => {})
    if (node.pid > 0 && pidAlive(node.pid)) {
      try { process.kill(node.pid, 'SIGKILL') } catch {}
      for (let i = 0; i < 50 && pidAlive(node.pid); i++) await sleep(100)
    }
    rmSync(data, { recursive: true, force: true })
  })
  const r = await cli(['start', '-data', data, '-listen', LISTEN_ADDR, ...extra], 40_000)
  assert.equal(r.code, 0, `daemon start failed\n${r.text}`)
  const status = await statusJson(data)
  node.pid = status.pid
  node.status = status
  node.nodeId = status.node_id
  node.logFile = status.log_file
  node.log = () => { try { return readFileSync(node.logFile, 'utf8') } catch { return '' } }
  return node
}

describe('daemon', { skip: skipDaemon }, () => {
  test('(a) js dials the daemon: identify + ping', { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const node = await startDaemon(t)
    const addrs = node.status.listen_addrs ?? []
    let addr = addrs.find(a => a.startsWith('/ip4/127.0.0.1/tcp/'))
    assert.ok(addr, `daemon listen_addrs ${JSON.stringify(addrs)} has a 127.0.0.1 TCP address`)
    if (!addr.includes('/p2p/')) addr += '/p2p/' + node.nodeId
    const r = await runDial(JS, addr, ['--identify', '--ping', String(PING_COUNT)])
    const ctx = `\n${r.describe()}\n--- daemon log ---\n${tail(node.log())}`
    assert.ok(r.code === 0 && r.json && !('error' in r.json), 'js dial of the daemon failed' + ctx)
    const out = r.json
    assert.equal(out.remote_peer, node.nodeId, 'remote_peer is the daemon' + ctx)
    assert.match(String(out.identify?.agent_version), /^agentnetwork\//, 'daemon agent version' + ctx)
    for (const p of ['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0']) assert.ok(out.identify.protocols?.includes(p), `protocols include ${p}` + ctx)
    assert.equal(out.identify.public_key_peer_id, node.nodeId, 'identify public key is the node ID' + ctx)
    assertPings(out, r)
    t.diagnostic(`daemon agent_version=${out.identify.agent_version} rtts_ms=${out.ping_rtts_ms.join(',')}`)
  })

  test('(b) the daemon dials a js listener via -bootstrap', { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const listener = await startListener(JS)
    t.after(() => listener.stop())
    const node = await startDaemon(t, ['-bootstrap', listener.addr])
    let status
    const deadline = Date.now() + 10_000
    for (;;) {
      status = await statusJson(node.data)
      if (status.peer_count >= 1 || Date.now() > deadline) break
      await sleep(200)
    }
    const ctx = () => `\nstatus: ${JSON.stringify(status)}\n--- daemon log ---\n${tail(node.log())}\n--- js listener stderr ---\n${tail(listener.stderr())}`
    assert.equal(status.peer_count, 1, 'peer_count 1 within 10 s' + ctx())
    if (Array.isArray(status.peers)) {
      assert.ok(JSON.stringify(status.peers).includes(listener.info.peer_id), 'status peers lists the js peer' + ctx())
    }
    // The js side saw the daemon's node ID (authenticated by noise).
    for (let i = 0; i < 50 && !listener.stderr().includes(node.nodeId); i++) await sleep(100)
    assert.ok(listener.stderr().includes(`connection from ${node.nodeId}`), 'js listener saw a connection from the daemon' + ctx())
  })

  test('(c) -bootstrap with the wrong /p2p/ ID is refused', { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const listener = await startListener(JS)
    t.after(() => listener.stop())
    const wrongId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    assert.notEqual(wrongId, listener.info.peer_id)
    const wrongAddr = stripP2p(listener.addr) + '/p2p/' + wrongId
    const node = await startDaemon(t, ['-bootstrap', wrongAddr])
    const started = Date.now()
    let status
    while (Date.now() - started < 5_000) {
      status = await statusJson(node.data)
      assert.equal(status.peer_count, 0, `peer_count stays 0 (wrong peer ID)\nstatus: ${JSON.stringify(status)}\n--- daemon log ---\n${tail(node.log())}`)
      await sleep(250)
    }
    const mismatch = /mismatch|does not match|doesn't match|unexpected peer|wrong peer|expected peer/i
    for (let i = 0; i < 50 && !mismatch.test(node.log()); i++) await sleep(100)
    const log = node.log()
    assert.match(log, mismatch, `the daemon log mentions the peer ID mismatch (expected ${wrongId}, got ${listener.info.peer_id})\n--- daemon log ---\n${tail(log)}`)
    // It should name at least one of the two IDs near the complaint.
    assert.ok(log.includes(wrongId) || log.includes(listener.info.peer_id), `the daemon log names the peer IDs\n--- daemon log ---\n${tail(log)}`)
  })
})

