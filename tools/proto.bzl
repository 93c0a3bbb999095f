"""Generates C++ (and optionally gRPC) code from .proto files with Debian's
protoc and grpc_cpp_plugin. One macro for every proto in the tree."""

def mxkey_proto_library(name, srcs, deps = [], grpc = False, visibility = None):
    """Declares a cc_library `name` holding the generated code of `srcs`.

    Args:
      name: the cc_library name.
      srcs: .proto files in this package.
      deps: other mxkey_proto_library targets whose protos these import.
      grpc: also generate gRPC service stubs.
      visibility: visibility of the library.
    """
    outs = []
    for src in srcs:
        stem = src[:-len(".proto")]
        outs += [stem + ".pb.h", stem + ".pb.cc"]
        if grpc:
            outs += [stem + ".grpc.pb.h", stem + ".grpc.pb.cc"]
    proto_path = native.package_name()
    files = " ".join([proto_path + "/" + s for s in srcs])
    cmd = "/usr/bin/protoc -I. --cpp_out=$(GENDIR) "
    if grpc:
        cmd += "--grpc_out=$(GENDIR) --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin "
    cmd += files
    native.genrule(
        name = name + "_gen",
        srcs = srcs + [d + "_srcs" for d in deps],
        outs = outs,
        cmd = cmd,
    )
    native.filegroup(
        name = name + "_srcs",
        srcs = srcs + [d + "_srcs" for d in deps],
        visibility = visibility,
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + ["//third_party/system:protobuf"] +
               (["//third_party/system:grpc"] if grpc else []),
        visibility = visibility,
    )
