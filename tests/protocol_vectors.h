// The test vectors of docs/PROTOCOL.md, Appendix A: a complete chain made
// from fixed seeds and a fixed clock, and invalid variants of it.
//
// Ed25519 signatures are deterministic and protobuf serializes the bodies
// in field order, so every byte is reproducible. tests/protocol_doc_test
// checks the document against these; `tools/protocol-vectors` prints the
// block to paste into the document when the protocol changes on purpose.
#ifndef MXKEY_TESTS_PROTOCOL_VECTORS_H_
#define MXKEY_TESTS_PROTOCOL_VECTORS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/mxkey/v1/objects.pb.h"

namespace mxkey {

// One named value: raw bytes (printed as hex) or text (printed quoted).
struct ProtocolVector {
  std::string name;
  std::string value;
  bool is_text = false;
};

// How a KeyAnswer vector must verify: against the vector root fingerprint,
// asked as `ask_name`, at `at`. An empty `error` means it must verify.
// With `own_bundle`, the answer is also held to the client's rules for
// own-root answers under the vector federation bundle (CheckOwnAnswer).
struct AnswerCheck {
  std::string vector;  // the name of a serialized KeyAnswer vector
  std::string ask_name;
  mxkey::v1::LookupKind kind = mxkey::v1::LOOKUP_KIND_HOST;
  absl::Time at;
  std::string error;  // a substring of the expected error message
  bool own_bundle = false;
};

// Fixed inputs of the chain.
inline constexpr int64_t kVectorTime = 1790000000;  // 2026-09-21T13:33:20Z

absl::StatusOr<std::vector<ProtocolVector>> ProtocolVectors();
std::vector<AnswerCheck> ProtocolAnswerChecks();

// The Appendix A block, as it appears in the document (between the
// ```vectors fence lines, which it does not include).
absl::StatusOr<std::string> FormatProtocolVectors();

}  // namespace mxkey

#endif  // MXKEY_TESTS_PROTOCOL_VECTORS_H_
