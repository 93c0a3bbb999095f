#include "base/config_file.h"

#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;

// A command shaped like keyd serve: a required text option, a duration, an
// address, an enum, an integer with a range, a flag and a repeatable option.
struct Command {
  CLI::App app{"test"};
  CLI::App* serve = nullptr;
  std::string data_dir, freshness = "5m", listen = "127.0.0.1:7700",
                        tls = "auto";
  int limit = 60;
  bool verbose = false;
  std::vector<std::string> peers;

  explicit Command(const std::string& default_path) {
    serve = app.add_subcommand("serve", "");
    serve->add_option("--data-dir", data_dir, "")->required();
    serve->add_option("--freshness", freshness, "")->check(DurationCheck());
    serve->add_option("--listen", listen, "")->check(HostPortCheck());
    serve->add_option("--tls", tls, "")
        ->check(CLI::IsMember({"auto", "on", "off"}));
    serve->add_option("--limit", limit, "")->check(CLI::Range(0, 1000));
    serve->add_flag("--verbose", verbose, "");
    serve->add_option("--peer", peers, "");
    AddConfigFile(app, default_path, {serve});
  }

  // Parses; returns the error text, or "" when it parsed.
  std::string Parse(std::vector<std::string> args) {
    std::vector<const char*> argv = {"test"};
    for (const std::string& a : args) argv.push_back(a.c_str());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return e.what();
    }
    return "";
  }
};

class ConfigFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    std::string path = ::testing::TempDir() + "/config_file_test.toml";
    std::ofstream(path) << text;
    return path;
  }
  // Parses `text` as the file given by --config, plus `extra` flags.
  std::string ParseWith(const std::string& text,
                        std::vector<std::string> extra = {}) {
    std::string path = Write(text);
    std::vector<std::string> args = {"--config", path, "serve"};
    args.insert(args.end(), extra.begin(), extra.end());
    error_ = command_.Parse(args);
    return error_;
  }
  Command command_{"/nonexistent/mxkey-default.toml"};
  std::string error_;
};

TEST_F(ConfigFileTest, EveryTypeOfKeySetsItsOption) {
  EXPECT_EQ(ParseWith("data-dir = \"/var/lib/mxkey\"\n"
                      "freshness = \"10m\"\n"
                      "listen = \"[::1]:7701\"\n"
                      "tls = \"off\"\n"
                      "limit = 7\n"
                      "verbose = true\n"
                      "peer = [\"a\", \"b\"]\n"),
            "");
  EXPECT_EQ(command_.data_dir, "/var/lib/mxkey");
  EXPECT_EQ(command_.freshness, "10m");
  EXPECT_EQ(command_.listen, "[::1]:7701");
  EXPECT_EQ(command_.tls, "off");
  EXPECT_EQ(command_.limit, 7);
  EXPECT_TRUE(command_.verbose);
  EXPECT_EQ(command_.peers, (std::vector<std::string>{"a", "b"}));
}

TEST_F(ConfigFileTest, FlagsOverrideTheFile) {
  EXPECT_EQ(ParseWith("data-dir = \"/from/file\"\nfreshness = \"10m\"\n",
                      {"--data-dir", "/from/flag"}),
            "");
  EXPECT_EQ(command_.data_dir, "/from/flag");
  EXPECT_EQ(command_.freshness, "10m");
}

TEST_F(ConfigFileTest, UnknownKeyNamesFileLineAndKey) {
  std::string error = ParseWith("data-dir = \"/d\"\n\nfreshnes = \"5m\"\n");
  EXPECT_THAT(error, HasSubstr("config_file_test.toml:3:1: unknown key "
                               "\"freshnes\""));
  EXPECT_THAT(error, HasSubstr("known: data-dir, freshness"));
}

TEST_F(ConfigFileTest, WrongTypesAreRefused) {
  EXPECT_THAT(ParseWith("data-dir = 5\n"),
              HasSubstr(":1:12: data-dir: expected a string"));
  EXPECT_THAT(ParseWith("data-dir = \"/d\"\nlimit = \"7\"\n"),
              HasSubstr(":2:9: limit: expected an integer"));
  EXPECT_THAT(ParseWith("data-dir = \"/d\"\nverbose = 1\n"),
              HasSubstr(":2:11: verbose: expected true or false"));
  EXPECT_THAT(ParseWith("data-dir = [\"/a\", \"/b\"]\n"),
              HasSubstr(":1:12: data-dir: takes one value, not a list"));
  EXPECT_THAT(ParseWith("[serve]\ndata-dir = \"/d\"\n"),
              HasSubstr("unknown key \"serve\""));
  EXPECT_THAT(ParseWith("data-dir = \"/d\"\npeer = [\"a\", 3]\n"),
              HasSubstr(":2:14: peer: expected a string"));
}

