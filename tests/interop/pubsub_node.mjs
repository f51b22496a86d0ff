// A js-libp2p node with @libp2p/gossipsub as the pubsub interop peers and the gossipsub
// benchmark (bench/js/pubsub_bench.mjs, which imports it from here so that the packages resolve
// from this directory's node_modules) build it: TCP, Noise, yamux, identify, ping.
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

export { multiaddr }

// manyOnLoopback: for many nodes on 127.0.0.1 — js-libp2p's per-host inbound limits lifted, and
// gossipsub's IP colocation penalty off (all peers share one IP, which would graylist them all;
// our router does not penalise loopback either). Otherwise gossipsub's defaults (StrictSign,
// flood publishing, scoring).
export function createGossipsubNode ({ listen = ['/ip4/127.0.0.1/tcp/0'], manyOnLoopback = false } = {}) {
  return createLibp2p({
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    ...(manyOnLoopback
      ? { connectionManager: { maxConnections: 1000, inboundConnectionThreshold: 1000, maxIncomingPendingConnections: 64 } }
      : {}),
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub(manyOnLoopback ? { scoreParams: { IPColocationFactorWeight: 0 } } : {})
    }
  })
}
