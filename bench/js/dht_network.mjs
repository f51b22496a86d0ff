#!/usr/bin/env node
// One js-libp2p DHT node for bench/dht_bench.py (the js side of the 21-node network benchmark).
// js-libp2p with @libp2p/kad-dht in server mode, TCP, Noise, yamux, identify (+push), ping,
// listening on 127.0.0.1. Driven by JSON commands, one per line on stdin; one JSON answer per
// command on stdout. stdin EOF, SIGTERM or SIGINT stop it.
//
//   dht_network.mjs [--listen MULTIADDR] [--bootstrap MULTIADDR/p2p/ID] [--max-connections N]
//
// The bench script runs it from a temporary directory whose node_modules links to
// tests/interop/node_modules (ES modules resolve packages next to the importing file), with
// `node --import tests/interop/polyfill.mjs` (Node 20 lacks Promise.withResolvers).
//
// First stdout line: {"ready":true,"peer_id":...,"addrs":[...]} (or {"error":...} and exit 1).
// With --bootstrap the node dials that address once started and, for a minute, again whenever
// it has no connection to it (as our -bootstrap does, with backoff); the rest
// of the discovery is kad-dht's own (its self-query and routing table refresh).
// Commands ({"id":N,"cmd":...}; answers {"id":N,"ok":true,...} or {"id":N,"ok":false,"error"}),
// each bounded by "timeout" seconds (default 60). "ms" is the time spent inside this process
// (performance.now() around the operation):
//   noop                        nothing (the control channel's own round trip)
//   info                        peers (distinct connected peer IDs), routing_table (size)
//   closest {key_hex}           dht.getClosestPeers(key): count, hops, queries, ms
//   disconnect {peer}           node.hangUp(peer): connected (after)
//   find {peer}                 dht.findPeer(peer, useCache false), run to the query's end:
//                               found, ms_first (first answer naming the peer), ms (whole query),
//                               hops, queries, connected (after)
//
// hops has the meaning of our FindPeerResponse.lookup_hops: the peers of the routing table that
// the query starts from have depth 0, a peer learned from a depth-d answer depth d + 1, and hops
// is the largest depth among the k (20) closest peers that answered.
import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const K = 20

function emit (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }

