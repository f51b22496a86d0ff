// /daan messaging between two js-libp2p peers (daan_peer.mjs), with node:test: checks the js
// side the interop cases with our daemon rely on — the Go framing both ways, the answers of
// every request mode, refusals, bad frames reset, and a namespace advertised and found on the
// DHT.
//
// Run: bash run.sh   (or: node --import ./polyfill.mjs --test run_interop_daan.mjs)
import './polyfill.mjs'

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { MESSAGE_PROTOCOL, REQUEST_PROTOCOL, encodeFrame } from './daan.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const DAAN_PEER_JS = join(HERE, 'daan_peer.mjs')
const PEER_READY_MS = 40_000
const EVENT_WAIT_MS = 20_000
const STOP_GRACE_MS = 5000

// One daan_peer.mjs process: commands in, JSON lines out.
class DaanPeer {
  static async start (...args) {
    const peer = new DaanPeer(args)
    peer.ready = await peer.next((e) => e.event === 'ready' || e.event === 'error', PEER_READY_MS)
    assert.equal(peer.ready.event, 'ready', `daan_peer did not start: ${JSON.stringify(peer.ready)}`)
    return peer
  }

  constructor (args) {
    this.child = spawn(process.execPath, [DAAN_PEER_JS, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PEER_QUIET: '1' } })
    this.events = []
    this.waiters = []
    this.lastId = 0
    this.stderr = ''
    this.child.stderr.on('data', (d) => { this.stderr += d })
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.events.push(JSON.parse(line))
      for (const w of [...this.waiters]) w()
    })
  }

  get peer () { return this.ready.peer }
  get addr () { return this.ready.addrs[0] }

  // The first unclaimed event matching `pred` (removed from the backlog).
  next (pred, timeoutMs = EVENT_WAIT_MS) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.events.findIndex(pred)
        if (i < 0) return
        const [e] = this.events.splice(i, 1)
        done()
        resolve(e)
      }
      const timer = setTimeout(() => { done(); reject(new Error(`no matching event within ${timeoutMs} ms; stderr: ${this.stderr.slice(-2000)}`)) }, timeoutMs)
      const done = () => { clearTimeout(timer); this.waiters = this.waiters.filter(w => w !== check) }
      this.waiters.push(check)
      check()
    })
  }

  async cmd (cmd, fields = {}) {
    const id = ++this.lastId
    this.child.stdin.write(JSON.stringify({ id, cmd, ...fields }) + '\n')
    return this.next((e) => e.event === 'result' && e.id === id, ((fields.timeout ?? 30) + 5) * 1000)
  }

  async stop () {
    if (this.child.exitCode !== null) return
    const exited = new Promise(resolve => this.child.once('exit', resolve))
    this.child.stdin.end()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS)
    await exited
    clearTimeout(timer)
  }
}

const b64 = (text) => Buffer.from(text).toString('base64')
const frameHex = (frame) => encodeFrame(frame).toString('hex')
const rawFrameHex = (json) => {
  const body = Buffer.from(json)
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.byteLength)
  return Buffer.concat([head, body]).toString('hex')
}

