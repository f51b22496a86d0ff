#!/usr/bin/env node
// The js<->js baseline of the /daan messaging benchmark: two js-libp2p nodes (TCP, Noise, yamux)
// in two processes on 127.0.0.1, speaking the Go AgentNetwork framing exactly as
// tests/interop/daan.mjs does (one stream per message, as the Go node and ours do).
//
//   node bench/js/daan_bench.mjs [--payloads 1024,65536] [--cases message,request]
//        [--count N] [--seconds S] [--warmup N] [--concurrency N] [--target MULTIADDR]
//
//   --payloads     payload sizes in bytes (default 1024,65536)
//   --cases        message: one-way messages, each done when the receiver closed its stream
//                  ("stored"; the js receiver keeps nothing, so this is the protocol's cost
//                  alone); request: request round trips, the server echoes the payload
//   --count N      operations measured per case, at most (default 2000)
//   --seconds S    time per case, at most (default 5); a case stops at whichever comes first
//   --warmup N     operations before each case, not measured (default 100)
//   --concurrency  operations in flight (default 16)
//   --target A     measure against a running peer at A (with /p2p/) instead of starting the
//                  js server process, e.g. tests/interop/daan_peer.mjs or a node of ours
//
// Run in place: it imports ../../tests/interop/daan.mjs, whose packages resolve from
// tests/interop/node_modules (npm ci there). The server is this file with --serve: it prints
// {"ready":true,"addrs":[...]} and, for every "stats" line on stdin, {"cpu_s":...,"messages":N,
// "requests":N}; stdin EOF stops it.
//
// Output: one JSON line per case on stdout:
//   {"bench":"daan","impl":"js-libp2p","case":"message"|"request","payload_bytes":N,
//    "concurrency":N,"count":N (completed),"errors":N,"seconds":S,"per_second":R,
//    "mb_per_s":R*N/1e6 (payload bytes one way),"p50_ms","p99_ms","mean_ms","max_ms",
//    "client_cpu_s","server_cpu_s" (null with --target),"loadavg_1m" (the machine's, at the
//    end of the case: other load skews every figure),"node":VERSION,"libp2p":VERSION}
// Latency: from opening the stream to the stored close (message) or the whole answer (request).
// Diagnostics go to stderr. Exit 1 when a case completed nothing.
import { spawn } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import {
  FrameType, createNode, multiaddr, sendMessage, sendRequest, serveDaan
} from '../../tests/interop/daan.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const INTEROP = join(HERE, '..', '..', 'tests', 'interop')
const SERVER_START_TIMEOUT_MS = 30_000
const SERVER_STATS_TIMEOUT_MS = 10_000
const LOOPBACK_LISTEN = '/ip4/127.0.0.1/tcp/0'

const DEFAULTS = { payloads: '1024,65536', cases: 'message,request', count: 2000, seconds: 5, warmup: 100, concurrency: 16, target: null, serve: false }

function log (text) { process.stderr.write(`[daan_bench ${process.pid}] ${text}\n`) }

