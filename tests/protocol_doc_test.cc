// docs/PROTOCOL.md cannot drift from the code: its Appendix A vectors are
// regenerated and compared byte for byte, the answers in it are verified
// (and the invalid ones rejected for the stated reason) by our verifier,
// and every RPC, message, enum and signature context of proto/ is named.
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/answer_verifier.h"
#include "client/federation_trust.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mxkey/v1/mxkey.pb.h"
#include "proto/mxkey/v1/session.pb.h"
#include "protocol/signed_object.h"
#include "tests/protocol_vectors.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;
using ::testing::HasSubstr;

std::string ReadDoc() {
  std::ifstream in("docs/PROTOCOL.md");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The ```vectors blocks of the document: name -> value, in order.
struct DocVectors {
  std::vector<ProtocolVector> list;
  std::map<std::string, std::string> by_name;
  std::string error;
};

DocVectors ParseVectors(const std::string& doc) {
  DocVectors out;
  bool in_block = false;
  for (absl::string_view line : absl::StrSplit(doc, '\n')) {
    if (!in_block) {
      in_block = line == "```vectors";
      continue;
    }
    if (line == "```") {
      in_block = false;
      continue;
    }
    if (absl::ConsumePrefix(&line, "  ")) {
      if (out.list.empty() || out.list.back().is_text ||
          line.size() % 2 != 0 ||
          line.find_first_not_of("0123456789abcdef") != line.npos) {
        out.error = absl::StrCat("bad hex line: ", line);
        return out;
      }
      out.list.back().value += absl::HexStringToBytes(line);
      continue;
    }
    std::pair<std::string, std::string> kv = absl::StrSplit(line, ": ");
    if (absl::EndsWith(line, ":")) {
      out.list.push_back({std::string(line.substr(0, line.size() - 1)), "", false});
    } else if (kv.second.size() >= 2 && kv.second.front() == '"' &&
               kv.second.back() == '"') {
      out.list.push_back(
          {kv.first, kv.second.substr(1, kv.second.size() - 2), true});
    } else {
      out.error = absl::StrCat("line is neither \"name:\", \"name: \\\"text\\\"\" "
                               "nor hex: ", line);
      return out;
    }
  }
  for (const auto& v : out.list) out.by_name[v.name] = v.value;
  return out;
}

class ProtocolDocTest : public ::testing::Test {
 protected:
  void SetUp() override {
    doc_ = ReadDoc();
    ASSERT_FALSE(doc_.empty()) << "docs/PROTOCOL.md not found in runfiles";
    vectors_ = ParseVectors(doc_);
    ASSERT_EQ(vectors_.error, "");
    ASSERT_FALSE(vectors_.list.empty()) << "no ```vectors block";
  }

  const std::string& Vector(const std::string& name) {
    static const std::string kEmpty;
    auto it = vectors_.by_name.find(name);
    EXPECT_NE(it, vectors_.by_name.end()) << "no vector " << name;
    return it == vectors_.by_name.end() ? kEmpty : it->second;
  }

  // The vector federation bundle (version 1, peer "peer" for
  // peer.example), as a client that fetched it holds it.
  absl::StatusOr<FederationTrust> VectorBundle() {
    v1::SignedObject bundle;
    bundle.set_body(Vector("bundle.body"));
    bundle.set_signature(Vector("bundle.signature"));
    bundle.set_signer_key_id(Vector("root.key_id"));
    return FederationTrust::Verify(bundle, Vector("root.public_key"),
                                   absl::FromUnixSeconds(kVectorTime), 0);
  }

  AnswerVerifier Verifier() {
    auto verifier = AnswerVerifier::Create(Vector("root.fingerprint"),
                                           Vector("root.public_key"));
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    return *std::move(verifier);
  }

  std::string doc_;
  DocVectors vectors_;
};

