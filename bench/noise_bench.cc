// The keyed session's hot paths, each beside the baseline it is judged
// against (issue 3 / issue 6 figures "handshake" and "transport"):
//   BM_IkHandshake          a full Noise_IK handshake, both sides, in memory
//   BM_IkX25519Baseline     the X25519 work that handshake must do: 2 key
//                           generations and 8 agreements, raw Crypto++
//   BM_SessionEncrypt16K    session encryption of 16 KiB records
//   BM_RawChaChaPoly16K     raw Crypto++ ChaCha20-Poly1305 on the same sizes
#include <string>

#include "benchmark/benchmark.h"
#include "crypto++/chachapoly.h"
#include "crypto++/osrng.h"
#include "crypto++/xed25519.h"
#include "mta-hooks/session/noise_handshake.h"

namespace mxkey {
namespace {

void BM_IkHandshake(benchmark::State& state) {
  X25519PrivateKey init_static = *X25519PrivateKey::Generate();
  X25519PrivateKey resp_static = *X25519PrivateKey::Generate();
  const NoisePattern* ik = FindNoisePattern("IK");
  std::string hello(40, 'h');  // about the size of a SessionHello
  for (auto _ : state) {
    NoiseHandshakeConfig ic;
    ic.pattern = ik;
    ic.initiator = true;
    ic.prologue = "mxkey/1mx2.example.org";
    ic.static_key = init_static;
    ic.remote_static_key = resp_static.public_key();
    NoiseHandshakeConfig rc;
    rc.pattern = ik;
    rc.prologue = ic.prologue;
    rc.static_key = resp_static;
    NoiseHandshake i = *NoiseHandshake::Create(std::move(ic));
    NoiseHandshake r = *NoiseHandshake::Create(std::move(rc));
    std::string m1 = *i.WriteMessage(hello);
    benchmark::DoNotOptimize(*r.ReadMessage(m1));
    std::string m2 = *r.WriteMessage("");
    benchmark::DoNotOptimize(*i.ReadMessage(m2));
    auto ti = *i.Split();
    auto tr = *r.Split();
    benchmark::DoNotOptimize(ti);
    benchmark::DoNotOptimize(tr);
  }
}
BENCHMARK(BM_IkHandshake);

void BM_IkX25519Baseline(benchmark::State& state) {
  CryptoPP::x25519 domain;
  CryptoPP::NonblockingRng rng;
  CryptoPP::byte s1[32], p1[32], s2[32], p2[32], shared[32];
  domain.GenerateKeyPair(rng, s1, p1);
  domain.GenerateKeyPair(rng, s2, p2);
  for (auto _ : state) {
    CryptoPP::byte e1[32], ep1[32], e2[32], ep2[32];
    // Initiator: e, es, ss; responder: es, ss, e, ee, se; initiator: ee, se.
    domain.GenerateKeyPair(rng, e1, ep1);
    domain.GenerateKeyPair(rng, e2, ep2);
    for (int i = 0; i < 8; ++i) {
      benchmark::DoNotOptimize(domain.Agree(shared, i % 2 ? s1 : e1,
                                            i % 2 ? p2 : ep2, true));
    }
  }
}
BENCHMARK(BM_IkX25519Baseline);

constexpr size_t kRecord = 16 * 1024;

void BM_SessionEncrypt16K(benchmark::State& state) {
  CipherState c;
  c.InitializeKey(SecretBytes(std::string(32, 'k')));
  std::string record(kRecord, 'r');
  for (auto _ : state) {
    benchmark::DoNotOptimize(*c.EncryptWithAd("", record));
  }
  state.SetBytesProcessed(state.iterations() * kRecord);
}
BENCHMARK(BM_SessionEncrypt16K);

void BM_RawChaChaPoly16K(benchmark::State& state) {
  CryptoPP::byte key[32] = {'k'}, nonce[12] = {0};
  std::string record(kRecord, 'r');
  std::string out(kRecord + 16, '\0');
  auto* o = reinterpret_cast<CryptoPP::byte*>(&out[0]);
  const auto* in = reinterpret_cast<const CryptoPP::byte*>(record.data());
  CryptoPP::ChaCha20Poly1305::Encryption enc;
  uint64_t n = 0;
  for (auto _ : state) {
    for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<CryptoPP::byte>(n >> (8 * i));
    ++n;
    enc.SetKeyWithIV(key, 32, nonce, 12);
    enc.EncryptAndAuthenticate(o, o + kRecord, 16, nonce, 12, nullptr, 0, in,
                               kRecord);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(state.iterations() * kRecord);
}
BENCHMARK(BM_RawChaChaPoly16K);

}  // namespace
}  // namespace mxkey

BENCHMARK_MAIN();