TEST_F(ConfigFileTest, BadValuesNameWhatWasExpected) {
  EXPECT_THAT(ParseWith("data-dir = \"/d\"\nfreshness = \"5 minutes\"\n"),
              HasSubstr(":2:13: freshness: expected a positive duration like "
                        "30s, 5m, 1h or 7d, got \"5 minutes\""));
  EXPECT_THAT(ParseWith("data-dir = \"/d\"\nfreshness = \"-5m\"\n"),
              HasSubstr("freshness: expected a positive duration"));
  EXPECT_THAT(ParseWith("data-dir = \"/d\"\nlisten = \"127.0.0.1\"\n"),
              HasSubstr(":2:10: listen: expected HOST:PORT"));
  EXPECT_THAT(ParseWith("data-dir = \"/d\"\nlisten = \"h:70000\"\n"),
              HasSubstr("listen: expected HOST:PORT"));
  EXPECT_THAT(ParseWith("data-dir = \"/d\"\ntls = \"maybe\"\n"),
              HasSubstr(":2:7: tls: "));
  EXPECT_THAT(ParseWith("data-dir = \"/d\"\nlimit = 5000\n"),
              HasSubstr(":2:9: limit: "));
}

TEST_F(ConfigFileTest, SyntaxErrorsHaveALineAndColumn) {
  EXPECT_THAT(ParseWith("data-dir = \"/d\"\nfreshness = 5m\n"),
              HasSubstr("config_file_test.toml:2:"));
  EXPECT_THAT(error_, HasSubstr("not valid TOML"));
  EXPECT_THAT(ParseWith("data-dir = \"/d\"\ndata-dir = \"/e\"\n"),
              HasSubstr("not valid TOML"));
}

TEST_F(ConfigFileTest, KeysAreEscapedInErrors) {
  std::string error = ParseWith("\"a\\nINFO forged\" = 1\n");
  EXPECT_THAT(error, HasSubstr("unknown key \"a\\nINFO forged\""));
  EXPECT_EQ(error.find('\n'), error.find("\nRun with"));  // no raw newline
}

TEST_F(ConfigFileTest, RequiredOptionsMayComeFromTheFile) {
  EXPECT_EQ(ParseWith("data-dir = \"/d\"\n"), "");
  EXPECT_THAT(ParseWith("freshness = \"5m\"\n"), HasSubstr("data-dir"));
}

TEST_F(ConfigFileTest, NamedFileMustExistDefaultMayNot) {
  Command named("/nonexistent/mxkey-default.toml");
  EXPECT_THAT(named.Parse({"--config", "/nonexistent/x.toml", "serve",
                           "--data-dir", "/d"}),
              HasSubstr("/nonexistent/x.toml"));
  Command by_default("/nonexistent/mxkey-default.toml");
  EXPECT_EQ(by_default.Parse({"serve", "--data-dir", "/d"}), "");
}

TEST_F(ConfigFileTest, TheDefaultPathIsReadWhenItExists) {
  std::string path = Write("data-dir = \"/from/default\"\n");
  Command by_default(path);
  EXPECT_EQ(by_default.Parse({"serve"}), "");
  EXPECT_EQ(by_default.data_dir, "/from/default");
}

TEST(ParseTomlConfigTest, OversizedInputIsRefusedBeforeParsing) {
  CLI::App app{"t"};
  std::string text(2 << 20, '#');
  EXPECT_FALSE(ParseTomlConfig(text, "big.toml", app, {}).ok());
}

}  // namespace
}  // namespace mxkey

namespace mxkey {
namespace {

// base:config_file_fuzzer's finds: table headers whose key starts with a
// character no key may start with made toml++ assert (abort).
TEST(ParseTomlConfigTest, ControlCharactersAreRefusedWithTheirPosition) {
  CLI::App app{"t"};
  std::string text("ok = 1\n[\x0e\x0eserv\0\0", 17);
  absl::StatusOr<std::vector<CLI::ConfigItem>> items =
      ParseTomlConfig(text, "c.toml", app, {});
  ASSERT_FALSE(items.ok());
  EXPECT_THAT(std::string(items.status().message()),
              ::testing::HasSubstr("c.toml:2:2: control character 0x0e"));
  // toml++ reached __builtin_unreachable on U+FEFC where whitespace may be.
  absl::StatusOr<std::vector<CLI::ConfigItem>> bom =
      ParseTomlConfig("\nlit\xef\xbb\xbctlim = 4", "c.toml", app, {});
  ASSERT_FALSE(bom.ok());
  EXPECT_THAT(std::string(bom.status().message()),
              ::testing::HasSubstr("c.toml:2:4: non-ASCII byte 0xef (config "
                                   "files are ASCII)"));
  absl::StatusOr<std::vector<CLI::ConfigItem>> at =
      ParseTomlConfig("[@ervE]\nx0 = 1\n", "c.toml", app, {});
  ASSERT_FALSE(at.ok());
  EXPECT_THAT(std::string(at.status().message()),
              ::testing::HasSubstr("c.toml:1:2: not valid TOML"));
}

}  // namespace
}  // namespace mxkey
