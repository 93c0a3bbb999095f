// Config files for the daemons: a flat TOML file whose keys are the long
// flag names of one command ("freshness = \"5m\"" for --freshness), read
// with toml++ and fed to CLI11 as if the flags had been given, so there is
// one list of settings, one set of checks, and flags on the command line
// win over the file.
//
// Files are printable ASCII (toml++ 3.3 has undefined behaviour on some
// non-ASCII input; every setting is ASCII anyway).
//
// How it fails: a syntax error, an unknown key, a table, a value of the
// wrong TOML type or one an option's check refuses (a bad duration, address
// or enum) is a CLI::ConfigError whose message is
//   FILE:LINE:COLUMN: KEY: what was expected, got what
// before anything starts. A missing file is an error when it was named with
// --config, and is skipped when it is only the default path.
#ifndef MXKEY_BASE_CONFIG_FILE_H_
#define MXKEY_BASE_CONFIG_FILE_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mxkey {

// Parses TOML `text` (named `source` in errors) against the options of
// `target` and returns one CLI11 item per key, parents set to `parents`.
// Runs every check of each option on each value. Never throws.
absl::StatusOr<std::vector<CLI::ConfigItem>> ParseTomlConfig(
    absl::string_view text, absl::string_view source, CLI::App& target,
    const std::vector<std::string>& parents);

// Adds --config (default `default_path`) to `root`; the file's keys apply to
// whichever of `targets` (subcommands of root, or root itself) was given on
// the command line. Call before root.parse().
void AddConfigFile(CLI::App& root, const std::string& default_path,
                   std::vector<CLI::App*> targets);

// Parses the command line (and the config file); -1 when it parsed, else
// the exit code after CLI11 printed the help, the version or the error.
int ParseCommandLine(CLI::App& root, int argc, char** argv);

// Where the settings came from, for check-config's answer: the config file
// read, or "flags only; no config file".
std::string ConfigSource(const CLI::App& root);

// The checks the daemons' flags share, so that the file and the command line
// refuse the same values with the same words.
CLI::Validator DurationCheck();  // ParseDurationFlag's forms: 30s, 5m, 7d
CLI::Validator HostPortCheck();  // HOST:PORT, [V6]:PORT; port 0..65535

}  // namespace mxkey

#endif  // MXKEY_BASE_CONFIG_FILE_H_
