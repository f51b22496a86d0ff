// js-libp2p's @libp2p/daemon-client driving a production agentnetwork node through its p2pd
// control socket, with a js-libp2p node as the remote peer: identify, connect, a stream out to
// the js node (echo), a stream in from it through a registered handler, a DHT put/get, stop.
//
//   AGENTNETWORK_BIN set: `$AGENTNETWORK_BIN start -data TMP -listen /ip4/127.0.0.1/tcp/0
//     -p2pd-listen /unix/TMP/p2pd.sock`, `id -data TMP`, and `stop -data TMP` at the end.
//   Unset: a js-libp2p daemon (js_daemon.mjs as a child process, kad-dht server) stands in,
//     which checks this test itself; the output says which one ran.
// Run by run.sh (`run.sh daemon-client`) under node:test; every step is bounded in time.
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { createClient } from '@libp2p/daemon-client'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { echo, lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { parseControlMultiaddr } from './js_daemon.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const STEP_TIMEOUT_MS = 20_000
const STARTUP_TIMEOUT_MS = 20_000
const ECHO_PROTOCOL = '/echo/1.0.0'
const INBOUND_PROTOCOL = '/agentnetwork-test/inbound/1.0.0'
const execFileAsync = promisify(execFile)
const bin = process.env.AGENTNETWORK_BIN || ''
const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder()

function assertSameBytes (actual, expected, what) {
  assert.ok(actual != null, `${what}: nothing`)
  assert.equal(Buffer.from(actual).toString('hex'), Buffer.from(expected).toString('hex'), what)
}

async function waitFor (what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  let lastError
  while (Date.now() < deadline) {
    try {
      const result = await check()
      if (result) return result
    } catch (err) {
      lastError = err
    }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${lastError.message}` : ''}`)
}

// The node under test: start it, learn its peer ID by our own CLI (or start-up line), stop it.
async function startProductionNode (dataDir, socketPath) {
  const args = ['start', '-data', dataDir, '-listen', '/ip4/127.0.0.1/tcp/0', '-p2pd-listen', `/unix${socketPath}`]
  try {
    await execFileAsync(bin, args, { timeout: STARTUP_TIMEOUT_MS })
  } catch (err) {
    throw new Error(`${bin} ${args.join(' ')} failed: ${(err.stderr || err.message).trim()}`)
  }
  await waitFor(`control socket ${socketPath}`, () => existsSync(socketPath), STARTUP_TIMEOUT_MS)
  const { stdout } = await execFileAsync(bin, ['id', '-data', dataDir], { timeout: STEP_TIMEOUT_MS })
  return {
    label: `agentnetwork (${bin} start -p2pd-listen)`,
    peerId: stdout.trim(),
    stop: async () => {
      const { stdout: out, stderr } = await execFileAsync(bin, ['stop', '-data', dataDir], { timeout: STEP_TIMEOUT_MS })
      return (out + stderr).trim()
    }
  }
}

async function startStandInNode (socketPath) {
  const child = spawn(process.execPath, ['--import', join(HERE, 'polyfill.mjs'), join(HERE, 'js_daemon.mjs'),
    `-listen=/unix${socketPath}`, '-hostAddrs=/ip4/127.0.0.1/tcp/0', '-dhtServer'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise(resolve => child.once('exit', resolve))
  let output = ''
  child.stdout.on('data', buf => { output += buf.toString() })
  try {
    await waitFor('"Peer ID:" line', () => /Peer ID:\s*(\S+)/.exec(output), STARTUP_TIMEOUT_MS)
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  return {
    label: 'js-libp2p stand-in (js_daemon.mjs; AGENTNETWORK_BIN unset)',
    peerId: /Peer ID:\s*(\S+)/.exec(output)[1],
    stop: async () => {
      child.kill('SIGTERM')
      await exited
      return ''
    }
  }
}

describe('daemon client against a production node', { timeout: 180_000 }, () => {
  let dataDir
  let socketPath
  let node
  let client
  let jsNode
  let ourIdentity

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'an-p2pd-'))
    socketPath = join(dataDir, 'p2pd.sock')
    node = bin !== '' ? await startProductionNode(dataDir, socketPath) : await startStandInNode(socketPath)
    console.log(`daemon_client: node under test = ${node.label}`)
    client = createClient(parseControlMultiaddr(`/unix${socketPath}`))
    jsNode = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        ping: ping(),
        dht: kadDHT({ protocol: '/ipfs/kad/1.0.0', peerInfoMapper: passthroughMapper, clientMode: false })
      }
    })
    await jsNode.handle(ECHO_PROTOCOL, stream => { echo(stream).catch(() => {}) })
  })

  after(async () => {
    await jsNode?.stop()
    // Normally stopped by the last test; this catches a failure before it.
    if (node != null && existsSync(socketPath)) await node.stop().catch(() => {})
    if (dataDir != null) rmSync(dataDir, { recursive: true, force: true })
  })

  it('identify returns the node\'s peer ID and listen addresses', { timeout: STEP_TIMEOUT_MS }, async () => {
    ourIdentity = await client.identify()
    assert.equal(ourIdentity.peerId.toString(), node.peerId)
    assert.ok(ourIdentity.addrs.length > 0, 'no listen addresses')
    for (const addr of ourIdentity.addrs) assert.ok(!addr.toString().includes('/p2p/'), `address with /p2p/: ${addr}`)
  })

  it('connects to a js-libp2p node', { timeout: STEP_TIMEOUT_MS }, async () => {
    assert.deepEqual(await client.listPeers(), [])
    const jsAddrs = jsNode.getMultiaddrs().map(ma => multiaddr(ma.toString().replace(/\/p2p\/[^/]+$/, '')))
    await client.connect(jsNode.peerId, jsAddrs)
    const peers = await client.listPeers()
    assert.deepEqual(peers.map(p => p.toString()), [jsNode.peerId.toString()])
    await waitFor('the js node to see the connection', () => jsNode.getConnections(ourIdentity.peerId).length > 0, STEP_TIMEOUT_MS)
  })

  it('opens a stream to the js node (echo)', { timeout: STEP_TIMEOUT_MS }, async () => {
    const stream = await client.openStream(jsNode.peerId, ECHO_PROTOCOL)
    const lp = lpStream(stream)
    const message = textEncoder.encode('hello from the daemon client')
    await lp.write(message)
    const reply = await lp.read()
    assertSameBytes(reply.subarray(), message, 'echoed bytes')
    await stream.close()
  })

  it('receives a stream from the js node through a registered handler', { timeout: STEP_TIMEOUT_MS }, async () => {
    const received = Promise.withResolvers()
    await client.registerStreamHandler(INBOUND_PROTOCOL, async stream => {
      try {
        const lp = lpStream(stream)
        const request = await lp.read()
        await lp.write(textEncoder.encode(`reply to ${textDecoder.decode(request.subarray())}`))
        received.resolve(textDecoder.decode(request.subarray()))
      } catch (err) {
        received.reject(err)
      }
    })
    const stream = await jsNode.dialProtocol(ourIdentity.peerId, INBOUND_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(textEncoder.encode('hello from js'))
    const reply = await lp.read()
    assert.equal(textDecoder.decode(reply.subarray()), 'reply to hello from js')
    assert.equal(await received.promise, 'hello from js')
    await stream.close()
  })

  it('puts a record into the DHT and both nodes get it', { timeout: 60_000 }, async () => {
    // A /pk/ record of a fresh Ed25519 key: the key is the peer ID's multihash, the value the
    // public key protobuf, so every DHT validator accepts it.
    const keyPair = await generateKeyPair('Ed25519')
    const recordKey = new Uint8Array([...textEncoder.encode('/pk/'), ...peerIdFromPublicKey(keyPair.publicKey).toMultihash().bytes])
    const recordValue = publicKeyToProtobuf(keyPair.publicKey)
    // The js node must be in the node's routing table first (added once identify shows kad).
    await waitFor('a DHT put to succeed', async () => { await client.dht.put(recordKey, recordValue); return true }, 30_000)
    assertSameBytes(await client.dht.get(recordKey), recordValue, 'value from the node')
    let fromJs
    for await (const event of jsNode.services.dht.get(recordKey, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) })) {
      if (event.name === 'VALUE') { fromJs = event.value; break }
    }
    assertSameBytes(fromJs, recordValue, 'value from the js node')
  })

  it('stops', { timeout: STEP_TIMEOUT_MS }, async () => {
    await node.stop()
    await waitFor('the control socket to go away', () => !existsSync(socketPath), STEP_TIMEOUT_MS)
  })
})
