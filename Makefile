# Vane build entry points. On a fresh Debian 12 machine:
#   make run    installs what the build needs, builds (release) and runs the main job, `vane pipeline`
#   make stack  the same build, then the five services idle on loopback (`vane stack`)
#   make test   installs what the tests need, then runs `swift test` and the external-client tests
#   make bench  builds release and prints the benchmarks: RPC (vane vs plain grpc++), features
#               (v1 matrix, indicators vs TA-Lib, online GetFeatures), models, and the ONNX
#               engine vs ONNX Runtime

SHELL := /bin/bash

# The real candle files (read where they are).
MARKET_DATA ?= ../shared/data/market

# Debian packages the build and the main job need: the C++ gRPC and protobuf libraries the shim
# links, protoc for `make protos`, OpenBLAS, libxgboost (loaded at run time by the trainer) and
# libmicrohttpd (the /metrics endpoint).
APT_PACKAGES := libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc \
                libopenblas-dev zlib1g-dev libsqlite3-dev pkg-config libssl-dev \
                libxgboost0 libmicrohttpd-dev
# Only the tests and benchmarks: openssl (tests make certificates), docker-compose (validates
# Compose/compose.yaml), headless Chromium (renders the pipeline's HTML report) and
# libonnx-testdata (ONNX's backend node tests the ONNX engine is checked against).
TEST_APT_PACKAGES := openssl docker-compose chromium libonnx-testdata
# PyPI packages for the external-client tests (a gRPC client no one here wrote), and NVIDIA's
# CUDA 12 runtime and NVRTC (no GPU needed: the GPU kernels are compiled to PTX in the tests).
PIP_PACKAGES := grpcio grpcio-health-checking grpcio-reflection pytest onnxruntime onnx numpy prometheus-client \
                nvidia-cuda-runtime-cu12 nvidia-cuda-nvrtc-cu12
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Installs those of the Debian packages $(1) that are missing (one apt-get for all of them).
apt_install = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
  if [ -n "$$missing" ]; then \
    echo "installing:$$missing"; \
    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
  fi

.PHONY: build-deps deps build test run stack bench format format-check
# What the build and the main job need (make run, make stack): Debian packages only.
build-deps:
	@$(call apt_install,$(APT_PACKAGES))

# And what the tests and benchmarks need besides: PyPI packages (a gRPC client no one here wrote,
# ONNX Runtime as the engine's reference).
deps: build-deps
	@python3 -c "import grpc, grpc_health, grpc_reflection, pytest, onnxruntime, onnx, numpy, prometheus_client, nvidia.cuda_runtime, nvidia.cuda_nvrtc" 2>/dev/null || \
	  python3 -m pip install -q --disable-pip-version-check $(PIP_PACKAGES)

# Release builds let every module's generic code be specialised by its callers
# (cross-module optimisation): GRPCCore's server and client executors are generic over the
# message, serializer and transport types, and unspecialised they look up generic metadata and
# allocate async frames on every call. Measured with `vane bench rpc --instructions`: 8 % fewer
# instructions per call on the server side, 19 % fewer on the client side.
RELEASE = swift build -c release -Xswiftc -cross-module-optimization
# The toolchain's LLVM can make a throwing function return an error it never threw (a tail call
# to memcpy/memmove/memset that skips restoring the error register, swiftlang/swift#90477);
# only release builds tail-call, so each release build is checked before it runs.
CHECK_RELEASE = if command -v python3 >/dev/null && command -v objdump >/dev/null; then \
	  python3 scripts/check_error_register.py $$(swift build -c release --show-bin-path)/vane; \
	else echo "check_error_register: skipped (needs python3 and objdump)"; fi

build: deps
	$(RELEASE) --product vane
	$(CHECK_RELEASE)
	$(RELEASE) --product vane-bench-cxx

# One OpenBLAS thread in the test process: its idle threads spin, and on 2 cores they would
# starve the service processes other tests start alongside the model tests. The test process
# links OpenBLAS itself, so it gets the core `vane` selects for this CPU (`vane version
# --blas-core`): the gradient checks and reference fixtures run on the kernels Vane runs.
test: deps
	@$(call apt_install,$(TEST_APT_PACKAGES))
	$(MAKE) format-check
	swift build --build-tests
	OPENBLAS_CORETYPE=$$($$(swift build --show-bin-path)/vane version --blas-core) \
	  VANE_REQUIRE_ONNXRUNTIME=1 OPENBLAS_NUM_THREADS=1 swift test --skip-build
	VANE_BIN=$$(swift build --show-bin-path)/vane python3 -m pytest -q Tests/External
	docker-compose -f Compose/compose.yaml config -q && echo "compose.yaml: valid"

# One formatting for the hand-written Swift (.swift-format: grpc-swift-2's line length and
# layout); `make format` applies it, `make test` checks it. Generated code is left as generated.
FORMAT_FILES = Package.swift $$(find Sources Tests -name '*.swift' -not -path '*/Generated/*')

format:
	swift format format --in-place --parallel $(FORMAT_FILES)

format-check:
	@swift format lint --strict --parallel $(FORMAT_FILES) && echo "swift format: clean"

# The main job needs only the `vane` executable (and its embedded candles).
run: build-deps
	$(RELEASE) --product vane
	$(CHECK_RELEASE)
	$$(swift build -c release --show-bin-path)/vane pipeline

stack: build-deps
	$(RELEASE) --product vane
	$(CHECK_RELEASE)
	$$(swift build -c release --show-bin-path)/vane stack

