// Prints the Appendix A block of docs/PROTOCOL.md (without its fences).
// Run after an intended protocol change and paste the output between the
// ```vectors lines; tests/protocol_doc_test fails until the two agree.
#include <iostream>

#include "tests/protocol_vectors.h"

int main() {
  absl::StatusOr<std::string> block = mxkey::FormatProtocolVectors();
  if (!block.ok()) {
    std::cerr << "print_protocol_vectors: " << block.status() << "\n";
    return 1;
  }
  std::cout << *block;
  return 0;
}
