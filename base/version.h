// The one version number of mxkey's binaries, the package and the docs
// (tools/package reads it from here). Bumped by hand at a release.
#ifndef MXKEY_BASE_VERSION_H_
#define MXKEY_BASE_VERSION_H_

namespace mxkey {

inline constexpr char kVersion[] = "0.3.0";

}  // namespace mxkey

#endif  // MXKEY_BASE_VERSION_H_