describe('daan js<->js', { timeout: 180_000 }, () => {
  let a
  let b
  before(async () => {
    [a, b] = await Promise.all([DaanPeer.start(), DaanPeer.start('--mode', 'reverse')])
    const dial = await a.cmd('dial', { addr: b.addr })
    assert.ok(dial.ok, dial.error)
  })
  after(async () => { await Promise.all([a?.stop(), b?.stop()]) })

  test('one-way message: stored, printed with its sender', async () => {
    const sent = await a.cmd('send', { peer: b.peer, text: 'héllo wörld' })
    assert.ok(sent.ok, sent.error)
    assert.equal(sent.stored, true)
    const got = await b.next((e) => e.event === 'message')
    assert.equal(got.from, a.peer)
    assert.equal(got.text, 'héllo wörld')
    assert.equal(got.payload_b64, b64('héllo wörld'))
  })

  test('empty message the other way, and wait_messages', async () => {
    const sent = await b.cmd('send', { addr: a.addr, payload_b64: '' })
    assert.ok(sent.ok, sent.error)
    const waited = await a.cmd('wait_messages', { count: 1, timeout: 10 })
    assert.ok(waited.ok, waited.error)
    assert.equal(waited.messages.at(-1).size, 0)
    assert.equal(waited.messages.at(-1).from, b.peer)
  })

  test('request answered by reverse and echo, request_id kept exact', async () => {
    const reversed = await a.cmd('request', { peer: b.peer, text: 'héllo 🌍' })
    assert.ok(reversed.ok, reversed.error)
    assert.equal(reversed.answer, 'response')
    assert.equal(reversed.text, '🌍 olléh')
    // Written by hand: JSON.stringify would round 2^64-1.
    b.child.stdin.write(`{"id":"max","cmd":"request","peer":"${a.peer}","payload_b64":"AAE=","request_id":18446744073709551615}\n`)
    const echoed = await b.next((e) => e.event === 'result' && e.id === 'max')
    assert.ok(echoed.ok, echoed.error)
    assert.equal(echoed.payload_b64, 'AAE=')
    const served = await a.next((e) => e.event === 'request')
    assert.equal(served.answer, 'response')
  })

  test('no handler: type 4 "no handler registered"; reset and hang modes', async () => {
    try {
      assert.ok((await b.cmd('set_mode', { mode: 'none' })).ok)
      const none = await a.cmd('request', { peer: b.peer, text: 'anyone?' })
      assert.ok(none.ok, none.error)
      assert.equal(none.answer, 'error')
      assert.equal(none.text, 'no handler registered')

      assert.ok((await b.cmd('set_mode', { mode: 'reset' })).ok)
      const reset = await a.cmd('request', { peer: b.peer, text: 'x', timeout: 5 })
      assert.equal(reset.ok, false)
      assert.notEqual(reset.timeout, true, reset.error)

      assert.ok((await b.cmd('set_mode', { mode: 'hang' })).ok)
      const hang = await a.cmd('request', { peer: b.peer, text: 'x', timeout: 1 })
      assert.equal(hang.ok, false)
      assert.equal(hang.timeout, true)
    } finally {
      await b.cmd('set_mode', { mode: 'reverse' })
    }
  })

  test('a refused message fails as refused; an unacknowledged one times out', async () => {
    try {
      assert.ok((await b.cmd('set_mode', { message_mode: 'refuse' })).ok)
      const refused = await a.cmd('send', { peer: b.peer, text: 'no room' })
      assert.equal(refused.ok, false)
      assert.equal(refused.refused, true, refused.error)
      assert.equal((await b.cmd('stats')).refused, 1)

      assert.ok((await b.cmd('set_mode', { message_mode: 'hang' })).ok)
      const hang = await a.cmd('send', { peer: b.peer, text: 'hello?', timeout: 1 })
      assert.equal(hang.ok, false)
      assert.equal(hang.timeout, true)
    } finally {
      await b.cmd('set_mode', { message_mode: 'store' })
    }
  })

  test('a large request (12 MB payload: about 16 MB of JSON) round trips', async () => {
    assert.ok((await b.cmd('set_mode', { mode: 'echo' })).ok)
    const payload = Buffer.alloc(12_000_000, 'y').toString('base64')
    const r = await a.cmd('request', { peer: b.peer, payload_b64: payload, timeout: 60 })
    assert.ok(r.ok, r.error)
    assert.equal(r.size, 12_000_000)
    await b.cmd('set_mode', { mode: 'reverse' })
  })

  test('bad frames are reset and reported; raw well-formed frames work', async () => {
    const bad = [
      ['over the cap', '01000001'],
      ['truncated', rawFrameHex('{"type":1,"payload":"aGk="}').slice(0, 16)],
      ['not JSON', rawFrameHex('abc')],
      ['unknown type', rawFrameHex('{"type":5}')],
      ['type as a string', rawFrameHex('{"type":"1"}')],
      ['bad base64', rawFrameHex('{"type":1,"payload":"aGk"}')],
      ['a request on the message protocol', frameHex({ type: 2, requestId: 1n, payload: Buffer.from('x') })]
    ]
    for (const [what, hex] of bad) {
      const r = await a.cmd('raw', { peer: b.peer, protocol: MESSAGE_PROTOCOL, hex, timeout: 5 })
      assert.ok(r.ok, r.error)
      assert.equal(r.outcome, 'reset', what)
      const e = await b.next((x) => x.event === 'bad_frame')
      assert.equal(e.from, a.peer)
    }
    // Go's encoding, keys in another order and case, unknown keys: accepted.
    const ok = await a.cmd('raw', { peer: b.peer, protocol: MESSAGE_PROTOCOL, hex: rawFrameHex(' {"x":[1,{"y":"}"}],"PAYLOAD":"aGk=","Type":1} '), timeout: 5 })
    assert.equal(ok.outcome, 'closed')
    assert.equal((await b.next((x) => x.event === 'message' && x.text === 'hi')).from, a.peer)

    const req = await a.cmd('raw', { peer: b.peer, protocol: REQUEST_PROTOCOL, hex: rawFrameHex('{"type":2,"request_id":5,"payload":"YWJj"}'), timeout: 5 })
    assert.equal(req.outcome, 'closed')
    // Reversed, byte for byte as Go's json.Marshal writes the answer.
    assert.equal(req.reply_hex, rawFrameHex('{"type":3,"request_id":5,"payload":"Y2Jh"}'))
  })

  test('a namespace advertised by one peer is found by the other', async () => {
    const ns = '/daan/capability/reverse'
    const adv = await b.cmd('advertise', { namespace: ns })
    assert.ok(adv.ok, adv.error)
    assert.deepEqual(adv.peers, [a.peer])
    const cid = await a.cmd('cid', { namespace: '/daan/1.0.0' })
    // go-libp2p routing discovery's key for Go's namespace (CIDv1 raw, sha2-256).
    assert.equal(cid.cid, 'bafkreictyxe3ud4s53jrxsndypzfxrwzbr5dwuav4nr56lvzhl43hw7bmq')
    const found = await a.cmd('find', { namespace: ns })
    assert.ok(found.ok, found.error)
    assert.equal(found.cid, adv.cid)
    assert.deepEqual(found.providers.map(p => p.id), [b.peer])
    assert.ok(found.providers[0].addrs.length > 0)
    const nobody = await a.cmd('find', { namespace: '/daan/capability/nobody', timeout: 10 })
    assert.ok(nobody.ok, nobody.error)
    assert.deepEqual(nobody.providers, [])
  })
})
