// Node 20 lacks Promise.withResolvers (added in Node 22), which js-libp2p >= mid-2024 calls at
// run time. Loaded with `node --import ./polyfill.mjs` and also imported first by peer.mjs.
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