bench: build
	pip install --quiet ta-lib numpy
	$$(swift build -c release --show-bin-path)/vane bench rpc
	$$(swift build -c release --show-bin-path)/vane bench features --market $(MARKET_DATA)
	/tmp/benchenv/bin/python -c "import numpy, xgboost, lightgbm, torch, sklearn" 2>/dev/null || { python3 -m venv /tmp/benchenv && \
	  /tmp/benchenv/bin/pip install --quiet numpy xgboost lightgbm scikit-learn filelock typing-extensions sympy networkx jinja2 fsspec && \
	  /tmp/benchenv/bin/pip install --quiet --no-deps torch --index-url https://download.pytorch.org/whl/cpu; }
	$$(swift build -c release --show-bin-path)/vane bench models --market $(MARKET_DATA)
	python3 -c "import onnxruntime, skl2onnx, onnxmltools, lightgbm, torch" 2>/dev/null || { \
	  python3 -m pip install --quiet onnxruntime onnx scikit-learn skl2onnx onnxmltools lightgbm filelock typing-extensions sympy networkx jinja2 fsspec && \
	  python3 -m pip install --quiet --no-deps torch --index-url https://download.pytorch.org/whl/cpu; }
	OPENBLAS_NUM_THREADS=1 $$(swift build -c release --show-bin-path)/vane bench onnx
	OPENBLAS_NUM_THREADS=1 $$(swift build -c release --show-bin-path)/vane bench predictor

# ---------------------------------------------------------------------------
# Code generation for the vane.v1 API (Protos/vane/v1/*.proto).
# The generated Swift under $(PROTO_GEN_DIR) is committed; run `make protos`
# after editing a .proto and commit the result. Needs apt's protoc; the protoc
# plugins are built from the swift-protobuf and grpc-swift-protobuf versions
# Package.swift resolves, in their own scratch dir (never the main .build).
# UseAccessLevelOnImports=true makes the generated code write `public import`,
# which the package's InternalImportsByDefault setting requires.
# GRPCProtobufModuleName=VaneWireCoding makes the stubs use Vane's protobuf coders, which run
# specialised for each message where GRPCCore calls them through type-erased writers and
# sequences (Sources/VaneWireCoding/ProtobufSerializer.swift).
# ---------------------------------------------------------------------------
PROTOC             ?= /usr/bin/protoc
SWIFT              ?= swift
PROTO_DIR          := Protos
PROTO_FILES         = $(sort $(wildcard $(PROTO_DIR)/vane/v1/*.proto))
PROTO_GEN_DIR      := Sources/VaneProto/Generated
PLUGIN_SCRATCH     := .build-plugins
PLUGIN_BIN         := $(CURDIR)/$(PLUGIN_SCRATCH)/release
PROTO_DESCRIPTORS  := $(PLUGIN_SCRATCH)/vane.protoset
PROTO_SWIFT_OPTS   := Visibility=Public,UseAccessLevelOnImports=true
PROTO_GRPC_OPTS    := Visibility=Public,UseAccessLevelOnImports=true,Server=true,Client=true,GRPCProtobufModuleName=VaneWireCoding
# ONNX's schema, from Debian's libonnx-dev: the ONNX engine's reader (internal to its module).
ONNX_PROTO         ?= /usr/include/onnx/onnx.proto
ONNX_GEN_DIR       := Sources/VaneONNXRuntime/Generated
ONNX_SWIFT_OPTS    := Visibility=Internal,UseAccessLevelOnImports=true

.PHONY: protos
protos:
	$(SWIFT) build -c release --scratch-path $(PLUGIN_SCRATCH) --product protoc-gen-swift
	$(SWIFT) build -c release --scratch-path $(PLUGIN_SCRATCH) --product protoc-gen-grpc-swift-2
	rm -rf $(PROTO_GEN_DIR)
	mkdir -p $(PROTO_GEN_DIR)
	$(PROTOC) -I $(PROTO_DIR) \
	  --plugin=protoc-gen-swift=$(PLUGIN_BIN)/protoc-gen-swift \
	  --plugin=protoc-gen-grpc-swift-2=$(PLUGIN_BIN)/protoc-gen-grpc-swift-2 \
	  --swift_out=$(PROTO_SWIFT_OPTS):$(PROTO_GEN_DIR) \
	  --grpc-swift-2_out=$(PROTO_GRPC_OPTS):$(PROTO_GEN_DIR) \
	  $(PROTO_FILES)
	$(PROTOC) -I $(PROTO_DIR) --include_imports --include_source_info --descriptor_set_out=$(PROTO_DESCRIPTORS) $(PROTO_FILES)
	{ printf '%s\n' \
	    '// DO NOT EDIT. Generated by `make protos` from Protos/vane/v1/*.proto.' \
	    '' \
	    '/// The vane.v1 API as a serialized google.protobuf.FileDescriptorSet (with' \
	    '/// its imports), for server reflection. See VaneDescriptors+Files.swift.' \
	    'public enum VaneDescriptors {' \
	    '  /// Base64 of the FileDescriptorSet bytes written by `protoc --include_imports`.'; \
	  printf '  public static let fileDescriptorSetBase64: String = "'; \
	  base64 -w0 $(PROTO_DESCRIPTORS); \
	  printf '"\n}\n'; } > $(PROTO_GEN_DIR)/DescriptorSet.swift
	@$(call apt_install,libonnx-dev)
	rm -rf $(ONNX_GEN_DIR)
	mkdir -p $(ONNX_GEN_DIR)
	$(PROTOC) -I $(dir $(ONNX_PROTO)) --plugin=protoc-gen-swift=$(PLUGIN_BIN)/protoc-gen-swift \
	  --swift_out=$(ONNX_SWIFT_OPTS):$(ONNX_GEN_DIR) $(notdir $(ONNX_PROTO))
