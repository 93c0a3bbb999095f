#include "crypto/spki.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crypto/sha256.h"

namespace mxkey {

namespace {

constexpr uint8_t kTagSequence = 0x30;
constexpr uint8_t kTagInteger = 0x02;
constexpr uint8_t kTagVersion = 0xa0;  // [0] EXPLICIT

// One DER element: its tag, its whole encoding and its contents.
struct Tlv {
  uint8_t tag;
  absl::string_view whole;
  absl::string_view contents;
};

// Reads one element from the front of `*in` and advances past it.
absl::StatusOr<Tlv> ReadTlv(absl::string_view* in) {
  const absl::string_view start = *in;
  if (in->size() < 2) return absl::InvalidArgumentError("DER: truncated");
  uint8_t tag = static_cast<uint8_t>((*in)[0]);
  uint8_t first = static_cast<uint8_t>((*in)[1]);
  if ((tag & 0x1f) == 0x1f) {
    return absl::InvalidArgumentError("DER: multi-byte tags are not expected");
  }
  size_t header = 2;
  size_t length = 0;
  if (first < 0x80) {
    length = first;
  } else {
    size_t n = first & 0x7f;
    if (n == 0) return absl::InvalidArgumentError("DER: indefinite length");
    if (n > 4) return absl::InvalidArgumentError("DER: length too large");
    if (in->size() < 2 + n) return absl::InvalidArgumentError("DER: truncated");
    for (size_t i = 0; i < n; ++i) {
      length = (length << 8) | static_cast<uint8_t>((*in)[2 + i]);
    }
    if (length < 0x80 || (n > 1 && (length >> (8 * (n - 1))) == 0)) {
      return absl::InvalidArgumentError("DER: length not minimally encoded");
    }
    header += n;
  }
  if (length > in->size() - header) {
    return absl::InvalidArgumentError("DER: element runs past its container");
  }
  Tlv tlv{tag, start.substr(0, header + length), in->substr(header, length)};
  in->remove_prefix(header + length);
  return tlv;
}

absl::StatusOr<Tlv> Expect(absl::string_view* in, uint8_t tag,
                           absl::string_view what) {
  absl::StatusOr<Tlv> tlv = ReadTlv(in);
  if (!tlv.ok()) return tlv.status();
  if (tlv->tag != tag) {
    return absl::InvalidArgumentError(
        absl::StrCat("X.509: expected ", what, " (a DER element of tag 0x",
                     absl::Hex(tag), ")"));
  }
  return tlv;
}

}  // namespace

absl::StatusOr<std::string> Ed25519SpkiDer(absl::string_view public_key) {
  if (public_key.size() != 32) {
    return absl::InvalidArgumentError("Ed25519 public key must be 32 bytes");
  }
  static constexpr char kPrefix[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                     0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
  return absl::StrCat(absl::string_view(kPrefix, sizeof(kPrefix)), public_key);
}

absl::StatusOr<absl::string_view> SpkiFromCertificateDer(
    absl::string_view cert_der) {
  absl::string_view in = cert_der;
  absl::StatusOr<Tlv> cert = Expect(&in, kTagSequence, "Certificate SEQUENCE");
  if (!cert.ok()) return cert.status();
  if (!in.empty()) {
    return absl::InvalidArgumentError("X.509: trailing bytes after certificate");
  }
  absl::string_view body = cert->contents;
  absl::StatusOr<Tlv> tbs = Expect(&body, kTagSequence, "TBSCertificate");
  if (!tbs.ok()) return tbs.status();
  absl::string_view fields = tbs->contents;
  if (!fields.empty() && static_cast<uint8_t>(fields[0]) == kTagVersion) {
    absl::StatusOr<Tlv> version = ReadTlv(&fields);
    if (!version.ok()) return version.status();
  }
  absl::StatusOr<Tlv> serial = Expect(&fields, kTagInteger, "serialNumber");
  if (!serial.ok()) return serial.status();
  for (absl::string_view name : {"signature algorithm", "issuer", "validity",
                                 "subject"}) {
    absl::StatusOr<Tlv> skip = Expect(&fields, kTagSequence, name);
    if (!skip.ok()) return skip.status();
  }
  absl::StatusOr<Tlv> spki =
      Expect(&fields, kTagSequence, "subjectPublicKeyInfo");
  if (!spki.ok()) return spki.status();
  return spki->whole;
}

absl::StatusOr<std::vector<std::string>> CertificatesFromPem(
    absl::string_view pem) {
  static constexpr absl::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  static constexpr absl::string_view kEnd = "-----END CERTIFICATE-----";
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = pem.find(kBegin, pos)) != absl::string_view::npos) {
    size_t start = pos + kBegin.size();
    size_t end = pem.find(kEnd, start);
    if (end == absl::string_view::npos) {
      return absl::InvalidArgumentError("PEM: BEGIN CERTIFICATE without END");
    }
    std::string b64;
    for (char c : pem.substr(start, end - start)) {
      if (!absl::ascii_isspace(static_cast<unsigned char>(c))) b64.push_back(c);
    }
    std::string der;
    if (!absl::Base64Unescape(b64, &der) || der.empty()) {
      return absl::InvalidArgumentError("PEM: certificate is not valid base64");
    }
    out.push_back(std::move(der));
    pos = end + kEnd.size();
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        "PEM: no '-----BEGIN CERTIFICATE-----' block found");
  }
  return out;
}

absl::StatusOr<std::string> TlsPinFromPem(absl::string_view pem) {
  absl::StatusOr<std::vector<std::string>> certs = CertificatesFromPem(pem);
  if (!certs.ok()) return certs.status();
  absl::StatusOr<absl::string_view> spki = SpkiFromCertificateDer(certs->front());
  if (!spki.ok()) return spki.status();
  return Sha256(*spki);
}

std::string PostfixFingerprint(absl::string_view pin) {
  std::vector<std::string> parts;
  for (char c : pin) {
    parts.push_back(absl::AsciiStrToUpper(
        absl::BytesToHexString(absl::string_view(&c, 1))));
  }
  return absl::StrJoin(parts, ":");
}

}  // namespace mxkey
