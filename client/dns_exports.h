// Exports of a domain's verified keys for the DNS world, so DANE and
// MTA-STS senders see the same truth as mxkey peers (docs/PROTOCOL.md §11).
//
// Both take a verified domain answer (KeyClient::LookupDomain) and never
// fail: a domain with no usable pins yields no TLSA records, and an MTA-STS
// policy whose mode follows the signed domain policy.
#ifndef MXKEY_CLIENT_DNS_EXPORTS_H_
#define MXKEY_CLIENT_DNS_EXPORTS_H_

#include <cstdint>
#include <string>

#include "client/answer_verifier.h"

namespace mxkey {

// One "_25._tcp.<mx>. IN TLSA 3 1 1 <hex>" line per usable pin of every
// MX host, pre-published next keys included.
std::string TlsaRecords(const VerifiedAnswer& domain_answer);

// An RFC 8461 policy file: version, mode (enforce, testing or none from the
// domain's signed policy), one "mx:" line per host with a usable key, and
// max_age in seconds. ("usable key" means a usable TLS pin: the hosts a
// TLS sender can authenticate.) Lines end in CRLF, as RFC 8461 §3.2 asks.
std::string MtaStsPolicy(const VerifiedAnswer& domain_answer,
                         int64_t max_age_seconds);

}  // namespace mxkey

#endif  // MXKEY_CLIENT_DNS_EXPORTS_H_
