// End to end: real keyd processes driven by real keyctl commands.
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/keyd_process.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The token value of keyctl --json output {"hostname":..,"token":"HEX",..}.
std::string TokenFromJson(const std::string& json) {
  size_t pos = json.find("\"token\":\"");
  if (pos == std::string::npos) return "";
  return json.substr(pos + 9, 64);
}

class CliE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto keyd = KeydProcess::Init();
    ASSERT_TRUE(keyd.ok()) << keyd.status();
    keyd_ = *std::move(keyd);
    ASSERT_TRUE(keyd_->Start({"--freshness", "60s"}).ok()) << keyd_->log();
    key_dir_ = keyd_->dir() + "/../host-keys";
  }

  std::string AddHost(const std::string& host) {
    CommandResult add = keyd_->RunKeyctl(
        {"--json", "host", "add", host, "--domain", "example.org"});
    EXPECT_EQ(add.exit_code, 0) << add.err;
    return TokenFromJson(add.out);
  }

  std::unique_ptr<KeydProcess> keyd_;
  std::string key_dir_;
};

TEST_F(CliE2eTest, AddEnrollLookupRotateRevokeLookup) {
  std::string token = AddHost("mx1.example.org");
  ASSERT_EQ(token.size(), 64u);

  CommandResult enroll = keyd_->RunKeyctl(
      {"enroll", "mx1.example.org", "--token-file", TokenFile(keyd_->dir() + "/..", token), "--key-dir", key_dir_});
  ASSERT_EQ(enroll.exit_code, 0) << enroll.err;
  struct stat st;
  ASSERT_EQ(stat((key_dir_ + "/identity.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  CommandResult lookup =
      keyd_->RunKeyctl({"--json", "lookup", "mx1.example.org"});
  EXPECT_EQ(lookup.exit_code, 0) << lookup.err;
  EXPECT_THAT(lookup.out, HasSubstr("\"status\":\"valid\""));
  EXPECT_THAT(lookup.out, HasSubstr("\"state\":\"active\""));

  CommandResult rotate =
      keyd_->RunKeyctl({"rotate", "mx1.example.org", "--key-dir", key_dir_});
  ASSERT_EQ(rotate.exit_code, 0) << rotate.err;
  EXPECT_EQ(stat((key_dir_ + "/next/identity.key").c_str(), &st), 0);
  EXPECT_NE(stat((key_dir_ + "/staging").c_str(), &st), 0);
  lookup = keyd_->RunKeyctl({"--json", "lookup", "mx1.example.org"});
  EXPECT_THAT(lookup.out, HasSubstr("\"state\":\"next\""));

  CommandResult revoke = keyd_->RunKeyctl(
      {"revoke", "mx1.example.org", "--reason", "key compromise"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;

  lookup = keyd_->RunKeyctl({"--json", "lookup", "mx1.example.org"});
  EXPECT_EQ(lookup.exit_code, 3) << lookup.out << lookup.err;
  EXPECT_THAT(lookup.out, HasSubstr("\"status\":\"revoked\""));

  // The enrollment and the rotation's next key, then the revocations.
  CommandResult watch = keyd_->RunKeyctl({"watch", "--count", "4"});
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  EXPECT_THAT(watch.out, HasSubstr("seq 1 new key mx1.example.org serial 1"));
  EXPECT_THAT(watch.out, HasSubstr("seq 3 revoked mx1.example.org"));

  EXPECT_THAT(keyd_->log(), HasSubstr("enrolled mx1.example.org"));
  EXPECT_THAT(keyd_->log(), HasSubstr("revoked host=mx1.example.org"));
  EXPECT_THAT(keyd_->log(), ::testing::Not(HasSubstr(token)));
}

// keyctl rotate keeps both keys in answers until keyctl rotate --finish,
// which withdraws the old one at once; the host's key directory follows.
TEST_F(CliE2eTest, RotateThenFinishWithdrawsTheOldKey) {
  std::string token = AddHost("mx1.example.org");
  ASSERT_EQ(keyd_->RunKeyctl({"enroll", "mx1.example.org", "--token-file", TokenFile(keyd_->dir() + "/..", token),
                              "--key-dir", key_dir_})
                .exit_code,
            0);
  // Nothing to finish is not an error (a deploy hook may run it anytime).
  CommandResult no_rotation = keyd_->RunKeyctl(
      {"rotate", "--finish", "mx1.example.org", "--key-dir", key_dir_});
  EXPECT_EQ(no_rotation.exit_code, 0) << no_rotation.err;
  EXPECT_THAT(no_rotation.out, HasSubstr("nothing to do"));
  CommandResult bad_overlap = keyd_->RunKeyctl(
      {"rotate", "mx1.example.org", "--key-dir", key_dir_, "--overlap", "1s"});
  EXPECT_EQ(bad_overlap.exit_code, 1);
  EXPECT_THAT(bad_overlap.err, HasSubstr("overlap_seconds"));
  CommandResult both = keyd_->RunKeyctl({"rotate", "--finish", "--overlap",
                                         "1d", "mx1.example.org", "--key-dir",
                                         key_dir_});
  EXPECT_EQ(both.exit_code, 2) << "--finish excludes --overlap";

  CommandResult rotate = keyd_->RunKeyctl(
      {"rotate", "mx1.example.org", "--key-dir", key_dir_, "--overlap", "2d"});
  ASSERT_EQ(rotate.exit_code, 0) << rotate.err;
  EXPECT_THAT(rotate.out, HasSubstr("both keys are in use until"));
  EXPECT_THAT(rotate.out, HasSubstr("rotate --finish"));
  // Begin twice (a hook that runs twice): the second is a no-op, not a
  // third certificate.
  CommandResult rotate_again =
      keyd_->RunKeyctl({"rotate", "mx1.example.org", "--key-dir", key_dir_});
  EXPECT_EQ(rotate_again.exit_code, 0) << rotate_again.err;
  EXPECT_THAT(rotate_again.out, HasSubstr("already begun: next serial 2"));
  // Other pins while one is pending: refused, and nothing changes.
  CommandResult other = keyd_->RunKeyctl(
      {"rotate", "mx1.example.org", "--key-dir", key_dir_, "--tls-cert",
       keyd_->dir() + "/../tls.pem"});
  if (access((keyd_->dir() + "/../tls.pem").c_str(), F_OK) == 0) {
    EXPECT_EQ(other.exit_code, 1);
    EXPECT_THAT(other.err, HasSubstr("with other TLS pins is pending"));
  }
  CommandResult lookup =
      keyd_->RunKeyctl({"--json", "lookup", "mx1.example.org"});
  EXPECT_THAT(lookup.out, HasSubstr("\"state\":\"active\""));
  EXPECT_THAT(lookup.out, HasSubstr("\"state\":\"next\""));
  CommandResult show = keyd_->RunKeyctl({"host", "show", "mx1.example.org"});
  EXPECT_THAT(show.out, HasSubstr("next_serial=2  next_active_from=20"));
  const std::string next_identity =
      ReadFile(key_dir_ + "/next/identity.key").value_or("");
  ASSERT_EQ(next_identity.size(), 32u);

  CommandResult finish = keyd_->RunKeyctl(
      {"rotate", "--finish", "mx1.example.org", "--key-dir", key_dir_});
  ASSERT_EQ(finish.exit_code, 0) << finish.err;
  EXPECT_THAT(finish.out, HasSubstr("finished: serial 2 is active"));
  lookup = keyd_->RunKeyctl({"--json", "lookup", "mx1.example.org"});
  EXPECT_EQ(lookup.exit_code, 0) << lookup.err;
  EXPECT_THAT(lookup.out, HasSubstr("\"serial\":2"));
  EXPECT_THAT(lookup.out, ::testing::Not(HasSubstr("\"serial\":1")));
  EXPECT_THAT(lookup.out, ::testing::Not(HasSubstr("\"state\":\"next\"")));
  // Finish twice: done is done.
  CommandResult finish_again = keyd_->RunKeyctl(
      {"rotate", "--finish", "mx1.example.org", "--key-dir", key_dir_});
  EXPECT_EQ(finish_again.exit_code, 0) << finish_again.err;
  EXPECT_THAT(finish_again.out, HasSubstr("serial 2 is the current key"));
  // The host's key directory now holds the next keys as its current ones.
  EXPECT_EQ(ReadFile(key_dir_ + "/identity.key").value_or(""), next_identity);
  struct stat st;
  EXPECT_NE(stat((key_dir_ + "/next").c_str(), &st), 0);
  // A second rotation starts from the finished one.
  CommandResult again =
      keyd_->RunKeyctl({"rotate", "mx1.example.org", "--key-dir", key_dir_});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  CommandResult watch = keyd_->RunKeyctl({"watch", "--count", "4"});
  EXPECT_THAT(watch.out, HasSubstr("seq 3 new key mx1.example.org serial 2"));
  EXPECT_THAT(keyd_->log(), HasSubstr("rotation of mx1.example.org finished"));
}

TEST_F(CliE2eTest, LookupWithWrongRootFingerprintFails) {
  std::string token = AddHost("mx1.example.org");
  ASSERT_EQ(keyd_->RunKeyctl({"enroll", "mx1.example.org", "--token-file", TokenFile(keyd_->dir() + "/..", token),
                              "--key-dir", key_dir_})
                .exit_code,
            0);
  std::vector<std::string> argv = keyd_->Keyctl({"lookup", "mx1.example.org"});
  argv.insert(argv.end() - 2,
              {"--root-fingerprint",
               "sha256:0000000000000000000000000000000000000000000000000000000000000000"});
  CommandResult lookup = RunCommand(argv);
  EXPECT_EQ(lookup.exit_code, 4) << lookup.out << lookup.err;
  EXPECT_THAT(lookup.err, HasSubstr("fingerprint"));
}

TEST_F(CliE2eTest, UnknownHostAndUsageErrors) {
  CommandResult unknown = keyd_->RunKeyctl({"lookup", "nope.example.org"});
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_THAT(unknown.out, HasSubstr("unknown"));
  CommandResult usage = keyd_->RunKeyctl({"lookup"});
  EXPECT_EQ(usage.exit_code, 2);
  CommandResult bad = keyd_->RunKeyctl({"lookup", "bad_host"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("invalid hostname"));
  CommandResult no_anchor = RunCommand(
      {RunfilePath("tools/keyctl/keyctl"), "--keyd", keyd_->address(),
       "rotate", "mx1.example.org", "--key-dir", key_dir_});
  EXPECT_EQ(no_anchor.exit_code, 2);
  EXPECT_THAT(no_anchor.err, HasSubstr("--root-fingerprint"));
  CommandResult token = keyd_->RunKeyctl(
      {"enroll", "mx1.example.org", "--token-file",
       TokenFile(keyd_->dir() + "/..", "nothex"), "--key-dir", key_dir_});
  EXPECT_EQ(token.exit_code, 1);
  EXPECT_THAT(token.err, HasSubstr("64 hex digits"));
}

TEST_F(CliE2eTest, OrgShowOverAdminSocketAndKeyd) {
  std::vector<std::string> admin_only = {
      RunfilePath("tools/keyctl/keyctl"), "--admin-socket",
      keyd_->admin_socket(), "--json", "org", "show"};
  CommandResult via_admin = RunCommand(admin_only);
  EXPECT_EQ(via_admin.exit_code, 0) << via_admin.err;
  EXPECT_THAT(via_admin.out,
              HasSubstr(absl::StrCat("\"root_fingerprint\":\"",
                                     keyd_->fingerprint(), "\"")));
  EXPECT_THAT(via_admin.out,
              HasSubstr("\"recertification\":{\"in_progress\":false,"));
  admin_only.erase(admin_only.end() - 3);  // without --json
  CommandResult text = RunCommand(admin_only);
  EXPECT_THAT(text.out, HasSubstr("re-certification: last pass 0 host "
                                  "certificates and 0 policies re-signed, 0 "
                                  "still due"));
  EXPECT_THAT(text.out, HasSubstr("issuing key: 0 days old"));
  EXPECT_EQ(text.err, "");
  CommandResult via_keyd = keyd_->RunKeyctl({"org", "show"});
  EXPECT_EQ(via_keyd.exit_code, 0);
  EXPECT_THAT(via_keyd.out, HasSubstr("org: example"));
}

TEST_F(CliE2eTest, SecondKeydOnSameDirectoryIsRefused) {
  CommandResult second = RunCommand(
      {RunfilePath("keyd/keyd"), "serve", "--data-dir", keyd_->dir(),
       "--listen", "127.0.0.1:0"},
      absl::Seconds(20));
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, HasSubstr("another keyd"));
  // The first keyd still owns its socket and answers.
  EXPECT_EQ(keyd_->RunKeyctl({"host", "list"}).exit_code, 0);
}

TEST_F(CliE2eTest, AdminSocketIsGroupOnlyAndRefusesOthers) {
  struct stat st;
  ASSERT_EQ(stat(keyd_->admin_socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  // Root ignores file modes, so try as nobody (setpriv drops to uid 65534).
  std::vector<std::string> argv = {"/usr/bin/setpriv", "--reuid=65534",
                                   "--regid=65534", "--clear-groups"};
  std::vector<std::string> keyctl = keyd_->Keyctl({"host", "list"});
  argv.insert(argv.end(), keyctl.begin(), keyctl.end());
  // nobody must be able to reach the directory and binary to prove the
  // socket itself refuses: open up the path, not the socket.
  std::string root = keyd_->dir().substr(0, keyd_->dir().rfind('/'));
  chmod(root.c_str(), 0755);
  chmod(keyd_->dir().c_str(), 0755);
  CommandResult as_nobody = RunCommand(argv);
  EXPECT_NE(as_nobody.exit_code, 0);
  EXPECT_THAT(as_nobody.err, HasSubstr("host list"));
  // Named as what it is, not as a TCP fallback's "connection refused".
  EXPECT_THAT(as_nobody.err,
              HasSubstr("permission denied on " + keyd_->admin_socket()));
  EXPECT_THAT(as_nobody.err, Not(HasSubstr("127.0.0.1")));
  std::vector<std::string> show = {"/usr/bin/setpriv", "--reuid=65534",
                                   "--regid=65534", "--clear-groups"};
  std::vector<std::string> org_show = keyd_->Keyctl({"org", "show"});
  // Without --keyd, org show picks the socket: it must not fall back.
  org_show.erase(org_show.begin() + 1, org_show.begin() + 3);
  show.insert(show.end(), org_show.begin(), org_show.end());
  CommandResult show_as_nobody = RunCommand(show);
  EXPECT_NE(show_as_nobody.exit_code, 0);
  EXPECT_THAT(show_as_nobody.err,
              HasSubstr("permission denied on " + keyd_->admin_socket()));
  CommandResult as_root = keyd_->RunKeyctl({"host", "list"});
  EXPECT_EQ(as_root.exit_code, 0) << as_root.err;
}

// Every admin change names the uid that made it, read by keyd from the
// socket (SO_PEERCRED), not from anything the client says; refused changes
// are logged too, and reads are not.
TEST_F(CliE2eTest, EveryAdminChangeLogsTheCallersUid) {
  AddHost("mx1.example.org");
  EXPECT_THAT(keyd_->log(),
              HasSubstr(absl::StrCat("admin change: uid=", getuid(),
                                     " action=add-host "
                                     "target=\"mx1.example.org\" result=ok")));
  // A second user: open the path and the socket to uid 65534 (the test's
  // stand-in for a member of the admin group).
  std::string root = keyd_->dir().substr(0, keyd_->dir().rfind('/'));
  chmod(root.c_str(), 0755);
  chmod(keyd_->dir().c_str(), 0755);
  ASSERT_EQ(chmod(keyd_->admin_socket().c_str(), 0666), 0);
  auto as_nobody = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/setpriv", "--reuid=65534",
                                     "--regid=65534", "--clear-groups"};
    std::vector<std::string> keyctl = keyd_->Keyctl(args);
    argv.insert(argv.end(), keyctl.begin(), keyctl.end());
    return RunCommand(argv);
  };
  CommandResult add = as_nobody({"host", "add", "mx2.example.org", "--domain",
                                 "example.org"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  CommandResult bad = as_nobody({"host", "remove", "nosuch.example.org"});
  EXPECT_NE(bad.exit_code, 0);
  CommandResult policy =
      as_nobody({"policy", "set", "example.org", "--mode", "testing"});
  EXPECT_EQ(policy.exit_code, 0) << policy.err;
  EXPECT_EQ(as_nobody({"host", "list"}).exit_code, 0);
  CommandResult remove = keyd_->RunKeyctl({"host", "remove", "mx2.example.org"});
  EXPECT_EQ(remove.exit_code, 0) << remove.err;

  const std::string log = keyd_->log();
  EXPECT_THAT(log, HasSubstr("admin change: uid=65534 action=add-host "
                             "target=\"mx2.example.org\" result=ok"));
  EXPECT_THAT(log, HasSubstr("admin change: uid=65534 action=remove-host "
                             "target=\"nosuch.example.org\" result=NOT_FOUND"));
  EXPECT_THAT(log, HasSubstr("admin change: uid=65534 action=set-policy "
                             "target=\"example.org\" result=ok"));
  EXPECT_THAT(log, HasSubstr(absl::StrCat(
                       "admin change: uid=", getuid(),
                       " action=remove-host target=\"mx2.example.org\" "
                       "result=ok")));
  EXPECT_THAT(log, Not(HasSubstr("uid=unknown")));
  // One line per change (host list is a read): 5 changes in all.
  size_t lines = 0;
  for (size_t pos = log.find("admin change:"); pos != std::string::npos;
       pos = log.find("admin change:", pos + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 5u) << log;
}

// keyctl export tlsa agrees with two independent tools on the same
// certificate: hash-slinger's `tlsa` and openssl | sha256sum.
TEST_F(CliE2eTest, ExportTlsaMatchesIndependentToolsAndMtaStsFollowsPolicy) {
  const std::string cert = keyd_->dir() + "/../tls.pem";
  const std::string key = keyd_->dir() + "/../tls.key";
  CommandResult gen = RunCommand(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
       "-subj", "/CN=mx1.example.org", "-days", "30"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  std::string token = AddHost("mx1.example.org");
  // Trust core III #7: a certificate alone (public) is no proof that the
  // host holds the key; keyd refuses a new pin without a signature by it,
  // and the token stays usable.
  CommandResult unproven = keyd_->RunKeyctl(
      {"enroll", "mx1.example.org", "--token-file",
       TokenFile(keyd_->dir() + "/..", token), "--key-dir", key_dir_,
       "--tls-cert", cert});
  EXPECT_EQ(unproven.exit_code, 1);
  EXPECT_THAT(unproven.err, HasSubstr("needs proof of possession"));
  ASSERT_EQ(keyd_->RunKeyctl({"enroll", "mx1.example.org", "--token-file", TokenFile(keyd_->dir() + "/..", token),
                              "--key-dir", key_dir_, "--tls-cert", cert,
                              "--tls-key", key})
                .exit_code,
            0);
  ASSERT_EQ(keyd_->RunKeyctl({"policy", "set", "example.org", "--mode",
                              "enforce"})
                .exit_code,
            0);

  CommandResult tlsa = keyd_->RunKeyctl({"export", "tlsa", "example.org"});
  ASSERT_EQ(tlsa.exit_code, 0) << tlsa.err;
  CommandResult slinger = RunCommand(
      {"/usr/bin/tlsa", "--create", "--certificate", cert, "--usage", "3",
       "--selector", "1", "--mtype", "1", "--port", "25", "mx1.example.org"});
  ASSERT_EQ(slinger.exit_code, 0) << slinger.err;
  const size_t at = slinger.out.find("_25._tcp.");
  ASSERT_NE(at, std::string::npos) << slinger.out;
  EXPECT_EQ(tlsa.out, slinger.out.substr(at));
  CommandResult openssl = RunCommand(
      {"/bin/sh", "-c",
       "openssl x509 -in '" + cert +
           "' -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum"});
  ASSERT_EQ(openssl.exit_code, 0) << openssl.err;
  EXPECT_THAT(tlsa.out, HasSubstr(openssl.out.substr(0, 64)));

  CommandResult sts = keyd_->RunKeyctl(
      {"export", "mta-sts", "example.org", "--max-age", "604800"});
  ASSERT_EQ(sts.exit_code, 0) << sts.err;
  EXPECT_EQ(sts.out,
            "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\n"
            "max_age: 604800\r\n");

  CommandResult none = keyd_->RunKeyctl({"export", "tlsa", "unkeyed.example"});
  EXPECT_EQ(none.exit_code, 3);
  EXPECT_THAT(none.err, HasSubstr("no MX host with a usable TLS pin"));
  EXPECT_EQ(keyd_->RunKeyctl({"export", "dkim", "example.org"}).exit_code, 2);
}

TEST_F(CliE2eTest, SigtermShutsDownCleanly) {
  EXPECT_EQ(keyd_->Stop(), 0);
  EXPECT_THAT(keyd_->log(), HasSubstr("keyd stopped"));
  struct stat st;
  EXPECT_NE(stat(keyd_->admin_socket().c_str(), &st), 0);
  // And it comes back with its data.
  ASSERT_TRUE(keyd_->Start().ok());
  EXPECT_EQ(keyd_->RunKeyctl({"host", "list"}).exit_code, 0);
}

}  // namespace
}  // namespace mxkey

namespace mxkey {
namespace {

// An operator's papercuts: policy show right after enrolling a host for a
// domain without a policy, and a watch that keyd ends.
TEST_F(CliE2eTest, PolicyShowOfAnUnkeyedDomainNamesItsEnrolledHosts) {
  std::string token = AddHost("mx1.example.org");
  ASSERT_EQ(keyd_->RunKeyctl({"enroll", "mx1.example.org", "--token-file", TokenFile(keyd_->dir() + "/..", token),
                              "--key-dir", key_dir_})
                .exit_code,
            0);
  CommandResult show = keyd_->RunKeyctl({"policy", "show", "example.org"});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, HasSubstr("example.org: unkeyed (mode none)"));
  EXPECT_THAT(show.out, HasSubstr("enrolled host mx1.example.org"));
  EXPECT_THAT(show.out, HasSubstr("keyctl policy set example.org"));
}

TEST_F(CliE2eTest, WatchSaysSoAndFailsWhenKeydEndsIt) {
  const std::string log = keyd_->dir() + "/../watch.log";
  auto watch = Subprocess::Start(keyd_->Keyctl({"watch"}), log);
  ASSERT_TRUE(watch.ok()) << watch.status();
  absl::SleepFor(absl::Milliseconds(500));  // the stream is open
  EXPECT_EQ(keyd_->Stop(), 0);
  EXPECT_EQ((*watch)->Wait(absl::Seconds(20)), 1);
  EXPECT_THAT(ReadFile(log, 1 << 20).value_or(""),
              HasSubstr("keyd ended the stream after seq 0"));
}

}  // namespace
}  // namespace mxkey

namespace mxkey {
namespace {

// Trust core III #5: a token on keyctl's command line is readable by every
// local user (/proc/PID/cmdline), who could enroll first. keyctl refuses
// it there and takes it from stdin, a private file or the environment.
TEST_F(CliE2eTest, EnrollmentTokenNeverOnTheCommandLine) {
  std::string token = AddHost("mx1.example.org");
  CommandResult on_argv = keyd_->RunKeyctl(
      {"enroll", "mx1.example.org", "--token", token, "--key-dir", key_dir_});
  EXPECT_EQ(on_argv.exit_code, 2) << on_argv.out;
  EXPECT_THAT(on_argv.err, HasSubstr("refusing a token on the command line"));
  // A file others can read is refused too, and the token stays unused.
  const std::string open_file = keyd_->dir() + "/../open.token";
  ASSERT_TRUE(WriteFileAtomically(open_file, token + "\n", 0644).ok());
  CommandResult readable = keyd_->RunKeyctl({"enroll", "mx1.example.org",
                                             "--token-file", open_file,
                                             "--key-dir", key_dir_});
  EXPECT_EQ(readable.exit_code, 2);
  EXPECT_THAT(readable.err, HasSubstr("is readable by others (mode 0644)"));
  // On stdin it works.
  std::vector<std::string> argv = keyd_->Keyctl(
      {"enroll", "mx1.example.org", "--token", "-", "--key-dir", key_dir_});
  std::string command;
  for (const std::string& a : argv) absl::StrAppend(&command, "'", a, "' ");
  CommandResult on_stdin = RunCommand(
      {"/bin/sh", "-c", "echo " + token + " | " + command});
  EXPECT_EQ(on_stdin.exit_code, 0) << on_stdin.err;
  EXPECT_THAT(on_stdin.out, HasSubstr("enrolled mx1.example.org serial 1"));
}

}  // namespace
}  // namespace mxkey
