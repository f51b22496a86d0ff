#!/usr/bin/env node
// Runs libp2p's cross-implementation interop suite (@libp2p/interop) under mocha with our node in
// the suite's "go" slot and js-libp2p (in process, behind @libp2p/daemon-server) in its "js" slot.
//
// Env:
//   AGENTNETWORK_BIN   our binary; the "go" slot runs `$AGENTNETWORK_BIN p2pd <go-libp2p-daemon
//                      flags>`. Unset: js x js, the "go" slot is js-libp2p, as set by
//   INTEROP_JS_GO_SLOT inprocess (default): like the "js" slot, but refusing what the "go" slot
//                      refuses; process: js_daemon.mjs as a child process given the same flags,
//                      which runs this harness's spawn and output parsing end to end, but starts
//                      Node and js-libp2p for every daemon (~1-3 s each on a busy machine; give it
//                      INTEROP_BUDGET_S=900 there).
//   INTEROP_ALLOW_UNSUPPORTED=1  a "go" daemon that exits at start-up saying "not supported yet"
//                      skips the test instead of failing it (default: it fails).
//   INTEROP_GROUPS     comma list out of connect,streams,dht,relay,pubsub (default: all five).
//   INTEROP_PUBSUB_ALL=1  also run the suite's gossipsub and hybrid (floodsub with gossipsub)
//                      pubsub tests, which the suite itself registers skipped ("until gossipsub
//                      supports event target streams", a note about js-libp2p); unchanged
//                      otherwise. Without it only the floodsub tests of the group run.
//   INTEROP_GREP       only tests whose full title matches this regular expression.
//   INTEROP_BUDGET_S   whole-run limit in seconds (default 540); past it the run fails.
//   INTEROP_DEBUG=1    pass the "go" daemon's output through to stderr; time spawns and stops.
// Single-threaded (Node event loop); mocha runs the tests one at a time.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient } from '@libp2p/daemon-client'
import { connectInteropTests, dhtInteropTests, pubsubInteropTests, relayInteropTests, streamInteropTests, UnsupportedError } from '@libp2p/interop'
import Mocha from 'mocha'
import { createJsDaemon, parseControlMultiaddr } from './js_daemon.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const GROUPS = { connect: connectInteropTests, streams: streamInteropTests, dht: dhtInteropTests, relay: relayInteropTests, pubsub: withSkippedPubsubTests(pubsubInteropTests) }
const GO_STARTUP_TIMEOUT_MS = 15_000
const GO_STOP_GRACE_MS = 3_000
// Tests the suite leaves at mocha's 2 s default (relay, DHT routing) do several network round
// trips; the suite's own runner (aegir) gives every test 60 s. Ours is tighter.
const DEFAULT_TEST_TIMEOUT_MS = 30_000

const agentnetworkBin = process.env.AGENTNETWORK_BIN || ''
const jsGoSlot = process.env.INTEROP_JS_GO_SLOT || 'inprocess'
if (agentnetworkBin === '' && jsGoSlot !== 'process' && jsGoSlot !== 'inprocess') {
  console.error(`suite: INTEROP_JS_GO_SLOT must be process or inprocess, not ${jsGoSlot}`)
  process.exit(2)
}
let goSlot
if (agentnetworkBin !== '') {
  goSlot = { label: `agentnetwork (${agentnetworkBin} p2pd)`, command: agentnetworkBin, prefix: ['p2pd'] }
} else if (jsGoSlot === 'process') {
  goSlot = { label: 'js-libp2p (js_daemon.mjs in a child process, go-libp2p-daemon flags)', command: process.execPath, prefix: ['--import', join(HERE, 'polyfill.mjs'), join(HERE, 'js_daemon.mjs')] }
} else {
  goSlot = { label: 'js-libp2p in process (like the "js" slot)', inProcess: true }
}
const allowUnsupported = process.env.INTEROP_ALLOW_UNSUPPORTED === '1'
const pubsubAll = process.env.INTEROP_PUBSUB_ALL === '1'
const groups = (process.env.INTEROP_GROUPS || 'connect,streams,dht,relay,pubsub').split(',').map(s => s.trim()).filter(Boolean)
for (const group of groups) {
  if (GROUPS[group] == null) {
    console.error(`suite: unknown group ${group} (known: ${Object.keys(GROUPS).join(', ')})`)
    process.exit(2)
  }
}
const budgetSeconds = Number(process.env.INTEROP_BUDGET_S || 540)
const debug = process.env.INTEROP_DEBUG === '1'

