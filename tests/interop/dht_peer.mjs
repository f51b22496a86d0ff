#!/usr/bin/env node
// js-libp2p peer for the Kademlia DHT and circuit relay v2 interop tests (run_interop_dht_relay.mjs).
// A long-lived js-libp2p node driven by JSON commands, one per line on stdin; one JSON answer per
// command on stdout. SIGTERM/SIGINT or stdin EOF stop it.
//
//   dht_peer [--listen MULTIADDR|none] [--key FILE] [--dht server|client|off]
//            [--relay-server] [--relay-client] [--reserve RELAY_MULTIADDR/p2p/ID]
//
//   --listen        default /ip4/127.0.0.1/tcp/0; "none" = no TCP listener (dial-only)
//   --dht           kad-dht on /ipfs/kad/1.0.0: "server" (clientMode false: answers queries from
//                   the start, as loopback never looks public), "client", or "off" (default)
//   --relay-server  circuit relay v2 hop service (circuitRelayServer)
//   --relay-client  circuit relay v2 transport: dial /p2p-circuit addresses, accept STOP streams
//   --reserve A     (implies --relay-client) listen on A/p2p-circuit, i.e. keep a reservation on
//                   the relay A; the relayed addresses then appear in "addrs"
//
// First stdout line: {"ready":true,"peer_id":"12D3KooW...","addrs":[...]} (or {"error":...} and
// exit 1). Then, for every command {"id":N,"cmd":"...",...}: {"id":N,"ok":true,...} or
// {"id":N,"ok":false,"error":"..."}. Every command takes "timeout" (seconds, default 30).
//
//   info                       peer_id, addrs, connections [{peer,addr,limited,direction}],
//                              dht_mode, routing_table (peer IDs)
//   dial {addr}                open a connection (/p2p/ required): remote_peer, remote_addr, limited
//   ping {addr}                dial (if needed) and ping: rtt_ms, remote_peer, remote_addr, limited
//   echo {addr, bytes}         /echo/1.0.0 round trip of BYTES random bytes (also on limited
//                              connections): bytes, ok, remote_addr, limited
//   protocols {peer}           what PEER said in identify (waits for it): protocols, addrs,
//                              agent_version
//   identify {peer}            run identify now on our connection to PEER: agent_version,
//                              protocols, listen_addrs, remote_addr, limited
//   wait_rt {peer}             wait until PEER is in the DHT routing table
//   wait_addr {contains}       wait until one of our addrs contains the string: addrs
//   wait_conn {peer}           wait until we have a connection to PEER: connections to it
//   closest {peer}             dht.getClosestPeers(PEER's multihash): peers [{id, addrs}], from
//   find {peer}                dht.findPeer(PEER, useCache false, i.e. over the network), run to
//                              the end of the query: from (who told us first), addrs, responses
//                              [{from, closer: [{id, addrs}]}] (every FIND_NODE answer), errors
//   routing_find {peer}        libp2p peerRouting.findPeer(PEER): addrs
//   put {key_hex, value_hex}   dht.put: acked (peers whose PUT_VALUE answer echoed the record),
//                              errors [{from, error}]
//   get {key_hex, use_cache}   dht.get: value_hex of the best record, values [{from, value_hex}]
import './polyfill.mjs'

import { randomFillSync } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { setMaxListeners } from 'node:events'
import { dirname } from 'node:path'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { identify, identifyPush } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

export const DHT_PROTOCOL = '/ipfs/kad/1.0.0'
const ECHO_PROTOCOL = '/echo/1.0.0'

function log (...args) {
  if (process.env.PEER_QUIET !== '1') process.stderr.write(`[dht_peer ${process.pid} ${new Date().toISOString().slice(11, 23)}] ${args.join(' ')}\n`)
}

function emit (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }

