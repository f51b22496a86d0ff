#!/usr/bin/env node
// js-libp2p peer with @libp2p/gossipsub (GossipSub v1.1/v1.2 with its defaults: StrictSign,
// flood publishing, peer scoring), for the pubsub interop tests (pubsub_node.mjs builds it). Driven by JSON commands, one per line on stdin; stdin EOF, SIGTERM or SIGINT stop it.
//
//   node --import ./polyfill.mjs pubsub_peer.mjs [--listen MULTIADDR|none]
//
// Every stdout line is one JSON object with an "event":
//   {"event":"ready","peer":ID,"addrs":[...]}                first line; addrs end in /p2p/ID
//   {"event":"message","topic":T,"from":ID|null,"seqno":HEX|null,"data_b64":B64,"text":T|null,
//    "signed":BOOL}                                          a new message of a subscribed topic
//   {"event":"result","id":ID,"cmd":C,"ok":true,...}         the answer to a command, or
//   {"event":"result","id":ID,"cmd":C,"ok":false,"error":E}  its failure
//
// Commands (JSON objects with "id" and "cmd"):
//   {"cmd":"dial","addr":MULTIADDR}                     -> {"remote_peer":ID}
//   {"cmd":"subscribe","topic":T} / "unsubscribe"
//   {"cmd":"publish","topic":T,"data_b64":B64|"text":T} -> {"recipients":N}
//   {"cmd":"peers","topic":T}                           -> {"subscribers":[ID],"mesh":[ID]}
// Logs go to stderr (PEER_QUIET=1: none).
import './polyfill.mjs'

import { createInterface } from 'node:readline'
import { createGossipsubNode, multiaddr } from './pubsub_node.mjs'

const COMMAND_TIMEOUT_MS = 30_000
const SHUTDOWN_GRACE_MS = 3000
const quiet = process.env.PEER_QUIET === '1'

function emit (event) { process.stdout.write(JSON.stringify(event) + '\n') }
function log (text) { if (!quiet) process.stderr.write(`[pubsub_peer ${process.pid}] ${text}\n`) }

function parseArgs (argv) {
  const opts = { listen: '/ip4/127.0.0.1/tcp/0' }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--listen' && argv[i + 1] != null) opts.listen = argv[++i]
    else throw new Error(`unknown argument ${argv[i]}`)
  }
  return opts
}

function utf8OrNull (bytes) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return null
  }
}

function dataOf (cmd) {
  if (cmd.data_b64 != null) return Buffer.from(cmd.data_b64, 'base64')
  if (cmd.text != null) return Buffer.from(cmd.text, 'utf8')
  throw new Error('publish needs data_b64 or text')
}

async function execute (node, cmd, signal) {
  const pubsub = node.services.pubsub
  switch (cmd.cmd) {
    case 'dial': {
      const connection = await node.dial(multiaddr(cmd.addr), { signal })
      return { remote_peer: connection.remotePeer.toString() }
    }
    case 'subscribe':
      pubsub.subscribe(cmd.topic)
      return {}
    case 'unsubscribe':
      pubsub.unsubscribe(cmd.topic)
      return {}
    case 'publish': {
      const result = await pubsub.publish(cmd.topic, dataOf(cmd))
      return { recipients: result.recipients.length }
    }
    case 'peers':
      return {
        subscribers: pubsub.getSubscribers(cmd.topic).map(String).sort(),
        mesh: pubsub.getMeshPeers(cmd.topic).map(String).sort()
      }
    default:
      throw new Error(`unknown command ${cmd.cmd}`)
  }
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
  try {
    node = await createGossipsubNode({ listen: opts.listen === 'none' ? [] : [opts.listen] })
  } catch (err) {
    emit({ event: 'error', error: `start failed: ${err.message}` })
    process.exit(1)
  }
  node.services.pubsub.addEventListener('message', (evt) => {
    const msg = evt.detail
    const data = Buffer.from(msg.data)
    emit({
      event: 'message',
      topic: msg.topic,
      from: msg.type === 'signed' ? msg.from.toString() : null,
      seqno: msg.type === 'signed' ? msg.sequenceNumber.toString(16).padStart(16, '0') : null,
      data_b64: data.toString('base64'),
      text: utf8OrNull(data),
      signed: msg.type === 'signed'
    })
  })
  log(`started ${node.peerId}`)
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
    } catch (err) {
      emit({ event: 'result', id: null, cmd: null, ok: false, error: `bad command line: ${err.message}` })
      return
    }
    const head = { event: 'result', id: cmd.id ?? null, cmd: cmd.cmd ?? null }
    try {
      emit({ ...head, ok: true, ...await execute(node, cmd, AbortSignal.timeout(COMMAND_TIMEOUT_MS)) })
    } catch (err) {
      emit({ ...head, ok: false, error: err?.message ?? String(err) })
    }
  })
}

main().catch((err) => {
  emit({ event: 'error', error: err?.stack ?? String(err) })
  process.exit(1)
})
