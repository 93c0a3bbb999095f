// Runs the C example (mta-hooks/examples/mxkey_echo.c) against itself:
// lookup, handshake and an encrypted echo between two enrolled hosts, with
// a real keyd; and a revoked initiator that the responder turns away.
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/inprocess_keyd.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;

class CExampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keyd_ = InProcessKeyd::Start(Clock::Real());
    ASSERT_NE(keyd_, nullptr);
    dir_ = ShortTempDir();
    InProcessKeyd::SaveKeyDir(keyd_->AddAndEnroll("mx1.example.org"),
                              dir_ + "/mx1");
    InProcessKeyd::SaveKeyDir(keyd_->AddAndEnroll("mx2.example.org"),
                              dir_ + "/mx2");
  }
  void TearDown() override { RunCommand({"/bin/rm", "-rf", dir_}); }

  // Starts the responder (mx2), with its replay guard in `replay_dir` if
  // one is given; returns its port.
  int StartServer(const std::string& replay_dir = "") {
    auto server = Subprocess::Start(
        {"/usr/bin/env", "MXKEY_REPLAY_DIR=" + replay_dir,
         RunfilePath("mta-hooks/examples/mxkey-echo"), "serve",
         keyd_->endpoint(), keyd_->root_fingerprint(), dir_ + "/mx2"},
        dir_ + "/server.log");
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto port = WaitForListeningPort(dir_ + "/server.log", absl::Seconds(20));
    EXPECT_TRUE(port.ok()) << port.status();
    return port.value_or(0);
  }

  CommandResult Connect(int port, const std::string& message) {
    return RunCommand({RunfilePath("mta-hooks/examples/mxkey-echo"), "connect",
                       keyd_->endpoint(), keyd_->root_fingerprint(),
                       dir_ + "/mx1", "mx2.example.org", absl::StrCat(port),
                       message},
                      absl::Seconds(30));
  }

  std::unique_ptr<InProcessKeyd> keyd_;
  std::string dir_;
  std::unique_ptr<Subprocess> server_;
};

TEST_F(CExampleTest, LookupHandshakeAndEncryptedEcho) {
  int port = StartServer();
  CommandResult r = Connect(port, "EHLO mx1.example.org");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("echo: EHLO mx1.example.org"));
  EXPECT_THAT(r.out, HasSubstr("mx2.example.org: certified key serial"));
  EXPECT_EQ(server_->Wait(absl::Seconds(20)), 0);
  auto log = RunCommand({"/bin/cat", dir_ + "/server.log"});
  EXPECT_THAT(log.out, HasSubstr("peer mx1.example.org authenticated"));
}

TEST_F(CExampleTest, AResponderCanKeepItsReplayGuardInASharedDirectory) {
  const std::string replay = dir_ + "/replay";
  int port = StartServer(replay);
  CommandResult r = Connect(port, "hello");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(server_->Wait(absl::Seconds(20)), 0);
  struct stat st {};
  ASSERT_EQ(stat(replay.c_str(), &st), 0) << "no replay directory";
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(CExampleTest, RevokedInitiatorIsTurnedAway) {
  keyd_->Revoke("mx1.example.org", "test");
  int port = StartServer();
  CommandResult r = Connect(port, "hello");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("handshake"));
  EXPECT_EQ(server_->Wait(absl::Seconds(20)), 1);
  auto log = RunCommand({"/bin/cat", dir_ + "/server.log"});
  EXPECT_THAT(log.out, HasSubstr("revoked"));
}

TEST_F(CExampleTest, UnknownResponderFailsAtLookup) {
  CommandResult r = RunCommand(
      {RunfilePath("mta-hooks/examples/mxkey-echo"), "connect",
       keyd_->endpoint(), keyd_->root_fingerprint(), dir_ + "/mx1",
       "mx9.example.org", "1", "hello"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("lookup: unknown host"));
  CommandResult usage =
      RunCommand({RunfilePath("mta-hooks/examples/mxkey-echo")});
  EXPECT_EQ(usage.exit_code, 2);
}

}  // namespace
}  // namespace mxkey
