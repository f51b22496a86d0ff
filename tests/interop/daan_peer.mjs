#!/usr/bin/env node
// js-libp2p peer speaking the Go AgentNetwork's /daan messaging (daan.mjs: framing, streams), for
// the interop tests in both directions. TCP, Noise, yamux, identify (+push), ping, kad-dht on
// /ipfs/kad/1.0.0. It serves /daan/message/1.0.0 and /daan/request/1.0.0 from the start and is
// driven by JSON commands, one per line on stdin. stdin EOF, SIGTERM or SIGINT stop it.
//
//   node --import ./polyfill.mjs daan_peer.mjs [--listen MULTIADDR|none] [--key FILE]
//        [--dht server|client|off] [--mode echo|reverse|none|reset|hang]
//        [--message-mode store|refuse|hang] [--quiet-messages] [--max-connections N]
//
//   --listen         default /ip4/127.0.0.1/tcp/0; "none" = dial only
//   --key FILE       Ed25519 key (protobuf); created when missing; default a fresh key
//   --dht            "server" (default: answers queries from the start), "client", "off"
//   --mode           how requests are answered: echo (type 3, the payload), reverse (type 3,
//                    the payload's UTF-8 text reversed by code point; type 4 "payload is not
//                    UTF-8" otherwise), none (type 4 "no handler registered", Go's answer when
//                    nothing serves), reset (reset the stream), hang (never answer). Default echo.
//   --message-mode   what a one-way message gets after it is read and printed: store (close the
//                    stream: the sender's "stored", default), refuse (reset), hang (neither)
//   --quiet-messages count messages and requests but print no "message" / "request" events
//   --max-connections N  lift js-libp2p's connection limits to N, including its inbound rate
//                    limit (5 new connections per second per host), for many peers on loopback
//
// Every stdout line is one JSON object with an "event":
//   {"event":"ready","peer":ID,"addrs":[...]}                 first line; addrs end in /p2p/ID
//                                                             (or {"event":"error","error":...}
//                                                             and exit 1)
//   {"event":"message","from":ID,"payload_b64":B64,"size":N,"text":T|null}
//                                                             a one-way message was read (text:
//                                                             the payload if valid UTF-8)
//   {"event":"request","from":ID,"request_id":N,"payload_b64":B64,"size":N,"text":T|null,
//    "answer":"response"|"error"|"reset"|"hang"}              a request was read and answered
//   {"event":"bad_frame","from":ID,"protocol":P,"error":E}    a frame broke the format; its
//                                                             stream was reset
//   {"event":"stream_error","from":ID,"protocol":P,"error":E} a served stream was reset by the
//                                                             peer, timed out or failed to write
//   {"event":"result","id":ID,"cmd":C,"ok":true,"ms":M,...}   the answer to a command; on
//   {"event":"result","id":ID,"cmd":C,"ok":false,"error":E}   failure with "error" (and
//                                                             "refused":true / "timeout":true
//                                                             when that is why)
// request_id is a JSON number (exact: uint64 values above 2^53 are written as digits too).
// Payloads go in as "text" (UTF-8) or "payload_b64" (standard base64) and come out as both.
//
// Commands: {"id":ID,"cmd":C,...,"timeout":SECONDS}; commands run concurrently, answers carry
// the id. A peer is "addr" (a multiaddr with /p2p/: dialled if not connected) or "peer" (a peer
// ID, dialled through the peer store when not connected). Default timeout: send 10 s (Go's
// message timeout), request 30 s (Go's request timeout), others 30 s.
//   info                         peer, addrs, connections [{peer, addr, direction}], dht_mode,
//                                mode, message_mode, stats
//   stats                        messages, requests, bad_frames, stream_errors, refused (messages
//                                we reset by --message-mode refuse)
//   dial {addr}                  remote_peer, remote_addr
//   send {peer|addr, text|payload_b64}
//                                one-way message on a new stream: write the frame, close our
//                                write side, wait for the peer's close: ok (stored: true);
//                                ok:false refused:true when it reset the stream instead
//   request {peer|addr, text|payload_b64, request_id?}
//                                request on a new stream (request_id: default a counter from 1),
//                                our write side left open until the answer is read, as Go does:
//                                answer "response"|"error", request_id, payload_b64, size, text.
//                                An error answer (type 4) is ok:true with answer "error"; a reset
//                                or a malformed answer is ok:false.
//   raw {peer|addr, protocol, hex, close_write?}
//                                open a stream of PROTOCOL, write the bytes as they are (close our
//                                write side after, unless close_write is false) and read until
//                                the peer closes or resets: outcome "closed"|"reset"|"timeout",
//                                reply_hex (what came back)
//   advertise {namespace}        dht.provide of the namespace CID: cid, key_hex (the multihash,
//                                the DHT key), peers (that took ADD_PROVIDER), errors
//   find {namespace, limit?}     dht.findProviders (limit default 20): cid, providers
//                                [{id, addrs}] (ours included when we advertised)
//   cid {namespace}              cid, key_hex (no network)
//   wait_messages {count}        wait until COUNT one-way messages have been read since start:
//                                messages [{from, payload_b64, size, text}] (the last 1000),
//                                total
//   set_mode {mode?, message_mode?}  change the answers from now on: mode, message_mode
import './polyfill.mjs'

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { setMaxListeners } from 'node:events'
import { dirname } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import {
  FrameType, NO_HANDLER_TEXT, MESSAGE_TIMEOUT_MS, REQUEST_TIMEOUT_MS, RefusedError, TimeoutError,
  createNode, isStdBase64, namespaceCid, sendMessage, sendRequest, serveDaan, topLevelMembers
} from './daan.mjs'