function parseArgs (argv) {
  const opts = { listen: '/ip4/127.0.0.1/tcp/0', bootstrap: null, 'max-connections': null }
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '')
    if (!(name in opts) || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`)
    opts[name] = argv[++i]
  }
  return opts
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest()

function xorCompare (a, b, target) {
  for (let i = 0; i < target.length; i++) {
    const x = a[i] ^ target[i]
    const y = b[i] ^ target[i]
    if (x !== y) return x - y
  }
  return 0
}

// Depth bookkeeping from the query's events: who answered, and at which depth each peer was
// first heard of.
class Depths {
  constructor (startingPeers) {
    this.depth = new Map()
    for (const id of startingPeers) this.depth.set(id, 0)
    this.responded = new Set()
  }

  onResponse (ev) {
    const from = ev.from.toString()
    this.responded.add(from)
    const d = (this.depth.get(from) ?? 0) + 1
    for (const p of ev.closer) {
      const id = p.id.toString()
      if (!this.depth.has(id) || this.depth.get(id) > d) this.depth.set(id, d)
    }
  }

  hopsOver (ids) {
    let hops = 0
    for (const id of ids) hops = Math.max(hops, this.depth.get(id) ?? 0)
    return hops
  }

  // Largest depth among the k closest responders to the key (its kad ID = sha256 of the key).
  hopsClosest (keyBytes) {
    const target = sha256(keyBytes)
    const ids = [...this.responded].map(id => ({ id, kad: sha256(peerIdFromString(id).toMultihash().bytes) }))
    ids.sort((a, b) => xorCompare(a.kad, b.kad, target))
    return this.hopsOver(ids.slice(0, K).map(x => x.id))
  }
}

async function routingTablePeers (dht) {
  const out = []
  const kb = dht.routingTable?.kb
  if (kb != null) for (const p of kb.toIterable()) out.push(p.peerId.toString())
  return out
}

function connectedPeers (node) {
  return new Set(node.getConnections().filter(c => c.status === 'open').map(c => c.remotePeer.toString()))
}

async function execute (node, cmd, signal) {
  const dht = node.services.dht
  switch (cmd.cmd) {
    case 'noop':
      return {}
    case 'info':
      return { peers: connectedPeers(node).size, routing_table: (await routingTablePeers(dht)).length }
    case 'closest': {
      const key = new Uint8Array(Buffer.from(String(cmd.key_hex), 'hex'))
      const depths = new Depths(await routingTablePeers(dht))
      const final = []
      let queries = 0
      const started = performance.now()
      for await (const ev of dht.getClosestPeers(key, { signal })) {
        if (ev.name === 'PEER_RESPONSE') { queries++; depths.onResponse(ev) }
        if (ev.name === 'FINAL_PEER') final.push(ev.peer.id.toString())
      }
      const ms = performance.now() - started
      return { ms, count: final.length, hops: depths.hopsOver(final), queries }
    }
    case 'disconnect': {
      const id = peerIdFromString(cmd.peer)
      await node.hangUp(id, { signal })
      return { connected: node.getConnections(id).length > 0 }
    }
    case 'find': {
      const id = peerIdFromString(cmd.peer)
      const depths = new Depths(await routingTablePeers(dht))
      let queries = 0
      let msFirst = null
      const started = performance.now()
      for await (const ev of dht.findPeer(id, { signal, useCache: false })) {
        if (ev.name === 'PEER_RESPONSE') { queries++; depths.onResponse(ev) }
        if (ev.name === 'FINAL_PEER' && msFirst == null) msFirst = performance.now() - started
      }
      const ms = performance.now() - started
      return {
        found: msFirst != null,
        ms_first: msFirst,
        ms,
        hops: depths.hopsClosest(id.toMultihash().bytes),
        queries,
        connected: node.getConnections(id).length > 0
      }
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`)
  }
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  // All nodes share one host (127.0.0.1): lift the per-host inbound limits (5 new connections
  // per second per host, 10 handshakes in flight), which a real network spreads over hosts.
  const connectionManager = { inboundConnectionThreshold: 1000, maxIncomingPendingConnections: 64 }
  if (opts['max-connections'] != null) connectionManager.maxConnections = Number(opts['max-connections'])
  const node = await createLibp2p({
    addresses: { listen: [opts.listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false }, // loopback network: dial everything
    connectionManager,
    services: {
      identify: identify(),
      identifyPush: identifyPush(),
      ping: ping(),
      dht: kadDHT({
        protocol: '/ipfs/kad/1.0.0',
        clientMode: false, // loopback addresses never look public: serve from the start
        peerInfoMapper: passthroughMapper // the default drops private (here: all) addresses
      })
    }
  })
  await node.start()
  if (opts.bootstrap != null) {
    // Like our -bootstrap: kept connected for the first minute (checked every second, dialled
    // again whenever there is no connection to it). Failed attempts and redials are reported on
    // stderr ("bootstrap dial: ..."), which the bench counts.
    const bootstrap = multiaddr(opts.bootstrap)
    const bootstrapPeer = peerIdFromString(bootstrap.getComponents().find(c => c.name === 'p2p').value)
    const dialBootstrap = async () => {
      let connectedOnce = false
      for (let attempt = 1; attempt <= 60 && node.status === 'started'; attempt++) {
        if (node.getConnections(bootstrapPeer).length === 0) {
          if (connectedOnce) process.stderr.write(`bootstrap dial: redial after the connection closed\n`)
          try {
            await node.dial(bootstrap)
            connectedOnce = true
          } catch (err) {
            process.stderr.write(`bootstrap dial: attempt ${attempt}: ${err.message}\n`)
          }
        }
        await new Promise(resolve => setTimeout(resolve, 1000))
      }
    }
    dialBootstrap()
  }
  emit({ ready: true, peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })

  let stopping = false
  const shutdown = async () => {
    if (stopping) return
    stopping = true
    await Promise.race([node.stop().catch(() => {}), new Promise(resolve => setTimeout(resolve, 3000).unref())])
    process.exit(0)
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
  const rl = createInterface({ input: process.stdin })
  rl.on('close', shutdown)
  rl.on('line', async (line) => {
    if (line.trim() === '') return
    let cmd
    try { cmd = JSON.parse(line) } catch (err) { emit({ id: null, ok: false, error: err.message }); return }
    const signal = AbortSignal.timeout(Number(cmd.timeout ?? 60) * 1000)
    setMaxListeners(Infinity, signal)
    try {
      emit({ id: cmd.id ?? null, ok: true, ...(await execute(node, cmd, signal)) })
    } catch (err) {
      emit({ id: cmd.id ?? null, ok: false, error: err?.message ?? String(err) })
    }
  })
}

main().catch((err) => {
  emit({ error: err?.stack ?? String(err) })
  process.exit(1)
})
