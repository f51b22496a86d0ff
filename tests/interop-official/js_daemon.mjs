#!/usr/bin/env node
// A js-libp2p node behind @libp2p/daemon-server (the go-libp2p-daemon control protocol), built
// from the interop suite's SpawnOptions the way js-libp2p's own interop runner builds its "js"
// peers. Used two ways:
//   - in process, by suite.mjs for the suite's "js" slot (createJsDaemon);
//   - as a program taking go-libp2p-daemon's flags and printing its start-up lines, so that
//     without AGENTNETWORK_BIN the "go" slot's spawn-and-parse path runs against it:
//       node --import ./polyfill.mjs js_daemon.mjs -listen=/ip4/127.0.0.1/tcp/0 \
//         (-hostAddrs=/ip4/127.0.0.1/tcp/0 | -noListenAddrs) [-noise=true|-tls=true|-plaintext=true]
//         [-muxer=yamux|mplex] [-id=KEYFILE] [-dhtServer|-dht|-dhtClient] [-relay]
//         [-pubsub [-pubsubRouter=gossipsub|floodsub]] [-q]
//     stdout: "Control socket: <multiaddr>", "Peer ID: <id>", "Peer Addrs:", one address a line.
//     Runs until SIGTERM/SIGINT. Unknown or unsupported flags exit with status 2.
// Single-threaded (Node event loop); each daemon owns its libp2p node and control listener.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { createClient } from '@libp2p/daemon-client'
import { createServer } from '@libp2p/daemon-server'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { floodsub } from '@libp2p/floodsub'
import { gossipsub } from '@libp2p/gossipsub'
import { mplex } from '@libp2p/mplex'
import { ping } from '@libp2p/ping'
import { plaintext } from '@libp2p/plaintext'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

// The suite recognises a configuration to skip by this error's name; defined here rather than
// imported from @libp2p/interop so that a daemon process does not load the suite.
export class UnsupportedError extends Error {
  constructor (message) {
    super(message)
    this.name = 'UnsupportedError'
  }
}

/**
 * Starts a js-libp2p node and a control server for it.
 * options: the suite's SpawnOptions ({ key, encryption, muxer, dht, dhtClient, relay, noListen,
 * transport, pubsub, pubsubRouter }) plus `control` (control listen multiaddr, default /ip4/127.0.0.1/tcp/0).
 * Returns { client, stop, node, controlAddr }.
 */