const REQUEST_MODES = ['echo', 'reverse', 'none', 'reset', 'hang']
const MESSAGE_MODES = ['store', 'refuse', 'hang']
const DEFAULT_COMMAND_TIMEOUT_S = 30
// One-way messages kept for wait_messages (all are counted).
const MESSAGES_KEPT = 1000
const DEFAULT_FIND_LIMIT = 20
const NOT_UTF8_TEXT = 'payload is not UTF-8'
const SHUTDOWN_GRACE_MS = 3000

function log (...args) {
  if (process.env.PEER_QUIET !== '1') process.stderr.write(`[daan_peer ${process.pid} ${new Date().toISOString().slice(11, 23)}] ${args.join(' ')}\n`)
}

// request_id (a BigInt) goes out as a bare JSON number, exact even above 2^53.
function emit (obj) {
  const marks = []
  const line = JSON.stringify(obj, (key, value) => {
    if (typeof value !== 'bigint') return value
    marks.push(value.toString())
    return `\u0000bigint${marks.length - 1}\u0000`
  })
  process.stdout.write(line.replace(/"\\u0000bigint(\d+)\\u0000"/g, (_, i) => marks[Number(i)]) + '\n')
}

function parseArgs (argv) {
  const opts = { listen: '/ip4/127.0.0.1/tcp/0', dht: 'server', mode: 'echo', 'message-mode': 'store', 'quiet-messages': false }
  const flags = new Set(['quiet-messages'])
  const valued = new Set(['listen', 'key', 'dht', 'mode', 'message-mode', 'max-connections'])
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}`)
    let name = a.slice(2)
    let value
    const eq = name.indexOf('=')
    if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq) }
    if (flags.has(name)) {
      opts[name] = true
    } else if (valued.has(name)) {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new Error(`--${name} needs a value`)
        value = argv[++i]
      }
      opts[name] = value
    } else {
      throw new Error(`unknown flag --${name}`)
    }
  }
  if (opts['max-connections'] !== undefined) {
    opts['max-connections'] = Number(opts['max-connections'])
    if (!Number.isInteger(opts['max-connections']) || opts['max-connections'] < 1) throw new Error('--max-connections takes a positive integer')
  }
  if (!['server', 'client', 'off'].includes(opts.dht)) throw new Error(`invalid --dht ${JSON.stringify(opts.dht)}`)
  if (!REQUEST_MODES.includes(opts.mode)) throw new Error(`invalid --mode ${JSON.stringify(opts.mode)} (${REQUEST_MODES.join('|')})`)
  if (!MESSAGE_MODES.includes(opts['message-mode'])) throw new Error(`invalid --message-mode ${JSON.stringify(opts['message-mode'])} (${MESSAGE_MODES.join('|')})`)
  return opts
}

async function loadKey (file) {
  if (file === undefined) return generateKeyPair('Ed25519')
  if (existsSync(file)) return privateKeyFromProtobuf(new Uint8Array(readFileSync(file)))
  const key = await generateKeyPair('Ed25519')
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  writeFileSync(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  return key
}

function describeError (err, depth = 0) {
  if (err == null || typeof err !== 'object') return String(err)
  let text = err.message || err.name || String(err)
  if (err.name && err.name !== 'Error' && !text.startsWith(err.name)) text = `${err.name}: ${text}`
  if (depth < 4 && Array.isArray(err.errors) && err.errors.length > 0) text += ` [${err.errors.map(e => describeError(e, depth + 1)).join('; ')}]`
  if (depth < 4 && err.cause != null) text += ` (cause: ${describeError(err.cause, depth + 1)})`
  return text
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
function textOf (bytes) {
  try { return utf8.decode(bytes) } catch { return null }
}

function describePayload (payload) {
  return { payload_b64: Buffer.from(payload).toString('base64'), size: payload.byteLength, text: textOf(payload) }
}

function payloadOf (cmd) {
  if (typeof cmd.payload_b64 === 'string') {
    if (!isStdBase64(cmd.payload_b64)) throw new Error('"payload_b64" is not standard base64')
    return new Uint8Array(Buffer.from(cmd.payload_b64, 'base64'))
  }
  if (typeof cmd.text === 'string') return new Uint8Array(Buffer.from(cmd.text, 'utf8'))
  throw new Error('"text" or "payload_b64" is required')
}

// The connection to the command's "addr" or "peer", dialled when there is none.
async function connectionOf (node, cmd, signal) {
  if (typeof cmd.addr === 'string') {
    const ma = multiaddr(cmd.addr)
    if (ma.getComponents().find(c => c.name === 'p2p') == null) throw new Error('the address must contain /p2p/<peer id>')
    return node.dial(ma, { signal })
  }
  if (typeof cmd.peer === 'string') return node.dial(peerIdFromString(cmd.peer), { signal })
  throw new Error('"addr" (a multiaddr with /p2p/) or "peer" (a peer ID) is required')
}

function dhtOf (node) {
  const dht = node.services.dht
  if (dht == null) throw new Error('this peer runs with --dht off')
  return dht
}

function namespaceOf (cmd) {
  if (typeof cmd.namespace !== 'string' || cmd.namespace === '') throw new Error('"namespace" is required')
  return cmd.namespace
}

// Reverse by code point, so that a multi-byte character stays whole.
function reverseText (text) { return [...text].reverse().join('') }

class Peer {
  constructor (node, opts) {
    this.node = node
    this.mode = opts.mode
    this.messageMode = opts['message-mode']
    this.printTraffic = !opts['quiet-messages']
    this.stats = { messages: 0, requests: 0, bad_frames: 0, stream_errors: 0, refused: 0 }
    this.messages = []
    this.messageWaiters = new Set()
    this.nextRequestId = 1n
  }

  async serve () {
    await serveDaan(this.node, {
      onMessage: (from, payload) => this.onMessage(from, payload),
      onRequest: (from, payload, requestId) => this.onRequest(from, payload, requestId),
      onBadFrame: (from, protocol, err) => {
        this.stats.bad_frames++
        log(`bad frame from ${from} on ${protocol}: ${err.message}; stream reset`)
        emit({ event: 'bad_frame', from, protocol, error: err.message })
      },
      onStreamError: (from, protocol, err) => {
        this.stats.stream_errors++
        log(`stream from ${from} on ${protocol}: ${describeError(err)}`)
        emit({ event: 'stream_error', from, protocol, error: describeError(err) })
      }
    })
  }

  onMessage (from, payload) {
    this.stats.messages++
    const message = { from, ...describePayload(payload) }
    this.messages.push(message)
    if (this.messages.length > MESSAGES_KEPT) this.messages.shift()
    if (this.printTraffic) emit({ event: 'message', ...message })
    for (const waiter of this.messageWaiters) waiter()
    if (this.messageMode === 'refuse') { this.stats.refused++; return 'reset' }
    return this.messageMode === 'hang' ? 'hang' : 'close'
  }

  onRequest (from, payload, requestId) {
    this.stats.requests++
    let answer
    switch (this.mode) {
      case 'echo': answer = { type: FrameType.RESPONSE, payload }; break
      case 'reverse': {
        const text = textOf(payload)
        answer = text == null
          ? { type: FrameType.ERROR, payload: Buffer.from(NOT_UTF8_TEXT) }
          : { type: FrameType.RESPONSE, payload: Buffer.from(reverseText(text)) }
        break
      }
      case 'none': answer = { type: FrameType.ERROR, payload: Buffer.from(NO_HANDLER_TEXT) }; break
      default: answer = this.mode // reset | hang
    }
    if (this.printTraffic) {
      const kind = typeof answer === 'string' ? answer : answer.type === FrameType.RESPONSE ? 'response' : 'error'
      emit({ event: 'request', from, request_id: requestId, ...describePayload(payload), answer: kind })
    }
    return answer
  }

  waitMessages (count, signal) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.stats.messages < count) return
        done()
        resolve({ messages: this.messages, total: this.stats.messages })
      }
      const onAbort = () => { done(); reject(new TimeoutError(`${this.stats.messages} of ${count} messages arrived`)) }
      const done = () => { this.messageWaiters.delete(check); signal.removeEventListener('abort', onAbort) }
      this.messageWaiters.add(check)
      signal.addEventListener('abort', onAbort, { once: true })
      check()
    })
  }

  info () {
    return {
      peer: this.node.peerId.toString(),
      addrs: this.node.getMultiaddrs().map(String),
      connections: this.node.getConnections().map(c => ({ peer: c.remotePeer.toString(), addr: c.remoteAddr.toString(), direction: c.direction })),
      dht_mode: this.node.services.dht?.getMode?.() ?? null,
      mode: this.mode,
      message_mode: this.messageMode,
      stats: this.stats
    }
  }

  async execute (cmd, signal, timeoutMs) {
    const node = this.node
    switch (cmd.cmd) {
      case 'info': return this.info()
      case 'stats': return { ...this.stats }
      case 'dial': {
        if (typeof cmd.addr !== 'string') throw new Error('"addr" is required')
        const c = await connectionOf(node, { addr: cmd.addr }, signal)
        return { remote_peer: c.remotePeer.toString(), remote_addr: c.remoteAddr.toString() }
      }
      case 'send': {
        const payload = payloadOf(cmd)
        const c = await connectionOf(node, cmd, signal)
        await sendMessage(c, payload, { timeoutMs, signal })
        return { stored: true, remote_peer: c.remotePeer.toString(), size: payload.byteLength }
      }
      case 'request': {
        const payload = payloadOf(cmd)
        const requestId = cmd.request_id != null ? BigInt(cmd.request_id) : this.nextRequestId++
        if (requestId < 0n || requestId >= 1n << 64n) throw new Error(`request_id ${requestId} is not a uint64`)
        const c = await connectionOf(node, cmd, signal)
        const answer = await sendRequest(c, payload, requestId, { timeoutMs, signal })
        return {
          answer: answer.type === FrameType.RESPONSE ? 'response' : 'error',
          request_id: answer.requestId,
          remote_peer: c.remotePeer.toString(),
          ...describePayload(answer.payload)
        }
      }
      case 'raw': return this.raw(cmd, signal)
      case 'cid': {
        const cid = await namespaceCid(namespaceOf(cmd))
        return { cid: cid.toString(), key_hex: Buffer.from(cid.multihash.bytes).toString('hex') }
      }
      case 'advertise': {
        const cid = await namespaceCid(namespaceOf(cmd))
        const peers = new Set()
        const errors = []
        for await (const ev of dhtOf(node).provide(cid, { signal })) {
          if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'ADD_PROVIDER') peers.add(ev.from.toString())
          if (ev.name === 'QUERY_ERROR') errors.push({ from: ev.from.toString(), error: describeError(ev.error) })
        }
        return { cid: cid.toString(), key_hex: Buffer.from(cid.multihash.bytes).toString('hex'), peers: [...peers], errors }
      }
      case 'find': {
        const cid = await namespaceCid(namespaceOf(cmd))
        const limit = Number(cmd.limit ?? DEFAULT_FIND_LIMIT)
        const providers = new Map()
        for await (const ev of dhtOf(node).findProviders(cid, { signal })) {
          if (ev.name !== 'PROVIDER') continue
          for (const p of ev.providers) {
            const id = p.id.toString()
            const addrs = new Set([...(providers.get(id)?.addrs ?? []), ...p.multiaddrs.map(String)])
            providers.set(id, { id, addrs: [...addrs] })
          }
          if (providers.size >= limit) break
        }
        return { cid: cid.toString(), providers: [...providers.values()].slice(0, limit) }
      }
      case 'wait_messages': return this.waitMessages(Number(cmd.count ?? 1), signal)
      case 'set_mode': {
        if (cmd.mode !== undefined) {
          if (!REQUEST_MODES.includes(cmd.mode)) throw new Error(`mode must be one of ${REQUEST_MODES.join('|')}`)
          this.mode = cmd.mode
        }
        if (cmd.message_mode !== undefined) {
          if (!MESSAGE_MODES.includes(cmd.message_mode)) throw new Error(`message_mode must be one of ${MESSAGE_MODES.join('|')}`)
          this.messageMode = cmd.message_mode
        }
        return { mode: this.mode, message_mode: this.messageMode }
      }
      default:
        throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`)
    }
  }

  // Arbitrary bytes on a stream of any protocol, and what the peer did with them.
  async raw (cmd, signal) {
    if (typeof cmd.protocol !== 'string') throw new Error('"protocol" is required')
    const bytes = Buffer.from(String(cmd.hex ?? ''), 'hex')
    const c = await connectionOf(this.node, cmd, signal)
    const stream = await c.newStream(cmd.protocol, { signal })
    const reply = []
    const outcome = new Promise((resolve) => {
      stream.addEventListener('message', (evt) => {
        if (evt.data instanceof Uint8Array) reply.push(Buffer.from(evt.data))
        else for (const b of evt.data) reply.push(Buffer.from(b))
      })
      stream.addEventListener('end', () => resolve(stream.status === 'reset' ? 'reset' : 'closed'))
      stream.addEventListener('close', (evt) => resolve(evt.error ? 'reset' : 'closed'))
      signal.addEventListener('abort', () => resolve('timeout'), { once: true })
    })
    try {
      if (bytes.byteLength > 0 && !stream.send(bytes)) await stream.onDrain({ signal })
      if (cmd.close_write !== false) await stream.close({ signal })
    } catch (err) {
      log(`raw write: ${describeError(err)}`)
    }
    const result = await outcome
    if (result === 'timeout') stream.abort(new TimeoutError('raw stream timed out'))
    else if (stream.status === 'open') stream.close().catch(err => stream.abort(err))
    return { outcome: result, reply_hex: Buffer.concat(reply).toString('hex') }
  }
}

