// The chai preset the interop suite expects from `aegir/chai`: promise assertions
// (`eventually`, `rejected`), call-style terminators (`.to.exist()`, `.be.ok()`) and byte
// comparison (`equalBytes`). Plugin order matters: dirty-chai must come after chai-as-promised.
import chai from 'chai'
import chaiAsPromised from 'chai-as-promised'
import chaiBites from 'chai-bites'
import dirtyChai from 'dirty-chai'

chai.use(chaiAsPromised)
chai.use(dirtyChai)
chai.use(chaiBites)

export const expect = chai.expect
export const assert = chai.assert
export { chai }