function parseArgs (argv) {
  const opts = { listen: '/ip4/127.0.0.1/tcp/0', dht: 'off', 'relay-server': false, 'relay-client': false }
  const flags = new Set(['relay-server', 'relay-client'])
  const valued = new Set(['listen', 'key', 'dht', 'reserve'])
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
  if (!['server', 'client', 'off'].includes(opts.dht)) throw new Error(`invalid --dht ${JSON.stringify(opts.dht)}`)
  if (opts.reserve !== undefined) {
    opts['relay-client'] = true
    const ma = multiaddr(opts.reserve)
    if (ma.getComponents().find(c => c.name === 'p2p') == null) throw new Error('--reserve needs /p2p/<relay id>')
  }
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

function forEachBuf (data, fn) {
  if (data instanceof Uint8Array) fn(data)
  else for (const buf of data) fn(buf) // Uint8ArrayList
}

function handleEcho (stream) {
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

async function runEcho (connection, bytes, signal) {
  const stream = await connection.newStream(ECHO_PROTOCOL, { signal, runOnLimitedConnection: true })
  const sent = randomFillSync(Buffer.alloc(bytes))
  const chunks = []
  let received = 0
  const done = Promise.withResolvers()
  stream.addEventListener('message', (evt) => { forEachBuf(evt.data, (b) => { chunks.push(Buffer.from(b)); received += b.byteLength }) })
  stream.addEventListener('end', () => done.resolve())
  stream.addEventListener('close', (evt) => { if (evt.error) done.reject(evt.error); else done.resolve() })
  const onAbort = () => done.reject(new Error(`echo timed out (${received}/${bytes} bytes back)`))
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    if (!stream.send(sent)) await stream.onDrain({ signal })
    await stream.close({ signal })
    await done.promise
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
  return { bytes: received, ok: received === bytes && Buffer.concat(chunks).equals(sent) }
}

function connInfo (c) {
  return { peer: c.remotePeer.toString(), addr: c.remoteAddr.toString(), limited: c.limits != null, direction: c.direction, status: c.status }
}

const hex = (u8) => Buffer.from(u8).toString('hex')
const unhex = (s) => new Uint8Array(Buffer.from(String(s ?? ''), 'hex'))

async function waitFor (what, signal, fn, intervalMs = 100) {
  for (;;) {
    const v = await fn()
    if (v) return v
    if (signal.aborted) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

async function makeNode (opts) {
  const privateKey = await loadKey(opts.key)
  const listen = []
  if (opts.listen !== 'none') listen.push(opts.listen)
  if (opts.reserve !== undefined) listen.push(multiaddr(opts.reserve).encapsulate('/p2p-circuit').toString())
  const transports = [tcp()]
  if (opts['relay-client']) transports.push(circuitRelayTransport({ reservationCompletionTimeout: 20_000 }))
  const services = {
    identify: identify(),
    identifyPush: identifyPush(),
    ping: ping()
  }
  if (opts.dht !== 'off') {
    services.dht = kadDHT({
      protocol: DHT_PROTOCOL,
      clientMode: opts.dht === 'client',
      // The default mapper drops private (here: all) addresses.
      peerInfoMapper: passthroughMapper,
      // Our few loopback peers are the whole network.
      allowQueryWithZeroPeers: false
    })
  }
  if (opts['relay-server']) {
    services.relay = circuitRelayServer({ reservations: { maxReservations: 64 } })
  }
  const node = await createLibp2p({
    privateKey,
    addresses: { listen },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Loopback test network: dial everything.
    connectionGater: { denyDialMultiaddr: () => false },
    services
  })
  await node.handle(ECHO_PROTOCOL, handleEcho, { runOnLimitedConnection: true })
  node.addEventListener('connection:open', (evt) => log(`connection open ${evt.detail.direction} ${evt.detail.remotePeer} at ${evt.detail.remoteAddr}${evt.detail.limits ? ' (limited)' : ''}`))
  node.addEventListener('connection:close', (evt) => log(`connection closed ${evt.detail.remotePeer} at ${evt.detail.remoteAddr}`))
  node.addEventListener('self:peer:update', () => log(`our addrs: ${node.getMultiaddrs().map(String).join(' ')}`))
  await node.start()
  return node
}

function peerOf (cmd) {
  if (typeof cmd.peer !== 'string') throw new Error('"peer" (a peer ID) is required')
  return peerIdFromString(cmd.peer)
}

function addrOf (cmd) {
  if (typeof cmd.addr !== 'string') throw new Error('"addr" (a multiaddr with /p2p/) is required')
  const ma = multiaddr(cmd.addr)
  if (ma.getComponents().find(c => c.name === 'p2p') == null) throw new Error('the address must contain /p2p/<peer id>')
  return ma
}

function dhtOf (node) {
  const dht = node.services.dht
  if (dht == null) throw new Error('this peer runs without --dht')
  return dht
}

async function execute (node, cmd, signal) {
  switch (cmd.cmd) {
    case 'info': {
      const dht = node.services.dht
      let routingTable = null
      if (dht?.routingTable?.kb != null) {
        routingTable = []
        for (const p of dht.routingTable.kb.toIterable()) routingTable.push(p.peerId.toString())
      }
      return {
        peer_id: node.peerId.toString(),
        addrs: node.getMultiaddrs().map(String),
        connections: node.getConnections().map(connInfo),
        dht_mode: dht?.getMode?.() ?? null,
        routing_table: routingTable
      }
    }
    case 'dial': {
      const c = await node.dial(addrOf(cmd), { signal })
      return { remote_peer: c.remotePeer.toString(), remote_addr: c.remoteAddr.toString(), limited: c.limits != null }
    }
    case 'ping': {
      const ma = addrOf(cmd)
      const c = await node.dial(ma, { signal })
      const rtt = await node.services.ping.ping(ma, { signal })
      return { rtt_ms: rtt, remote_peer: c.remotePeer.toString(), remote_addr: c.remoteAddr.toString(), limited: c.limits != null }
    }
    case 'echo': {
      const c = await node.dial(addrOf(cmd), { signal })
      const r = await runEcho(c, Number(cmd.bytes ?? 1024), signal)
      return { ...r, remote_peer: c.remotePeer.toString(), remote_addr: c.remoteAddr.toString(), limited: c.limits != null }
    }
    case 'protocols': {
      const id = peerOf(cmd)
      // identify runs right after the connection opens; wait for its answer (the agent version
      // only comes from identify, while multistream negotiations alone add single protocols).
      const p = await waitFor(`identify of ${id}`, signal, async () => {
        try {
          const peer = await node.peerStore.get(id)
          return peer.metadata.has('AgentVersion') ? peer : null
        } catch { return null }
      })
      const agent = p.metadata.get('AgentVersion')
      return {
        protocols: p.protocols,
        addrs: p.addresses.map(a => a.multiaddr.toString()),
        agent_version: agent ? Buffer.from(agent).toString() : null
      }
    }
    case 'identify': {
      // identify run now on our (first) connection to PEER, as identify reports it.
      const id = peerOf(cmd)
      const c = node.getConnections(id)[0]
      if (c == null) throw new Error(`no connection to ${id}`)
      const r = await node.services.identify.identify(c, { signal })
      return {
        remote_addr: c.remoteAddr.toString(),
        limited: c.limits != null,
        agent_version: r.agentVersion ?? null,
        protocols: r.protocols,
        listen_addrs: r.listenAddrs.map(String)
      }
    }
    case 'wait_rt': {
      const dht = dhtOf(node)
      const id = peerOf(cmd)
      await waitFor(`${id} in the DHT routing table`, signal, async () => (await dht.routingTable.find(id)) != null)
      return {}
    }
    case 'wait_addr': {
      const s = String(cmd.contains)
      const addrs = await waitFor(`an address containing ${s}`, signal, () => {
        const a = node.getMultiaddrs().map(String)
        return a.some(x => x.includes(s)) ? a : null
      })
      return { addrs }
    }
    case 'wait_conn': {
      const id = peerOf(cmd)
      const conns = await waitFor(`a connection to ${id}`, signal, () => {
        const c = node.getConnections(id)
        return c.length > 0 ? c : null
      })
      return { connections: conns.map(connInfo) }
    }
    case 'closest': {
      const id = peerOf(cmd)
      const peers = []
      const froms = new Set()
      for await (const ev of dhtOf(node).getClosestPeers(id.toMultihash().bytes, { signal })) {
        if (ev.name === 'FINAL_PEER') peers.push({ id: ev.peer.id.toString(), addrs: ev.peer.multiaddrs.map(String) })
        if (ev.name === 'PEER_RESPONSE') froms.add(ev.from.toString())
      }
      return { peers, from: [...froms] }
    }
    case 'find': {
      const id = peerOf(cmd)
      const responses = []
      const errors = []
      let final = null
      for await (const ev of dhtOf(node).findPeer(id, { signal, useCache: false })) {
        if (ev.name === 'PEER_RESPONSE') responses.push({ from: ev.from.toString(), closer: ev.closer.map(p => ({ id: p.id.toString(), addrs: p.multiaddrs.map(String) })) })
        if (ev.name === 'QUERY_ERROR') errors.push({ from: ev.from.toString(), error: describeError(ev.error) })
        if (ev.name === 'FINAL_PEER' && final == null) final = { from: ev.from.toString(), addrs: ev.peer.multiaddrs.map(String) }
      }
      if (final == null) throw new Error(`findPeer ended without the peer; responses ${JSON.stringify(responses)} errors ${JSON.stringify(errors)}`)
      return { ...final, responses, errors }
    }
    case 'routing_find': {
      const info = await node.peerRouting.findPeer(peerOf(cmd), { signal, useCache: false })
      return { addrs: info.multiaddrs.map(String) }
    }
    case 'put': {
      const key = unhex(cmd.key_hex)
      const value = unhex(cmd.value_hex)
      const acked = []
      const errors = []
      for await (const ev of dhtOf(node).put(key, value, { signal })) {
        if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') acked.push(ev.from.toString())
        if (ev.name === 'QUERY_ERROR') errors.push({ from: ev.from.toString(), error: describeError(ev.error) })
      }
      // A "Value not put correctly" error means that peer's answer did not echo the record.
      const bad = new Set(errors.filter(e => /not put correctly/.test(e.error)).map(e => e.from))
      return { acked: acked.filter(p => !bad.has(p)), errors }
    }
    case 'get': {
      const key = unhex(cmd.key_hex)
      const values = []
      const errors = []
      let best = null
      for await (const ev of dhtOf(node).get(key, { signal, useCache: cmd.use_cache !== false })) {
        if (ev.name === 'VALUE') { best = ev; values.push({ from: ev.from.toString(), value_hex: hex(ev.value) }) }
        if (ev.name === 'QUERY_ERROR') errors.push({ from: ev.from.toString(), error: describeError(ev.error) })
      }
      if (best == null) throw new Error(`no value found; errors ${JSON.stringify(errors)}`)
      return { value_hex: hex(best.value), from: best.from.toString(), values, errors }
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`)
  }
}

async function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2))
  } catch (err) {
    emit({ error: err.message })
    process.exit(1)
  }
  let node
  try {
    node = await makeNode(opts)
  } catch (err) {
    emit({ error: `start failed: ${describeError(err)}` })
    process.exit(1)
  }
  log(`started ${node.peerId} dht=${opts.dht} relay-server=${opts['relay-server']} relay-client=${opts['relay-client']}`)
  emit({ ready: true, peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })

  let stopping = false
  const shutdown = async (why) => {
    if (stopping) return
    stopping = true
    log(`stopping (${why})`)
    await Promise.race([node.stop().catch(() => {}), new Promise(resolve => setTimeout(resolve, 3000).unref())])
    process.exit(0)
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))

  const rl = createInterface({ input: process.stdin })
  rl.on('close', () => shutdown('stdin EOF'))
  rl.on('line', async (line) => {
    if (line.trim() === '') return
    let cmd
    try { cmd = JSON.parse(line) } catch (err) { emit({ id: null, ok: false, error: `bad command line: ${err.message}` }); return }
    const timeout = Number(cmd.timeout ?? 30)
    const signal = AbortSignal.timeout(timeout * 1000)
    setMaxListeners(Infinity, signal)
    const started = Date.now()
    try {
      const out = await execute(node, cmd, signal)
      emit({ id: cmd.id ?? null, ok: true, seconds: (Date.now() - started) / 1000, ...out })
    } catch (err) {
      const msg = signal.aborted ? `timed out after ${timeout}s: ${describeError(err)}` : describeError(err)
      log(`${cmd.cmd} failed: ${msg}`)
      emit({ id: cmd.id ?? null, ok: false, error: msg })
    }
  })
}

main().catch((err) => {
  emit({ error: err?.stack ?? String(err) })
  process.exit(1)
})