function defaultTimeoutMs (cmd) {
  if (cmd.timeout != null) return Number(cmd.timeout) * 1000
  if (cmd.cmd === 'send') return MESSAGE_TIMEOUT_MS
  if (cmd.cmd === 'request') return REQUEST_TIMEOUT_MS
  return DEFAULT_COMMAND_TIMEOUT_S * 1000
}

async function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2))
  } catch (err) {
    emit({ event: 'error', error: err.message })
    process.exit(1)
  }
  let node
  let peer
  try {
    const listen = opts.listen === 'none' ? [] : [opts.listen]
    node = await createNode({ privateKey: await loadKey(opts.key), listen, dht: opts.dht, maxConnections: opts['max-connections'] })
    peer = new Peer(node, opts)
    await peer.serve()
    await node.start()
  } catch (err) {
    emit({ event: 'error', error: `start failed: ${describeError(err)}` })
    process.exit(1)
  }
  node.addEventListener('connection:open', (evt) => log(`connection open ${evt.detail.direction} ${evt.detail.remotePeer} at ${evt.detail.remoteAddr}`))
  node.addEventListener('connection:close', (evt) => log(`connection closed ${evt.detail.remotePeer} at ${evt.detail.remoteAddr}`))
  log(`started ${node.peerId} dht=${opts.dht} mode=${opts.mode} message-mode=${opts['message-mode']}`)
  emit({ event: 'ready', peer: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })

  let stopping = false
  const shutdown = async (why) => {
    if (stopping) return
    stopping = true
    log(`stopping (${why})`)
    await Promise.race([node.stop().catch(() => {}), new Promise(resolve => setTimeout(resolve, SHUTDOWN_GRACE_MS).unref())])
    process.exit(0)
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))

  const rl = createInterface({ input: process.stdin })
  rl.on('close', () => shutdown('stdin EOF'))
  rl.on('line', async (line) => {
    if (line.trim() === '') return
    let cmd
    try {
      cmd = JSON.parse(line)
      if (cmd == null || typeof cmd !== 'object' || Array.isArray(cmd)) throw new Error('not a JSON object')
      // request_id exactly as written: JSON.parse rounds integers above 2^53.
      for (const [key, raw] of topLevelMembers(line)) if (key === 'request_id' && /^[0-9]+$/.test(raw)) cmd.request_id = BigInt(raw)
    } catch (err) {
      emit({ event: 'result', id: null, cmd: null, ok: false, error: `bad command line: ${err.message}` })
      return
    }
    const timeoutMs = defaultTimeoutMs(cmd)
    const signal = AbortSignal.timeout(timeoutMs)
    setMaxListeners(Infinity, signal)
    const started = performance.now()
    const head = { event: 'result', id: cmd.id ?? null, cmd: cmd.cmd ?? null }
    try {
      const out = await peer.execute(cmd, signal, timeoutMs)
      emit({ ...head, ok: true, ms: performance.now() - started, ...out })
    } catch (err) {
      const failure = { ...head, ok: false, error: describeError(err) }
      if (err instanceof RefusedError) failure.refused = true
      if (err instanceof TimeoutError || signal.aborted) failure.timeout = true
      log(`${cmd.cmd} failed: ${failure.error}`)
      emit(failure)
    }
  })
}

main().catch((err) => {
  emit({ event: 'error', error: err?.stack ?? String(err) })
  process.exit(1)
})