// The suite names each echo test "<key>/<encryption>/<muxer> echo" but leaves the muxer out of
// the SpawnOptions it passes, so both daemons would always run their default (yamux). The muxer
// is taken from the enclosing suite's title instead, so that mplex really is exercised.
let currentSuiteTitle = ''
const ECHO_TITLE = /^(?:ed25519|rsa|secp256k1)\/(?:noise|tls|plaintext)\/(mplex|yamux) echo$/

function withMuxerFromTitle (options) {
  const match = ECHO_TITLE.exec(currentSuiteTitle)
  if (options.muxer == null && match != null) return { ...options, muxer: match[1] }
  return options
}

// The suite registers its gossipsub and hybrid pubsub tests with describe.skip; with
// INTEROP_PUBSUB_ALL=1 they are registered as ordinary suites instead, bodies unchanged.
function withSkippedPubsubTests (register) {
  return async (factory) => {
    if (!pubsubAll) return register(factory)
    const skip = globalThis.describe.skip
    globalThis.describe.skip = globalThis.describe
    try {
      return await register(factory)
    } finally {
      globalThis.describe.skip = skip
    }
  }
}

const running = new Set()

function goDaemonArgs (options) {
  const transport = options.transport ?? 'tcp'
  // Our node speaks TCP only: no QUIC, WebTransport or WebRTC.
  if (transport !== 'tcp') throw new UnsupportedError(`go slot: transport ${transport} not supported`)
  // The same flags, in the same order, as js-libp2p's interop runner passes to go-libp2p-daemon.
  const args = ['-listen=/ip4/127.0.0.1/tcp/0']
  args.push(options.noListen === true ? '-noListenAddrs' : '-hostAddrs=/ip4/127.0.0.1/tcp/0')
  if (options.encryption != null) args.push(`-${options.encryption}=true`)
  if (options.dht === true) args.push('-dhtServer')
  if (options.relay === true) args.push('-relay')
  if (options.pubsub === true) args.push('-pubsub')
  if (options.pubsubRouter != null) args.push(`-pubsubRouter=${options.pubsubRouter}`)
  // The suite's key files already hold a libp2p PrivateKey protobuf, which is what -id reads.
  if (options.key != null) args.push(`-id=${options.key}`)
  args.push(options.muxer === 'mplex' ? '-muxer=mplex' : '-muxer=yamux')
  return args
}

async function spawnGoDaemon (options) {
  const args = [...goSlot.prefix, ...goDaemonArgs(options)]
  const child = spawn(goSlot.command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  const exited = new Promise(resolve => child.once('exit', (code, signal) => { running.delete(child); resolve({ code, signal }) }))
  let output = ''
  let controlAddr

  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`go slot: no "Control socket:" line within ${GO_STARTUP_TIMEOUT_MS} ms`)), GO_STARTUP_TIMEOUT_MS)
    child.once('error', err => { clearTimeout(timer); reject(err) })
    exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`go slot: daemon exited before start-up (code ${code}, signal ${signal})`)) })
    child.stdout.on('data', buf => {
      output += buf.toString()
      if (debug) process.stderr.write(`[go ${child.pid}] ${buf}`)
      const match = /Control socket:\s*(\S+)/.exec(output)
      if (match != null && controlAddr == null) {
        controlAddr = parseControlMultiaddr(match[1])
        clearTimeout(timer)
        resolve()
      }
    })
    child.stderr.on('data', buf => {
      output += buf.toString()
      if (debug) process.stderr.write(`[go ${child.pid}] ${buf}`)
    })
  })

  const stop = async () => {
    if (child.exitCode != null || child.signalCode != null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), GO_STOP_GRACE_MS)
    await exited
    clearTimeout(timer)
  }
  try {
    await started
  } catch (err) {
    await stop()
    if (allowUnsupported && /not supported yet/i.test(output)) {
      throw new UnsupportedError(`go slot: ${output.trim().split('\n').filter(l => /not supported yet/i.test(l))[0]}`)
    }
    err.message += `\n  command: ${goSlot.command} ${args.join(' ')}\n  output:\n${output.trimEnd().split('\n').slice(-20).map(l => '    ' + l).join('\n')}`
    throw err
  }
  return { client: createClient(controlAddr), stop }
}

