// What a sending MTA must do for one destination: the one place where a
// verified answer becomes a decision (enforce with these pins, testing,
// none, or defer, and why). Hooks only map the decision to their own form:
// mxkey-policyd to a socketmap reply, the C ABI and tunnels to theirs.
//
// Rules (docs/OPERATIONS.md §5, PROTOCOL.md §7):
//   - a domain's mode comes from its verified policy; a verified
//     DOMAIN_UNKEYED denial is "none". A host ("[mx1.example.org]") takes
//     the strictest mode of its certificates' mail domains; a verified
//     NO_SUCH_HOST denial is "none".
//   - enforce with usable pins -> kEnforce; enforce without -> kDefer.
//   - an answer that fails verification -> kDefer (never send on a forged
//     or broken answer, never bounce because of one).
//   - no answer (keyd unreachable, stale, or unattributable without a
//     federation bundle) -> kDefer if the destination was last seen in
//     enforce mode (EnforceMemory), else kNone.
//   - the enforce memory changes only with a verified answer's mode, and a
//     domain remembered in enforce (at policy version V) is lowered only by
//     a newer policy: a replayed older answer is kDefer for the domain, and
//     counts as enforce for its hosts.
// Nothing here fails: every outcome is a decision.
#ifndef MXKEY_CLIENT_SENDER_POLICY_H_
#define MXKEY_CLIENT_SENDER_POLICY_H_

#include <string>
#include <vector>

#include "client/enforce_memory.h"
#include "client/key_client.h"
#include "client/tls_pins.h"

namespace mxkey {

struct SenderDecision {
  enum class Action {
    kEnforce,  // authenticate the receiver: its TLS key must be one of `hosts`' pins
    kTesting,  // send as usual; report what enforce would have refused
    kNone,     // no mxkey policy: the sender's default applies
    kDefer,    // do not send now (temporary failure)
    kInvalid,  // the destination is not a valid name (permanent)
  };
  Action action = Action::kNone;
  // kEnforce and kTesting: the usable TLS pins, per host (next keys too).
  std::vector<HostPins> hosts;
  // Why: for kDefer and kInvalid the reason, for kTesting without pins what
  // enforce would have refused, for kNone without an answer the failure.
  std::string why;
  // The decision came from a verified answer (not from the memory).
  bool verified = false;
};

class SenderPolicy {
 public:
  // `client` and `memory` must outlive this object.
  SenderPolicy(KeyClient* client, EnforceMemory* memory)
      : client_(client), memory_(memory) {}

  // A mail domain, canonical (e.g. "example.org").
  SenderDecision ForDomain(const std::string& domain);
  // A host named as the next hop (e.g. "[mx1.example.org]"), canonical,
  // without brackets.
  SenderDecision ForHost(const std::string& hostname);

  // The key under which a destination is remembered.
  static std::string MemoryKeyForHost(const std::string& hostname) {
    return "[" + hostname + "]";
  }

 private:
  // The decision for a domain answer older than the enforce one remembered.
  SenderDecision Outdated(const std::string& domain, uint64_t version);
  // From a verified mode and answer (the memory is updated by the caller).
  SenderDecision FromMode(const std::string& memory_key,
                          mxkey::v1::PolicyMode mode,
                          const VerifiedAnswer& answer);
  // When no verified answer can be had.
  SenderDecision WithoutAnswer(const std::string& memory_key,
                               const absl::Status& why);
  // The strictest mode among the mail domains of the host's certificates.
  absl::StatusOr<mxkey::v1::PolicyMode> HostMode(const VerifiedAnswer& host);

  KeyClient* const client_;
  EnforceMemory* const memory_;
};

absl::string_view SenderActionName(SenderDecision::Action action);

}  // namespace mxkey

#endif  // MXKEY_CLIENT_SENDER_POLICY_H_