function parseArgs (argv) {
  const opts = { ...DEFAULTS }
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '')
    if (name === 'serve') { opts.serve = true; continue }
    if (!(name in DEFAULTS) || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`)
    opts[name] = argv[++i]
  }
  for (const k of ['count', 'seconds', 'warmup', 'concurrency']) {
    opts[k] = Number(opts[k])
    if (!(opts[k] >= 0) || (k === 'concurrency' && opts[k] < 1)) throw new Error(`--${k} must be a positive number`)
  }
  opts.payloads = String(opts.payloads).split(',').map(Number)
  if (opts.payloads.some(n => !Number.isInteger(n) || n < 0)) throw new Error('--payloads takes sizes in bytes')
  opts.cases = String(opts.cases).split(',')
  if (opts.cases.some(c => c !== 'message' && c !== 'request')) throw new Error('--cases takes message,request')
  return opts
}

function cpuSeconds () {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

function packageVersion (name) {
  try {
    return JSON.parse(readFileSync(join(INTEROP, 'node_modules', name, 'package.json'), 'utf8')).version
  } catch {
    return null
  }
}

// The receiving side: stores nothing, closes each message stream, echoes each request.
async function serve () {
  const node = await createNode({ dht: 'off', listen: [LOOPBACK_LISTEN] })
  const counts = { messages: 0, requests: 0 }
  await serveDaan(node, {
    onMessage: () => { counts.messages++; return 'close' },
    onRequest: (from, payload) => { counts.requests++; return { type: FrameType.RESPONSE, payload } },
    onBadFrame: (from, protocol, err) => log(`bad frame from ${from} on ${protocol}: ${err.message}`),
    onStreamError: (from, protocol, err) => log(`stream from ${from} on ${protocol}: ${err.message}`)
  })
  await node.start()
  process.stdout.write(JSON.stringify({ ready: true, addrs: node.getMultiaddrs().map(String) }) + '\n')
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    if (line.trim() === 'stats') process.stdout.write(JSON.stringify({ cpu_s: cpuSeconds(), ...counts }) + '\n')
  })
  rl.on('close', async () => { await node.stop().catch(() => {}); process.exit(0) })
}

// The server process, and a way to read its JSON lines.
class Server {
  constructor () {
    this.proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve'], { stdio: ['pipe', 'pipe', 'inherit'] })
    this.lines = []
    this.waiters = []
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const w = this.waiters.shift()
      if (w) w.resolve(JSON.parse(line))
      else this.lines.push(JSON.parse(line))
    })
    this.proc.on('exit', (code) => { for (const w of this.waiters.splice(0)) w.reject(new Error(`server exited with ${code}`)) })
  }

  next (timeoutMs) {
    if (this.lines.length > 0) return Promise.resolve(this.lines.shift())
    const w = Promise.withResolvers()
    this.waiters.push(w)
    const timer = setTimeout(() => w.reject(new Error('no answer from the server process')), timeoutMs)
    return w.promise.finally(() => clearTimeout(timer))
  }

  async stats () {
    this.proc.stdin.write('stats\n')
    return this.next(SERVER_STATS_TIMEOUT_MS)
  }

  stop () { this.proc.stdin.end() }
}

function percentile (sorted, p) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]
}

// Runs `count` operations (or until `seconds` pass), `concurrency` at a time.
async function drive (op, { count, seconds, concurrency }) {
  const latencies = []
  let started = 0
  let errors = 0
  let firstError = null
  const begin = performance.now()
  const deadline = begin + seconds * 1000
  async function worker () {
    while (started < count && performance.now() < deadline) {
      started++
      const t0 = performance.now()
      try {
        await op()
        latencies.push(performance.now() - t0)
      } catch (err) {
        errors++
        firstError ??= err
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { latencies, errors, firstError, seconds: (performance.now() - begin) / 1000 }
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  if (opts.serve) return serve()

  let server = null
  let target = opts.target
  if (target == null) {
    server = new Server()
    const hello = await server.next(SERVER_START_TIMEOUT_MS)
    target = hello.addrs[0]
  }
  const node = await createNode({ dht: 'off', listen: [] })
  await node.start()
  let failed = false
  try {
    const connection = await node.dial(multiaddr(target))
    const versions = { node: process.version, libp2p: packageVersion('libp2p') }
    let requestId = 0n
    for (const size of opts.payloads) {
      const payload = randomFillSync(new Uint8Array(size))
      for (const kind of opts.cases) {
        const op = kind === 'message'
          ? () => sendMessage(connection, payload)
          : async () => {
            const answer = await sendRequest(connection, payload, ++requestId)
            if (answer.type !== FrameType.RESPONSE || answer.payload.byteLength !== size) throw new Error(`unexpected answer of type ${answer.type}, ${answer.payload.byteLength} bytes`)
          }
        if (opts.warmup > 0) await drive(op, { count: opts.warmup, seconds: opts.seconds, concurrency: opts.concurrency })
        const serverCpu0 = server != null ? (await server.stats()).cpu_s : null
        const clientCpu0 = cpuSeconds()
        const r = await drive(op, opts)
        const clientCpu = cpuSeconds() - clientCpu0
        const serverCpu = server != null ? (await server.stats()).cpu_s - serverCpu0 : null
        if (r.firstError != null) log(`${kind} ${size} B: ${r.errors} errors, the first: ${r.firstError.message}`)
        const sorted = r.latencies.sort((a, b) => a - b)
        const done = sorted.length
        if (done === 0) failed = true
        const perSecond = done / r.seconds
        const round = (x, digits = 3) => x == null ? null : Number(x.toFixed(digits))
        process.stdout.write(JSON.stringify({
          bench: 'daan',
          impl: 'js-libp2p',
          case: kind,
          payload_bytes: size,
          concurrency: opts.concurrency,
          count: done,
          errors: r.errors,
          seconds: round(r.seconds),
          per_second: round(perSecond, 1),
          mb_per_s: round(perSecond * size / 1e6),
          p50_ms: round(percentile(sorted, 50)),
          p99_ms: round(percentile(sorted, 99)),
          mean_ms: round(done > 0 ? sorted.reduce((a, b) => a + b, 0) / done : null),
          max_ms: round(done > 0 ? sorted[done - 1] : null),
          client_cpu_s: round(clientCpu),
          server_cpu_s: round(serverCpu),
          loadavg_1m: round(loadavg()[0], 2),
          ...versions
        }) + '\n')
      }
    }
  } finally {
    await node.stop().catch(() => {})
    server?.stop()
  }
  process.exit(failed ? 1 : 0)
}

main().catch((err) => {
  log(err?.stack ?? String(err))
  process.exit(1)
})