function timed (label, daemon) {
  if (!debug) return daemon
  const stop = daemon.stop
  return {
    ...daemon,
    stop: async () => {
      const t = Date.now()
      await stop()
      process.stderr.write(`[timing] stop ${label}: ${Date.now() - t} ms\n`)
    }
  }
}

const factory = {
  async spawn (options) {
    const resolved = withMuxerFromTitle(options)
    const t = Date.now()
    let daemon
    if (resolved.type === 'go' && !goSlot.inProcess) {
      daemon = await spawnGoDaemon(resolved)
    } else {
      if (resolved.type === 'go') goDaemonArgs(resolved) // the same refusals as the real "go" slot
      daemon = await createJsDaemon(resolved)
    }
    if (debug) process.stderr.write(`[timing] spawn ${resolved.type}: ${Date.now() - t} ms\n`)
    return timed(resolved.type, daemon)
  }
}

function killAll () {
  for (const child of running) child.kill('SIGKILL')
}
process.on('exit', killAll)

console.log(`interop.official: "go" slot = ${goSlot.label}`)
console.log('interop.official: "js" slot = js-libp2p in process (@libp2p/daemon-server)')
console.log(`interop.official: groups = ${groups.join(', ')}; skipped by design: ` +
  'connect over webtransport/webrtc-direct (TCP only); the suite itself pairs go with go only in ' +
  'dht.contentFetching, dht.peerRouting, relay and pubsub' +
  (groups.includes('pubsub') && !pubsubAll ? '; pubsub.gossipsub and pubsub.hybrid are skipped by the suite (INTEROP_PUBSUB_ALL=1 runs them)' : ''))

const mocha = new Mocha({ reporter: 'spec', timeout: DEFAULT_TEST_TIMEOUT_MS, color: false })
if (process.env.INTEROP_GREP) mocha.grep(new RegExp(process.env.INTEROP_GREP))
mocha.suite.emit('pre-require', globalThis, 'interop-official', mocha)
// Hooks record their suite's title (for the muxer, above), and a set-up that throws the suite's
// UnsupportedError skips its tests, counted and listed as skipped, as the suite intends; only the
// connect group handles that error itself.
const skipReasons = new Map()
for (const hookName of ['before', 'beforeEach']) {
  const register = globalThis[hookName]
  globalThis[hookName] = function (...args) {
    const fn = args[args.length - 1]
    args[args.length - 1] = async function () {
      currentSuiteTitle = this.test?.parent?.title ?? ''
      try {
        return await fn.call(this)
      } catch (err) {
        if (err?.name !== 'UnsupportedError') throw err
        skipReasons.set(err.message, (skipReasons.get(err.message) ?? 0) + 1)
        this.skip()
      }
    }
    return register(...args)
  }
}
for (const group of groups) await GROUPS[group](factory)

const startedAt = Date.now()
let runner

function report (extraFailures) {
  const { passes = 0, failures = 0, pending = 0 } = runner?.stats ?? {}
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1)
  console.log(`interop.official: ${seconds} s`)
  for (const [reason, count] of skipReasons) console.log(`interop.official: skipped ${count}x: ${reason}`)
  console.log(`${passes} passed, ${failures + extraFailures} failed, ${pending} skipped`)
  return failures + extraFailures
}

const budget = setTimeout(() => {
  console.error(`interop.official: run exceeded ${budgetSeconds} s, aborting (counted as one failure)`)
  report(1)
  killAll()
  process.exit(1)
}, budgetSeconds * 1000)
budget.unref()

runner = mocha.run(() => {
  const failed = report(0)
  killAll()
  // Daemon clients and libp2p timers can keep the loop alive after the last test.
  process.exit(failed > 0 ? 1 : 0)
})
