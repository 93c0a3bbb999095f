// Fuzzes the socketmap request path up to the point where keyd would be
// asked: netstring framing (fed in uneven chunks), request splitting, and
// next-hop and pin parsing. Invariants: no payload beyond the limit, and
// every accepted next-hop name is canonical.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "client/tls_pins.h"
#include "mta-hooks/postfix/netstring.h"
#include "mta-hooks/postfix/policy_maps.h"
#include "mta-hooks/postfix/socketmap_server.h"
#include "protocol/hostname.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kLimit = 4096;
  mxkey::NetstringDecoder decoder(kLimit);
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  size_t chunk = 1 + (size > 0 ? data[0] % 7 : 0);
  for (size_t pos = 0; pos < input.size(); pos += chunk) {
    decoder.Append(input.substr(pos, chunk));
    for (;;) {
      mxkey::NetstringDecoder::Result r = decoder.Next();
      if (r.kind != mxkey::NetstringDecoder::Kind::kPayload) break;
      if (r.payload.size() > kLimit) abort();
      absl::StatusOr<mxkey::SocketmapRequest> req =
          mxkey::ParseSocketmapRequest(r.payload);
      if (!req.ok()) continue;
      if (req->map == "ccert") {
        absl::StatusOr<std::string> pin = mxkey::ParseColonHexPin(req->key);
        if (pin.ok() && mxkey::ColonHex(*pin).size() != 95) abort();
        continue;
      }
      absl::StatusOr<mxkey::NextHop> hop = mxkey::ParseNextHop(req->key);
      if (hop.ok() && hop->kind != mxkey::NextHop::Kind::kOutOfScope) {
        absl::StatusOr<std::string> again = mxkey::CanonicalHostname(hop->name);
        if (!again.ok() || *again != hop->name) abort();
      }
    }
  }
  return 0;
}
