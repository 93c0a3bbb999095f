#include "keyd/tls_files.h"

#include <sys/stat.h>

#include "base/files.h"
#include "client/keyd_channel.h"
#include "gtest/gtest.h"
#include "keyd/keyd_test_env.h"

namespace mxkey {
namespace {

TEST(KeydTlsFilesTest, MadeOnceThenRenewedBeforeHalfItsValidity) {
  KeydTestEnv env;
  KeydTlsFiles files(env.dir, env.keys.get(), &env.clock);
  ASSERT_TRUE(files.Refresh().ok());
  struct stat st;
  ASSERT_EQ(stat(files.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the file holds the private key";
  const std::string first = *ReadFile(files.path());
  EXPECT_TRUE(CheckKeydCertificate(first, env.keys->root_fingerprint(),
                                   env.clock.Now()).ok());
  ASSERT_TRUE(files.Refresh().ok());
  EXPECT_EQ(*ReadFile(files.path()), first) << "renewed while still fresh";
  // A renewal every half validity: the file a client sees is always valid.
  for (int i = 0; i < 24; ++i) {  // a year, one renewal check a fortnight
    env.clock.Advance(absl::Hours(24 * 15) + absl::Minutes(1));
    ASSERT_TRUE(files.Refresh().ok());
    const std::string now = *ReadFile(files.path());
    EXPECT_TRUE(CheckKeydCertificate(now, env.keys->root_fingerprint(),
                                     env.clock.Now()).ok())
        << "day " << (i + 1) * 15;
  }
  EXPECT_NE(*ReadFile(files.path()), first);
}

TEST(KeydTlsFilesTest, AFileOfAnotherRootIsReplaced) {
  KeydTestEnv a, b;
  KeydTlsFiles of_b(a.dir, b.keys.get(), &a.clock);
  ASSERT_TRUE(of_b.Refresh().ok());
  KeydTlsFiles of_a(a.dir, a.keys.get(), &a.clock);
  ASSERT_TRUE(of_a.Refresh().ok());
  EXPECT_TRUE(CheckKeydCertificate(*ReadFile(of_a.path()),
                                   a.keys->root_fingerprint(), a.clock.Now())
                  .ok());
}

}  // namespace
}  // namespace mxkey
