// Fuzzes what a responder reads from the network: framing, the first
// Noise_IK handshake message, and transport messages. Input layout: the
// bytes of a stream of frames (2-byte big-endian length + message).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mta-hooks/session/frame_io.h"
#include "mta-hooks/session/noise_handshake.h"

namespace {

class StringStream : public mxkey::ByteStream {
 public:
  explicit StringStream(absl::string_view data) : data_(data) {}
  absl::StatusOr<size_t> ReadSome(char* buf, size_t n) override {
    n = std::min(n, data_.size());
    std::copy(data_.begin(), data_.begin() + n, buf);
    data_.remove_prefix(n);
    return n;
  }
  absl::Status WriteAll(absl::string_view) override {
    return absl::OkStatus();
  }

 private:
  absl::string_view data_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* responder_key = new mxkey::X25519PrivateKey(
      *mxkey::X25519PrivateKey::FromBytes(mxkey::SecretBytes(std::string(32, 's'))));
  StringStream stream(absl::string_view(reinterpret_cast<const char*>(data), size));
  mxkey::NoiseHandshakeConfig config;
  config.pattern = mxkey::FindNoisePattern("IK");
  config.prologue = "mxkey/1mx.example.org";
  config.static_key = *responder_key;
  absl::StatusOr<mxkey::NoiseHandshake> hs =
      mxkey::NoiseHandshake::Create(std::move(config));
  if (!hs.ok()) abort();
  // Every frame goes to the handshake; after the first failure the
  // handshake must keep refusing.
  bool failed = false;
  for (int i = 0; i < 8; ++i) {
    absl::StatusOr<std::string> frame = mxkey::ReadFrame(stream);
    if (!frame.ok()) break;
    if (frame->size() > mxkey::kMaxFrameSize) abort();
    absl::StatusOr<mxkey::SecretBytes> payload = hs->ReadMessage(*frame);
    if (failed && payload.ok()) abort();
    failed |= !payload.ok();
    mxkey::CipherState transport;
    transport.InitializeKey(mxkey::SecretBytes(std::string(32, 'k')));
    // Without the key nothing authenticates.
    if (frame->size() >= 16 && transport.DecryptWithAd("", *frame).ok()) abort();
  }
  return 0;
}
