// Loaded with `node --import ./polyfill.mjs` before anything else runs.
// - Node 20 lacks Promise.withResolvers (added in Node 22), which js-libp2p calls at run time.
// - The suite's modules import `aegir/chai` (aegir is its peer dependency: a whole build and
//   release toolchain). Only its chai preset is used, so that one import is served by chai.mjs
//   through a resolve hook instead of installing aegir; see .npmrc (legacy-peer-deps).
import { register } from 'node:module'

if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    value: function withResolvers () {
      let resolve, reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    },
    writable: true,
    configurable: true
  })
}

register('./resolve-hooks.mjs', import.meta.url)