TEST_F(ProtocolDocTest, VectorsAreExactlyWhatTheCodeProduces) {
  auto code = ProtocolVectors();
  ASSERT_TRUE(code.ok()) << code.status();
  ASSERT_EQ(vectors_.list.size(), code->size())
      << "the document and the code list different vectors; regenerate with "
         "bazel run //tests:print_protocol_vectors";
  for (size_t i = 0; i < code->size(); ++i) {
    const ProtocolVector& want = (*code)[i];
    const ProtocolVector& got = vectors_.list[i];
    EXPECT_EQ(got.name, want.name) << "vector " << i;
    EXPECT_EQ(got.is_text, want.is_text) << want.name;
    EXPECT_EQ(absl::BytesToHexString(got.value),
              absl::BytesToHexString(want.value))
        << want.name;
  }
}

TEST_F(ProtocolDocTest, DocumentAnswersVerifyOrFailAsStated) {
  AnswerVerifier verifier = Verifier();
  for (const AnswerCheck& check : ProtocolAnswerChecks()) {
    SCOPED_TRACE(check.vector + " asked as " + check.ask_name);
    v1::KeyAnswer answer;
    ASSERT_TRUE(answer.ParseFromString(Vector(check.vector)));
    absl::StatusOr<VerifiedAnswer> verified =
        verifier.Verify(answer, check.ask_name, check.kind, check.at);
    if (verified.ok() && check.own_bundle) {
      absl::StatusOr<FederationTrust> trust = VectorBundle();
      ASSERT_TRUE(trust.ok()) << trust.status();
      absl::Status own = CheckOwnAnswer(*verified, &*trust, check.at);
      if (!own.ok()) verified = own;
    }
    if (check.error.empty()) {
      EXPECT_TRUE(verified.ok()) << verified.status();
    } else {
      ASSERT_FALSE(verified.ok());
      EXPECT_THAT(std::string(verified.status().message()),
                  HasSubstr(check.error));
    }
  }
}

TEST_F(ProtocolDocTest, VerifiedAnswersSayWhatTheDocumentSays) {
  AnswerVerifier verifier = Verifier();
  const absl::Time t = absl::FromUnixSeconds(kVectorTime);
  v1::KeyAnswer answer;
  ASSERT_TRUE(answer.ParseFromString(Vector("host_answer")));
  auto host = verifier.Verify(answer, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST, t + absl::Seconds(60));
  ASSERT_TRUE(host.ok()) << host.status();
  ASSERT_TRUE(host->HasValidKey());
  EXPECT_EQ(host->certificates[0].body.tls_spki_sha256(0), Vector("host.tls_pin"));
  EXPECT_EQ(host->certificates[0].body.agreement_key(),
            Vector("host.agreement_key"));
  EXPECT_EQ(host->freshness.feed_head(), 0u);

  ASSERT_TRUE(answer.ParseFromString(Vector("revoked_answer")));
  auto revoked =
      verifier.Verify(answer, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST, t + absl::Seconds(120));
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_FALSE(revoked->HasValidKey());
  EXPECT_EQ(revoked->freshness.feed_head(), 1u);

  ASSERT_TRUE(answer.ParseFromString(Vector("domain_answer")));
  auto domain = verifier.Verify(answer, "example.org", mxkey::v1::LOOKUP_KIND_DOMAIN, t + absl::Seconds(60));
  ASSERT_TRUE(domain.ok()) << domain.status();
  EXPECT_EQ(domain->policy->mode(), v1::POLICY_MODE_ENFORCE);

  ASSERT_TRUE(answer.ParseFromString(Vector("denial_answer")));
  auto denial =
      verifier.Verify(answer, "mx9.example.org", mxkey::v1::LOOKUP_KIND_HOST, t + absl::Seconds(60));
  ASSERT_TRUE(denial.ok()) << denial.status();
  EXPECT_EQ(denial->denial->reason(), v1::DENIAL_REASON_NO_SUCH_HOST);
}

