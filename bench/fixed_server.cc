// mxkey-fixed-server: the lookup_qps baseline. A KeyDirectory server built
// exactly like keyd's public server (gRPC callback API for KeyDirectory,
// same builder options)
// whose GetHostKeys returns one fixed answer, fetched once from a real keyd
// so that it has the same size as keyd's answers. Prints
// "listening on 127.0.0.1:PORT".
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <cstdio>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"

namespace {

class FixedDirectory final : public mxkey::v1::KeyDirectory::CallbackService {
 public:
  explicit FixedDirectory(mxkey::v1::KeyAnswer answer)
      : answer_(std::move(answer)) {}
  grpc::ServerUnaryReactor* GetHostKeys(grpc::CallbackServerContext* context,
                                        const mxkey::v1::GetHostKeysRequest*,
                                        mxkey::v1::KeyAnswer* response) override {
    *response = answer_;
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const mxkey::v1::KeyAnswer answer_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string from = "127.0.0.1:7700", name = "mx0.example.org";
  CLI::App app{"mxkey-fixed-server: fixed-answer KeyDirectory baseline"};
  app.add_option("--from", from, "keyd to copy one answer from");
  app.add_option("--name", name, "host whose answer to copy");
  CLI11_PARSE(app, argc, argv);
  // As keyd does (gRPC's own locks are absl Mutexes too).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  auto stub = mxkey::v1::KeyDirectory::NewStub(
      grpc::CreateChannel(from, grpc::InsecureChannelCredentials()));
  mxkey::v1::GetHostKeysRequest req;
  req.set_hostname(name);
  mxkey::v1::KeyAnswer answer;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status st = stub->GetHostKeys(&ctx, req, &answer);
  if (!st.ok()) {
    std::fprintf(stderr, "mxkey-fixed-server: cannot copy an answer: %s\n",
                 st.error_message().c_str());
    return 1;
  }
  FixedDirectory service(std::move(answer));
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.SetMaxReceiveMessageSize(64 * 1024);  // as keyd
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return 1;
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  server->Wait();
  return 0;
}