export async function createJsDaemon (options) {
  const transport = options.transport ?? 'tcp'
  // WebTransport and WebRTC would need @libp2p/webtransport (browser-only dialer) and
  // @libp2p/webrtc (a native module); neither is part of what we test.
  if (transport !== 'tcp') throw new UnsupportedError(`js daemon: transport ${transport} not set up here`)

  const privateKey = options.key != null ? privateKeyFromProtobuf(readFileSync(options.key)) : undefined
  const services = { identify: identify(), ping: ping() }
  if (options.relay === true) services.relay = circuitRelayServer()
  // @libp2p/daemon-server serves PUBSUB requests from services.pubsub; both routers with their
  // defaults (StrictSign), as js-libp2p's own interop runner sets them up.
  if (options.pubsub === true) {
    const router = options.pubsubRouter ?? 'gossipsub'
    if (router === 'gossipsub') services.pubsub = gossipsub()
    else if (router === 'floodsub') services.pubsub = floodsub()
    else throw new Error(`js daemon: unknown pubsub router ${router}`)
  }
  if (options.dht === true || options.dhtClient === true) {
    services.dht = kadDHT({
      protocol: '/ipfs/kad/1.0.0',
      peerInfoMapper: passthroughMapper,
      clientMode: options.dht !== true
    })
  }
  const encrypter = { noise, tls, plaintext }[options.encryption ?? 'noise']
  if (encrypter == null) throw new Error(`js daemon: unknown encryption ${options.encryption}`)
  const muxer = { yamux, mplex }[options.muxer ?? 'yamux']
  if (muxer == null) throw new Error(`js daemon: unknown muxer ${options.muxer}`)

  const node = await createLibp2p({
    privateKey,
    addresses: { listen: options.noListen === true ? [] : ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [encrypter()],
    streamMuxers: [muxer()],
    services
  })
  const server = createServer(parseControlMultiaddr(options.control ?? '/ip4/127.0.0.1/tcp/0'), node)
  try {
    await server.start()
  } catch (err) {
    await node.stop()
    throw err
  }
  const controlAddr = server.getMultiaddr()
  return {
    client: createClient(controlAddr),
    node,
    controlAddr,
    stop: async () => {
      await server.stop()
      await node.stop()
    }
  }
}

class UsageError extends Error {}

// go-multiaddr writes a unix socket as /unix/dir/file.sock; js multiaddr wants the path as one
// percent-encoded component (/unix/%2Fdir%2Ffile.sock). Either form is accepted.
export function parseControlMultiaddr (text) {
  const unix = /^\/unix(\/.+)$/.exec(text)
  if (unix != null && !unix[1].slice(1).includes('%')) return multiaddr(`/unix/${encodeURIComponent(unix[1])}`)
  return multiaddr(text)
}

// go-libp2p-daemon's flag syntax (Go's flag package): -name, -name=value, -name value; one or two
// leading dashes.
export function parseDaemonFlags (argv) {
  const booleans = new Set(['noListenAddrs', 'noise', 'tls', 'plaintext', 'dht', 'dhtServer',
    'dhtClient', 'relay', 'pubsub', 'b', 'q'])
  const valued = new Set(['listen', 'hostAddrs', 'muxer', 'id', 'pubsubRouter'])
  const flags = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const match = /^--?([A-Za-z]+)(?:=(.*))?$/.exec(arg)
    if (match == null) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`)
    const [, name, inline] = match
    if (booleans.has(name)) {
      if (inline != null && inline !== 'true' && inline !== 'false') throw new UsageError(`-${name} takes true or false`)
      flags[name] = inline !== 'false'
    } else if (valued.has(name)) {
      const value = inline ?? argv[++i]
      if (value == null) throw new UsageError(`-${name} needs a value`)
      flags[name] = value
    } else {
      throw new UsageError(`unsupported flag -${name}`)
    }
  }
  return flags
}

export function spawnOptionsFromFlags (flags) {
  const options = { control: flags.listen ?? '/ip4/127.0.0.1/tcp/0' }
  if (flags.noListenAddrs === true) {
    options.noListen = true
  } else if (flags.hostAddrs != null && flags.hostAddrs !== '/ip4/127.0.0.1/tcp/0') {
    throw new UsageError(`only -hostAddrs=/ip4/127.0.0.1/tcp/0 is supported, not ${flags.hostAddrs}`)
  }
  const encryptions = ['noise', 'tls', 'plaintext'].filter(name => flags[name] === true)
  if (encryptions.length > 1) throw new UsageError('give at most one of -noise, -tls, -plaintext')
  if (encryptions.length === 1) options.encryption = encryptions[0]
  if (flags.muxer != null) options.muxer = flags.muxer
  if (flags.id != null) options.key = flags.id
  if (flags.dht === true || flags.dhtServer === true) options.dht = true
  else if (flags.dhtClient === true) options.dhtClient = true
  if (flags.relay === true) options.relay = true
  if (flags.pubsub === true) options.pubsub = true
  if (flags.pubsubRouter != null) options.pubsubRouter = flags.pubsubRouter
  return options
}

async function main (argv) {
  let options
  try {
    options = spawnOptionsFromFlags(parseDaemonFlags(argv))
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`js_daemon: ${err.message}\n`)
    process.exit(2)
  }
  const daemon = await createJsDaemon(options)
  const lines = [`Control socket: ${daemon.controlAddr.toString()}`,
    `Peer ID: ${daemon.node.peerId.toString()}`, 'Peer Addrs:',
    ...daemon.node.getMultiaddrs().map(ma => ma.toString())]
  process.stdout.write(lines.join('\n') + '\n')

  let stopping = false
  const shutdown = () => {
    if (stopping) return
    stopping = true
    daemon.stop().then(() => process.exit(0), err => {
      process.stderr.write(`js_daemon: stop failed: ${err.stack ?? err}\n`)
      process.exit(1)
    })
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch(err => {
    process.stderr.write(`js_daemon: ${err.stack ?? err}\n`)
    process.exit(1)
  })
}