TEST_F(ProtocolDocTest, BundleVerifiesOnlyUnderTheRoot) {
  const absl::Time t = absl::FromUnixSeconds(kVectorTime) + absl::Hours(1);
  v1::SignedObject bundle;
  bundle.set_body(Vector("bundle.body"));
  bundle.set_signature(Vector("bundle.signature"));
  bundle.set_signer_key_id(Vector("root.key_id"));
  auto trust = FederationTrust::Verify(bundle, Vector("root.public_key"), t, 0);
  ASSERT_TRUE(trust.ok()) << trust.status();
  ASSERT_EQ(trust->peers().size(), 1u);
  ASSERT_NE(trust->PeerFor("mx1.peer.example"), nullptr);
  EXPECT_EQ(trust->PeerFor("mx1.notpeer.example"), nullptr);
  EXPECT_EQ(trust->PeerFor("xpeer.example"), nullptr) << "label boundary";

  v1::SignedObject by_issuing = bundle;
  by_issuing.set_signature(
      Vector("invalid.bundle_signed_by_issuing_key.signature"));
  by_issuing.set_signer_key_id(Vector("issuing.key_id"));
  auto rejected =
      FederationTrust::Verify(by_issuing, Vector("root.public_key"), t, 0);
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kUnauthenticated);
  auto rollback = FederationTrust::Verify(bundle, Vector("root.public_key"), t, 2);
  EXPECT_THAT(std::string(rollback.status().message()), HasSubstr("rollback"));
}

// True if `name` occurs in `doc` as a whole word.
bool NamesWord(const std::string& doc, const std::string& name) {
  auto word = [](char c) { return absl::ascii_isalnum(c) || c == '_'; };
  for (size_t at = doc.find(name); at != std::string::npos;
       at = doc.find(name, at + 1)) {
    const bool starts = at == 0 || !word(doc[at - 1]);
    const size_t end = at + name.size();
    if (starts && (end == doc.size() || !word(doc[end]))) return true;
  }
  return false;
}

TEST_F(ProtocolDocTest, EveryRpcMessageEnumAndContextIsNamed) {
  std::vector<std::string> missing;
  for (const auto* file :
       {v1::KeyAnswer::descriptor()->file(), v1::SignedObject::descriptor()->file(),
        v1::SessionHello::descriptor()->file()}) {
    for (int i = 0; i < file->message_type_count(); ++i) {
      const std::string& name = file->message_type(i)->name();
      if (!NamesWord(doc_, name)) missing.push_back(name);
    }
    for (int i = 0; i < file->enum_type_count(); ++i) {
      const auto* e = file->enum_type(i);
      if (!NamesWord(doc_, e->name())) missing.push_back(e->name());
      for (int j = 0; j < e->value_count(); ++j) {
        if (!NamesWord(doc_, e->value(j)->name())) {
          missing.push_back(e->value(j)->name());
        }
      }
    }
    for (int i = 0; i < file->service_count(); ++i) {
      const auto* service = file->service(i);
      if (!NamesWord(doc_, service->name())) missing.push_back(service->name());
      for (int j = 0; j < service->method_count(); ++j) {
        if (!NamesWord(doc_, service->method(j)->name())) {
          missing.push_back(service->method(j)->name());
        }
      }
    }
  }
  for (int type = 0; type <= static_cast<int>(ObjectType::kRotateProofOfPossession);
       ++type) {
    absl::string_view context = SignatureContext(static_cast<ObjectType>(type));
    context.remove_suffix(1);  // the NUL, written \0 in the document
    const std::string written = absl::StrCat("\"", context, "\\0\"");
    if (!absl::StrContains(doc_, written)) missing.push_back(written);
  }
  EXPECT_THAT(missing, ::testing::IsEmpty())
      << "named in proto/ or protocol/ but not in docs/PROTOCOL.md";
}

}  // namespace
}  // namespace mxkey
