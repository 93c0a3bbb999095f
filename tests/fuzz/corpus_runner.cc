// Runs a libFuzzer entry point over corpus files, without libFuzzer: the
// regression half of every fuzz target (tools/fuzz.bzl). Each argument is a
// file or a directory of files. Prints one gtest-style summary line per file
// count so tools/test can count it, and fails on a crash (the process dies)
// or on an unreadable corpus.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void Collect(const std::string& path, std::vector<std::string>& files) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    files.push_back(path);
    return;
  }
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return;
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") Collect(path + "/" + name, files);
  }
  closedir(dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) Collect(argv[i], files);
  if (files.empty()) {
    std::fprintf(stderr, "corpus_runner: no corpus files\n");
    return 1;
  }
  // A test.xml with one case, so the run is counted like any gtest.
  const char* xml = std::getenv("XML_OUTPUT_FILE");
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    std::string data = buf.str();
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()),
                           data.size());
  }
  std::printf("corpus_runner: %zu inputs ran clean\n", files.size());
  if (xml != nullptr) {
    std::ofstream out(xml);
    out << "<?xml version=\"1.0\"?>\n<testsuites><testsuite name=\"corpus\" "
           "tests=\"1\"><testcase name=\"RegressionCorpus\" status=\"run\"/>"
           "</testsuite></testsuites>\n";
  }
  return 0;
}
