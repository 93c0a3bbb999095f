// Fuzzes keyd answers as a client receives them: protobuf decoding of the
// KeyAnswer, then verification of every signed object against a fixed root.
// Nothing may crash, and nothing unsigned may verify.
#include <cstdint>
#include <cstdlib>

#include "client/answer_verifier.h"
#include "crypto/ed25519.h"
#include "crypto/sha256.h"
#include "google/protobuf/stubs/logging.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Invalid UTF-8 in string fields is a parse failure; the log line per
  // input would drown the fuzzer's output.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  static const auto* root = new mxkey::Ed25519PrivateKey(
      *mxkey::Ed25519PrivateKey::FromSeed(mxkey::SecretBytes(std::string(32, 'r'))));
  static const auto* verifier = new mxkey::AnswerVerifier(*mxkey::AnswerVerifier::Create(
      mxkey::KeyFingerprint(root->public_key()), root->public_key()));
  mxkey::v1::KeyAnswer answer;
  if (!answer.ParseFromArray(data, static_cast<int>(size))) return 0;
  const absl::Time now = absl::FromUnixSeconds(1900000000);
  for (mxkey::v1::LookupKind kind :
       {mxkey::v1::LOOKUP_KIND_HOST, mxkey::v1::LOOKUP_KIND_DOMAIN,
        mxkey::v1::LOOKUP_KIND_TLS_PIN}) {
    absl::StatusOr<mxkey::VerifiedAnswer> v =
        verifier->Verify(answer, answer.name(), kind, now);
    // The fuzzer cannot forge the root's signature: no answer verifies.
    if (v.ok()) abort();
  }
  mxkey::v1::WatchRevocationsResponse batch;
  if (batch.ParseFromArray(data, static_cast<int>(size))) {
    auto events = verifier->VerifyFeedBatch(batch, 0, now);
    if (events.ok() && !events->empty()) abort();
  }
  return 0;
}
