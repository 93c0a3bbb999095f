// Reproduces every published Noise vector in third_party/noise_vectors byte for
// byte, playing both roles at once: each message is written by one side,
// compared with the vector, and read back by the other.
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "base/files.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "mta-hooks/session/noise_handshake.h"
#include "mta-hooks/session/noise_handshake_test_access.h"
#include "mta-hooks/session/noise_vectors.pb.h"

namespace mxkey {
namespace {

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }
std::string Bin(const std::string& hex) { return absl::HexStringToBytes(hex); }

testing::NoiseVectorFile LoadVectors() {
  const char* srcdir = getenv("TEST_SRCDIR");
  std::string path = std::string(srcdir ? srcdir : ".") +
                     "/mxkey/third_party/noise_vectors/cacophony-25519-chachapoly-sha256.json";
  absl::StatusOr<std::string> json = ReadFile(path);
  EXPECT_TRUE(json.ok()) << json.status();
  testing::NoiseVectorFile file;
  if (!json.ok()) return file;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto st = google::protobuf::util::JsonStringToMessage(*json, &file, options);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return file;
}

std::optional<X25519PrivateKey> Key(const std::string& hex) {
  if (hex.empty()) return std::nullopt;
  absl::StatusOr<X25519PrivateKey> k = X25519PrivateKey::FromBytes(SecretBytes(Bin(hex)));
  EXPECT_TRUE(k.ok()) << k.status();
  return std::move(*k);
}

absl::StatusOr<NoiseHandshake> Side(const testing::NoiseVector& v,
                                    bool initiator) {
  std::string name = v.protocol_name();
  // "Noise_IK_25519_ChaChaPoly_SHA256" -> "IK"
  std::string pattern = name.substr(6, name.find('_', 6) - 6);
  NoiseHandshakeConfig config;
  config.pattern = FindNoisePattern(pattern);
  config.initiator = initiator;
  config.prologue = Bin(initiator ? v.init_prologue() : v.resp_prologue());
  config.static_key = Key(initiator ? v.init_static() : v.resp_static());
  config.remote_static_key =
      Bin(initiator ? v.init_remote_static() : v.resp_remote_static());
  absl::StatusOr<NoiseHandshake> hs = NoiseHandshake::Create(std::move(config));
  if (hs.ok()) {
    NoiseHandshakeTestAccess::FixNextEphemeral(
        *hs, *Key(initiator ? v.init_ephemeral() : v.resp_ephemeral()));
  }
  return hs;
}

TEST(NoiseVectorsTest, EveryVectorBothRoles) {
  testing::NoiseVectorFile file = LoadVectors();
  ASSERT_EQ(file.vectors_size(), 5);
  for (const testing::NoiseVector& v : file.vectors()) {
    SCOPED_TRACE(v.protocol_name());
    ASSERT_EQ(NoiseProtocolName(*FindNoisePattern(v.protocol_name().substr(6, 2))),
              v.protocol_name());
    absl::StatusOr<NoiseHandshake> init = Side(v, true);
    absl::StatusOr<NoiseHandshake> resp = Side(v, false);
    ASSERT_TRUE(init.ok()) << init.status();
    ASSERT_TRUE(resp.ok()) << resp.status();
    std::optional<NoiseTransport> ti, tr;
    for (int i = 0; i < v.messages_size(); ++i) {
      SCOPED_TRACE(i);
      const auto& m = v.messages(i);
      const bool from_initiator = i % 2 == 0;
      std::string wire;
      SecretBytes plain;
      if (!ti) {
        NoiseHandshake& writer = from_initiator ? *init : *resp;
        NoiseHandshake& reader = from_initiator ? *resp : *init;
        ASSERT_TRUE(writer.IsMyTurn());
        absl::StatusOr<std::string> w = writer.WriteMessage(Bin(m.payload()));
        ASSERT_TRUE(w.ok()) << w.status();
        wire = *w;
        absl::StatusOr<SecretBytes> r = reader.ReadMessage(wire);
        ASSERT_TRUE(r.ok()) << r.status();
        plain = *r;
        if (init->IsComplete()) {
          ASSERT_TRUE(resp->IsComplete());
          EXPECT_EQ(Hex(init->handshake_hash()), v.handshake_hash());
          EXPECT_EQ(Hex(resp->handshake_hash()), v.handshake_hash());
          absl::StatusOr<NoiseTransport> a = init->Split();
          absl::StatusOr<NoiseTransport> b = resp->Split();
          ASSERT_TRUE(a.ok() && b.ok());
          ti = std::move(*a);
          tr = std::move(*b);
        }
      } else {
        CipherState& send = from_initiator ? ti->send : tr->send;
        CipherState& receive = from_initiator ? tr->receive : ti->receive;
        absl::StatusOr<std::string> w = send.EncryptWithAd("", Bin(m.payload()));
        ASSERT_TRUE(w.ok()) << w.status();
        wire = *w;
        absl::StatusOr<SecretBytes> r = receive.DecryptWithAd("", wire);
        ASSERT_TRUE(r.ok()) << r.status();
        plain = *r;
      }
      EXPECT_EQ(Hex(wire), m.ciphertext());
      EXPECT_EQ(Hex(std::string(plain.view())), m.payload());
    }
    ASSERT_TRUE(ti.has_value()) << "handshake never completed";
  }
}

}  // namespace
}  // namespace mxkey
