// Asks an SMTP server for the TLS key it presents after STARTTLS, the way
// a sending MTA would see it, so testing mode can report what enforce mode
// would have refused (the pins themselves never leave the policy server).
//
// The probe trusts nothing it receives: it only hashes the presented key.
// Errors: UNAVAILABLE (resolve, connect, SMTP refusal, TLS failure, no
// STARTTLS), DEADLINE_EXCEEDED (the whole probe is bounded by `timeout`).
#ifndef MXKEY_MTA_HOOKS_POSTFIX_TLS_PROBE_H_
#define MXKEY_MTA_HOOKS_POSTFIX_TLS_PROBE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mxkey {

// The SHA-256 of the DER SubjectPublicKeyInfo of the server's certificate
// (32 bytes).
absl::StatusOr<std::string> ProbeSmtpTlsPin(const std::string& host, int port,
                                            absl::Duration timeout);

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_POSTFIX_TLS_PROBE_H_
