// keyd on a full disk: a small tmpfs (in a private mount namespace, so the
// machine is not touched) fills up under enrollments. The enrollment that
// does not fit fails cleanly with RESOURCE_EXHAUSTED, every acknowledged
// enrollment stays readable and verifiable, and lookups keep being served.
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "client/answer_verifier.h"
#include "client/host_keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "tests/inprocess_keyd.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;
using ::testing::HasSubstr;

std::string* mount_error = new std::string;
std::string* tmpfs_dir = new std::string;

// From main(), single-threaded: a private mount namespace with a 1 MiB tmpfs.
void MountSmallTmpfs() {
  *tmpfs_dir = ShortTempDir();
  if (unshare(CLONE_NEWNS) != 0) {
    *mount_error = absl::StrCat("unshare(mount): ", strerror(errno),
                                " (needs root)");
    return;
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mount("tmpfs", tmpfs_dir->c_str(), "tmpfs", 0, "size=1m,mode=0700") != 0) {
    *mount_error = absl::StrCat("mount tmpfs: ", strerror(errno));
  }
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return ctx;
}

TEST(DiskFullTest, EnrollmentThatDoesNotFitFailsCleanlyAndLookupsGoOn) {
  if (!mount_error->empty()) GTEST_SKIP() << *mount_error;
  FakeClock clock(absl::Now());
  ASSERT_EQ(mkdir((*tmpfs_dir + "/keyd").c_str(), 0700), 0);
  auto keyd = InProcessKeyd::Start(&clock, "example", KeydOptions(),
                                   *tmpfs_dir + "/keyd");
  ASSERT_NE(keyd, nullptr);
  auto channel =
      grpc::CreateChannel(keyd->endpoint(), grpc::InsecureChannelCredentials());
  auto directory = v1::KeyDirectory::NewStub(channel);
  auto enrollment = v1::Enrollment::NewStub(channel);
  auto admin = v1::Admin::NewStub(grpc::CreateChannel(
      keyd->admin_endpoint(), grpc::InsecureChannelCredentials()));

  std::vector<std::pair<std::string, uint64_t>> acknowledged;
  grpc::Status failure;
  for (int i = 0; i < 20000 && failure.ok(); ++i) {
    const std::string host = absl::StrCat("mx", i, ".example.org");
    v1::AddHostRequest add;
    add.set_hostname(host);
    add.add_mail_domains("example.org");
    v1::TokenResponse token;
    failure = admin->AddHost(Ctx().get(), add, &token);
    if (!failure.ok()) break;
    auto req = MakeEnrollRequest(host, *TokenKey(token.token()),
                                 *HostKeys::Generate(), {}, clock.Now());
    ASSERT_TRUE(req.ok());
    v1::EnrollResponse resp;
    failure = enrollment->Enroll(Ctx().get(), *req, &resp);
    if (failure.ok()) {
      v1::HostCertificateBody body;
      ASSERT_TRUE(body.ParseFromString(resp.certificate().body()));
      acknowledged.emplace_back(host, body.serial());
    }
  }
  ASSERT_FALSE(failure.ok()) << "the 1 MiB disk never filled up";
  EXPECT_EQ(failure.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << failure.error_message();
  EXPECT_THAT(failure.error_message(), HasSubstr("storage is full"));
  ASSERT_GT(acknowledged.size(), 10u);
  std::printf("disk full after %zu acknowledged enrollments: %s\n",
              acknowledged.size(), failure.error_message().c_str());

  // Every acknowledged enrollment is still there and verifies.
  auto verifier = AnswerVerifier::Create(keyd->root_fingerprint(),
                                         keyd->root_public_key());
  ASSERT_TRUE(verifier.ok());
  for (const auto& [host, serial] : acknowledged) {
    v1::GetHostKeysRequest get;
    get.set_hostname(host);
    v1::KeyAnswer answer;
    grpc::Status st = directory->GetHostKeys(Ctx().get(), get, &answer);
    ASSERT_TRUE(st.ok()) << host << ": " << st.error_message();
    auto verified = verifier->Verify(answer, host, mxkey::v1::LOOKUP_KIND_HOST, clock.Now());
    ASSERT_TRUE(verified.ok()) << host << ": " << verified.status();
    ASSERT_TRUE(verified->HasValidKey()) << host;
    EXPECT_EQ(verified->certificates[0].body.serial(), serial);
  }
  // Unknown names still get signed denials (signing needs no disk).
  v1::GetHostKeysRequest get;
  get.set_hostname("never.example.org");
  v1::KeyAnswer answer;
  ASSERT_TRUE(directory->GetHostKeys(Ctx().get(), get, &answer).ok());
  EXPECT_TRUE(answer.has_denial());
}

}  // namespace
}  // namespace mxkey

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  mxkey::MountSmallTmpfs();
  const int rc = RUN_ALL_TESTS();
  if (mxkey::mount_error->empty()) umount2(mxkey::tmpfs_dir->c_str(), MNT_DETACH);
  rmdir(mxkey::tmpfs_dir->c_str());
  return rc;
}
