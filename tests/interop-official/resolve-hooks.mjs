// Module resolve hook (registered by polyfill.mjs, runs on Node's loader thread, no shared
// state): maps the suite's `aegir/chai` import to our chai preset.
const CHAI_PRESET = new URL('./chai.mjs', import.meta.url).href

export async function resolve (specifier, context, nextResolve) {
  if (specifier === 'aegir/chai') return { url: CHAI_PRESET, shortCircuit: true }
  return nextResolve(specifier, context)
}
