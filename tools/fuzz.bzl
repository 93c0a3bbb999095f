"""libFuzzer targets, and their corpus as a regression test in every build.

mxkey_fuzz_target(name, srcs, deps) declares
  NAME                  the libFuzzer binary (tagged manual; build it with
                        tools/fuzz, which uses clang-14 and --config=fuzz)
  NAME_regression_test  a plain test that runs LLVMFuzzerTestOneInput over
                        every file in tests/fuzz/corpus/NAME/ (seeds and
                        every crash ever found), with the normal compiler.
"""

def mxkey_fuzz_target(name, srcs, deps):
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps,
        tags = ["manual"],
    )
    native.cc_test(
        name = name + "_regression_test",
        srcs = srcs,
        deps = deps + ["//tests/fuzz:corpus_runner"],
        data = ["//tests/fuzz:corpus_" + name],
        args = ["$(rootpaths //tests/fuzz:corpus_" + name + ")"],
    )
