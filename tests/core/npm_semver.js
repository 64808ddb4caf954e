// npm's own `semver` answering tests/core/test_semver_npm.py: one JSON question a line on
// stdin, one JSON answer a line on stdout. Usage: node npm_semver.js PACKAGE_DIR
'use strict'
const semver = require(process.argv[2])

function answer (q) {
  if (q.sort) return { sorted: [...q.sort].sort(semver.compare) }
  if (q.valid !== undefined) return { version: semver.valid(q.valid) }
  let range
  try {
    range = new semver.Range(q.range)
  } catch (e) {
    return { valid: false }
  }
  return {
    valid: true,
    matches: q.versions.map(v => range.test(v)),
    best: semver.maxSatisfying(q.versions, range)
  }
}

require('readline').createInterface({ input: process.stdin })
  .on('line', line => process.stdout.write(JSON.stringify(answer(JSON.parse(line))) + '\n'))
