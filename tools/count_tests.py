#!/usr/bin/env python3
"""Counts gtest test cases in Bazel's test.xml files and prints the closing
line "N passed, N failed".

Usage: count_tests.py TESTLOGS BUILD_ERROR UNBUILT_LABELS [TARGET ...]
Targets that did not build (UNBUILT_LABELS, comma-separated) or left no
test.xml count as one failure each, as does a build error (BUILD_ERROR=1).
When CI=true, skipped cases count as failures (a missing tool must not pass
silently). Lines "pass NAME" / "fail NAME" in the file named by
$MXKEY_EXTRA_RESULTS count too (checks that are not Bazel tests). Exits 1
if anything failed."""
import glob
import os
import sys
import xml.etree.ElementTree as ET


def result_files(root, targets):
    """test.xml of each target label (//pkg:name), or of everything."""
    if not targets:
        for dirpath, _, files in os.walk(root, followlinks=True):
            if "test.xml" in files:
                yield os.path.join(dirpath, "test.xml"), None
        return
    for label in targets:
        pkg, name = label.lstrip("/").split(":")
        target_dir = os.path.join(root, pkg, name)
        # A sharded test (shard_count) writes one test.xml per shard.
        shards = sorted(glob.glob(os.path.join(target_dir, "shard_*_of_*",
                                               "test.xml")))
        if shards:
            for shard in shards:
                yield shard, label
        else:
            yield os.path.join(target_dir, "test.xml"), label


def main():
    root = sys.argv[1]
    build_failures = int(sys.argv[2])
    unbuilt = set(filter(None, sys.argv[3].split(",")))
    targets = sys.argv[4:]
    ci = os.environ.get("CI") == "true"
    passed = failed = skipped = 0
    for path, label in result_files(root, targets):
        if label in unbuilt:
            print(f"did not build or run: {label}", file=sys.stderr)
            failed += 1
            continue
        if not os.path.exists(path):
            print(f"no test result for {label}", file=sys.stderr)
            failed += 1
            continue
        try:
            tree = ET.parse(path)
        except ET.ParseError:
            print(f"unreadable test result: {path}", file=sys.stderr)
            failed += 1
            continue
        cases = list(tree.iter("testcase"))
        if not cases:
            # A target that crashed before gtest wrote its report.
            suite = tree.find(".//testsuite")
            if suite is not None and int(suite.get("failures", "0")) + int(
                suite.get("errors", "0")
            ):
                failed += 1
            continue
        for case in cases:
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
                print(f"FAILED: {case.get('classname')}.{case.get('name')}",
                      file=sys.stderr)
            elif case.get("result") == "skipped" or case.find("skipped") is not None:
                if ci:
                    failed += 1
                    print(f"SKIPPED (counts as failure under CI): "
                          f"{case.get('classname')}.{case.get('name')}",
                          file=sys.stderr)
                else:
                    skipped += 1
            else:
                passed += 1
    # Results of checks that are not Bazel tests (the fuzz smoke): lines
    # "pass NAME" or "fail NAME" in the file $MXKEY_EXTRA_RESULTS.
    extra = os.environ.get("MXKEY_EXTRA_RESULTS")
    if extra and os.path.exists(extra):
        with open(extra) as f:
            for line in f:
                verdict, _, name = line.strip().partition(" ")
                if verdict == "pass":
                    passed += 1
                elif verdict:
                    failed += 1
                    print(f"FAILED: {name}", file=sys.stderr)
    failed += build_failures
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
