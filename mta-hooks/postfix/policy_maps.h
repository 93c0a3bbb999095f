// The two socketmap tables of mxkey-policyd, answered from verified keyd
// answers (KeyClient), so a revocation changes them as soon as the watch
// delivers it (KeyClient evicts; there is no cache timeout here). What a
// sender must do is decided in client/sender_policy.h; tlspolicy only maps
// that decision to a reply:
//
// tlspolicy (smtp_tls_policy_maps), keyed by next-hop:
//   "example.org", "example.org:25"   the mail domain's signed policy
//   "[mx1.example.org]", "[mx1.example.org]:25"
//                                     the host's certificate; its mode is
//                                     the strictest of its mail domains'
//   ".example.org", "[192.0.2.1]:25"  NOTFOUND: mxkey policy is per exact
//                                     domain, and it certifies names, not
//                                     addresses
//   enforce  -> "OK fingerprint match=FP|FP..." (usable pins, next included)
//               "TEMP ..." if no usable pin remains (revoked, expired)
//   testing  -> "NOTFOUND " (Postfix's default applies) plus a log line and
//               a report record when enforce would have refused: no usable
//               pin, or (found by a STARTTLS probe in the background, at
//               most once per destination per probe_interval) a presented
//               TLS key that is not pinned
//   none, unkeyed (signed denial), unknown host -> "NOTFOUND "
//   keyd unreachable and nothing fresh held -> "TEMP ..." for next-hops last
//               seen in enforce mode (EnforceMemory), else "NOTFOUND ":
//               fail closed where enforce was promised, stay backward
//               compatible elsewhere
//   an answer that fails verification -> "TEMP ...": never send on a forged
//               or broken answer, and never bounce because of one
// ccert (check_ccert_access, search_order = pubkey_fingerprint), keyed by
//   the client key's SHA-256 in colon hex: "OK <action>" if a usable
//   certificate of the org carries it, "NOTFOUND " if none does. While keyd
//   is unreachable and nothing fresh is held it degrades like tlspolicy:
//   "TEMP ..." only for a key last seen certified (remembered as
//   "ccert:HEX" in EnforceMemory, so the sender retries rather than being
//   treated as uncertified), "NOTFOUND " for every other client, which
//   mxkey never promised anything.
// Malformed keys and unknown maps get "PERM ...".
#ifndef MXKEY_MTA_HOOKS_POSTFIX_POLICY_MAPS_H_
#define MXKEY_MTA_HOOKS_POSTFIX_POLICY_MAPS_H_

#include "base/metrics.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/key_client.h"
#include "client/enforce_memory.h"
#include "client/sender_policy.h"
#include "mta-hooks/postfix/tls_report.h"

namespace mxkey {

struct PolicyMapsOptions {
  // What ccert answers for a certified client key ("OK" by default).
  std::string ccert_action = "OK";
  // Testing-mode report files; empty: log lines only.
  std::string report_dir;
  // Where EnforceMemory keeps its file; empty: memory only.
  std::string state_dir;
  // Testing mode: compare the key each destination presents with the pins.
  bool probe_testing = true;
  absl::Duration probe_interval = absl::Minutes(10);
  absl::Duration probe_timeout = absl::Seconds(10);
  Clock* clock = Clock::Real();
  // Where the maps count their answers (mxkey-policyd --metrics-listen);
  // null: a registry of their own, never served.
  MetricsRegistry* metrics = nullptr;
};

// A parsed tlspolicy key.
struct NextHop {
  enum class Kind { kDomain, kHost, kOutOfScope };
  Kind kind;
  std::string name;  // canonical domain or hostname (empty if out of scope)
  int port = 25;     // from "...:PORT", else SMTP's
};
// INVALID_ARGUMENT for keys that are no next-hop at all.
absl::StatusOr<NextHop> ParseNextHop(absl::string_view key);

class PolicyMaps {
 public:
  PolicyMaps(KeyClient* client, PolicyMapsOptions options);
  ~PolicyMaps();  // waits for a probe in flight

  // The reply payload for one socketmap request.
  std::string Lookup(const std::string& map, const std::string& key);

  std::string TlsPolicy(const std::string& key);
  std::string Ccert(const std::string& key);

 private:
  // A host and port a sending MTA would connect to.
  struct Destination {
    std::string host;
    int port;
  };
  // The socketmap reply for the decision (client/sender_policy.h decides;
  // this only maps it, and queues testing-mode probes of `destinations`).
  std::string Reply(const std::string& memory_key, const SenderDecision& d,
                    const std::vector<Destination>& destinations);

  // Testing-mode probes run on one background thread, one at a time.
  struct Probe {
    std::string memory_key;
    Destination destination;
    std::vector<std::string> pins;
  };
  void QueueProbe(Probe probe);
  void ProbeLoop();

  // Counts one answer by map and result (its first word).
  void Count(const std::string& map, const std::string& reply);

  KeyClient* const client_;
  const PolicyMapsOptions options_;
  std::unique_ptr<MetricsRegistry> own_metrics_;
  MetricsRegistry* const metrics_;
  // answers_[map][result]: map tlspolicy, ccert, other; result OK,
  // NOTFOUND, TEMP, PERM.
  Counter* answers_[3][4];
  Histogram* latency_[3];
  Counter* would_refuse_;
  Counter* probe_results_[3];  // matched, not pinned, failed
  EnforceMemory enforce_;
  SenderPolicy decide_;
  TlsReportWriter reports_;

  std::mutex probe_mu_;
  std::condition_variable probe_cv_;
  std::deque<Probe> probes_;                     // guarded by probe_mu_
  std::map<std::string, absl::Time> probed_at_;  // guarded by probe_mu_
  bool stopping_ = false;                        // guarded by probe_mu_
  std::thread prober_;
};

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_POSTFIX_POLICY_MAPS_H_
