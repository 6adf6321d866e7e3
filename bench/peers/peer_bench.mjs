// Peer comparison: times @simplewebauthn/server's verifyAuthenticationResponse on the assertion vectors that
// `sigil_bench --dump-assertions=FILE N` wrote (ES256, "none" credentials, counter 0 -> 1, UV set).
//
// Usage: node peer_bench.mjs VECTORS.json [--seconds=S] [--concurrency=C]
// Prints one JSON object. Every vector is verified once first and must pass: a peer that rejects the
// vectors is a broken comparison, not a fast one. Run under `taskset -c 0` (tools/bench --peers does) so
// WebCrypto's thread pool shares the one core with the event loop, as sigil's single thread does.
//
// The peer gets each response as an already-parsed object (as an Express handler would), so its figure
// excludes JSON parsing; sigil's figure (assertion/engine:from_toJSON) includes it.
import { readFileSync } from 'node:fs';
import { verifyAuthenticationResponse } from '@simplewebauthn/server';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
if (!file) {
  console.error('usage: node peer_bench.mjs VECTORS.json [--seconds=S] [--concurrency=C]');
  process.exit(2);
}
const opt = (name, dflt) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : dflt;
};
const seconds = opt('seconds', 3);
const concurrency = opt('concurrency', 16);

const doc = JSON.parse(readFileSync(file, 'utf8'));
const vectors = doc.vectors.map((v) => ({
  response: v.response,
  expectedChallenge: v.challenge,
  expectedOrigin: doc.origin,
  expectedRPID: doc.rpID,
  requireUserVerification: true,
  credential: { id: v.credentialId, publicKey: new Uint8Array(Buffer.from(v.publicKey, 'base64url')), counter: 0 },
}));

async function verifyOne(v) {
  const r = await verifyAuthenticationResponse(v);
  if (!r.verified) throw new Error('peer did not verify a valid assertion');
}

for (const v of vectors) await verifyOne(v);  // correctness + warm-up (JIT)

// Rates per wall second and per CPU second of this process (all its threads): the CPU figure stays
// comparable with sigil's CPU-time figure when other work shares the core.
function rates(n, start, cpu0) {
  const cpu = process.cpuUsage(cpu0);
  return { wall: n / ((performance.now() - start) / 1000), cpu: n / ((cpu.user + cpu.system) / 1e6) };
}

async function sequential() {
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    for (let k = 0; k < 64; ++k) await verifyOne(vectors[(n + k) % vectors.length]);
    n += 64;
  }
  return rates(n, start, cpu0);
}

async function concurrent() {
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + seconds * 1000;
  async function lane(offset) {
    let i = offset;
    while (performance.now() < end) {
      await verifyOne(vectors[i % vectors.length]);
      i += concurrency;
      ++n;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, k) => lane(k)));
  return rates(n, start, cpu0);
}

// The package's exports map hides package.json; read it from the install next to this script.
const version = JSON.parse(
  readFileSync(new URL('./node_modules/@simplewebauthn/server/package.json', import.meta.url), 'utf8'),
).version;
const seq = await sequential();
const conc = await concurrent();
console.log(JSON.stringify({
  peer: '@simplewebauthn/server',
  function: 'verifyAuthenticationResponse',
  version,
  node: process.version,
  vectors: vectors.length,
  seconds,
  sequential_per_s: seq.wall,
  sequential_per_cpu_s: seq.cpu,
  concurrent_per_s: conc.wall,
  concurrent_per_cpu_s: conc.cpu,
  concurrency,
  best_per_s: Math.max(seq.wall, conc.wall),
  best_per_cpu_s: Math.max(seq.cpu, conc.cpu),
}));
